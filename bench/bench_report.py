#!/usr/bin/env python3
"""Benchmark ``deid report`` on many audit records and ``deid verify`` on a released tree.

A benchmark, not a test.  Report: writes ``--records`` audit lines (default 100,000; a release of
50-slice four-phase CTs with RTSS, quarantined screenshots, flagged labels and dangling references,
made with :mod:`deid.synthetic.audit_records`) in 4 files, then times ``deid report`` as a whole
process and reads its peak memory (max RSS).  It repeats with a tenth of the lines so the two peaks
show how memory grows.  Verify: ``--verify-slices`` CT slices + RTSS released by ``deid run``,
then ``deid verify`` timed.

    python bench/bench_report.py                     # 100,000 and 10,000 records; verify on 200 slices
    python bench/bench_report.py --records 20000 --verify-slices 0
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


TIME = "/usr/bin/time"  # GNU time: the peak RSS of the deid process itself (-f %M, KiB)


def _deid(*args: object) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    """(seconds, peak RSS in MiB or -1 without GNU time, result) of one ``deid`` process.

    The peak is read by GNU time, a small process: a child forked straight from this (large)
    benchmark process would count this process's pages in its own ru_maxrss."""
    wrapper = [TIME, "-f", "%M"] if Path(TIME).exists() else []
    started = time.monotonic()
    result = subprocess.run([*wrapper, sys.executable, "-m", "deid", *map(str, args)], capture_output=True,
                            text=True, check=False, cwd=REPO)
    seconds = time.monotonic() - started
    if result.returncode not in (0, 3, 4):
        raise SystemExit(f"deid {args[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    peak_kib = int(result.stderr.strip().splitlines()[-1]) if wrapper else -1024
    return seconds, peak_kib // 1024, result


def bench_report(folder: Path, lines: int) -> None:
    from deid.synthetic.audit_records import lines_for, write_audit_records

    records = folder / f"records-{lines}"
    started = time.monotonic()
    files = write_audit_records(records, lines_for(lines, flag_every=7, quarantine_referenced_every=5), writers=4)
    size = sum(path.stat().st_size for path in files)
    print(f"records: {lines:,} lines, {size / 2**20:.0f} MiB in {len(files)} files "
          f"(made in {time.monotonic() - started:.1f}s)")
    seconds, peak, _ = _deid("report", records, "--out", folder / f"report-{lines}")
    html = folder / f"report-{lines}" / "report.html"
    print(f"deid report {lines:,} records: {seconds:.1f}s wall, peak RSS {peak} MiB "
          f"(report.html {html.stat().st_size / 2**10:.0f} KiB)")


def bench_verify(folder: Path, slices: int) -> None:
    from deid.synthetic import make_patient, write_sample_study

    source = folder / "verify-in"
    per_phase = max(1, slices // 4)
    write_sample_study(source, make_patient(0), slices=per_phase, size=512)
    key = folder / "key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    out = folder / "verify-out"
    _deid("run", source, "--out", out, "--key-file", key, "--no-progress")
    files = sum(1 for p in out.rglob("*.dcm"))
    seconds, peak, result = _deid("verify", out)
    print(f"deid verify {files} files (512x512 CT + RTSS): {seconds:.2f}s wall ({files / seconds:.0f} files/s "
          f"with start-up), peak RSS {peak} MiB, exit {result.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="audit lines (default 100,000)")
    parser.add_argument("--verify-slices", type=int, default=200, help="CT slices for verify (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deid-bench-report-") as tmp:
        folder = Path(tmp)
        for lines in (args.records, args.records // 10):
            bench_report(folder, lines)
        if args.verify_slices:
            bench_verify(folder, args.verify_slices)


if __name__ == "__main__":
    main()
