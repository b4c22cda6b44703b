#!/usr/bin/env python3
"""Does ``deid run``'s memory stay flat as the corpus grows?

A benchmark, not a test: it runs ``deid run`` over a small and a large corpus of small CT slices
(the same headers as bench_run.py's: planted PHI, 185 private elements; 64x64 pixels so that
10,000 files build quickly) and prints the peak RSS of each (GNU time's ``%M``: the largest
process of the run) and the ratio large / small. Both corpora have 25 slices per series and
100 per patient, so the large one is the small one's shape, ten times over.

Run ``python bench/bench_memory.py --help`` for the options; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_run import deid_env, ensure_corpus, find_deid, log, make_key  # noqa: E402

TIME = "/usr/bin/time"


def peak_kib(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """The peak RSS (KiB) of ``argv`` under GNU time, or -1 and why."""
    result = subprocess.run(
        [TIME, "-f", "peak-rss-kib=%M", *argv],
        capture_output=True, text=True, errors="replace", env=env, timeout=timeout, check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("peak-rss-kib=")]
    if result.returncode != 0 or not lines:
        return -1, (result.stderr.strip().splitlines() or ["no output"])[-1]
    return int(lines[-1].split("=", 1)[1]), ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000, help="files in the small corpus")
    parser.add_argument("--large", type=int, default=10000, help="files in the large corpus")
    parser.add_argument("--size", type=int, default=64, help="slice rows and columns")
    parser.add_argument("--workers", type=int, default=1, help="deid run --workers")
    parser.add_argument("--rounds", type=int, default=1, help="runs per corpus (median peak)")
    parser.add_argument("--profile", default="vghtpe")
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/deid-bench-corpus"))
    parser.add_argument("--build-jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(TIME).exists():
        log(f"skip: {TIME} (GNU time) not found")
        return 1
    env = deid_env()
    prefix, why = find_deid(env)
    if prefix is None:
        log(f"deid not found: {why}")
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="deid-bench-memory-"))
    try:
        key, why = make_key(prefix, env, scratch)
        if key is None:
            log(why)
            return 1
        peaks: dict[int, list[int]] = {}
        for files in (args.small, args.large):
            src, _manifest = ensure_corpus(args.corpus, files, max(1, files // 100),
                                           args.build_jobs, size=args.size)
            peaks[files] = []
            for round_ in range(args.rounds):
                out = scratch / f"{files}-{round_}" / "out"
                cmd = [*prefix, "run", str(src), "--out", str(out), "--profile", args.profile,
                       "--key-file", str(key), "--workers", str(args.workers)]
                peak, why = peak_kib(cmd, env, args.timeout)
                if peak < 0:
                    log(f"deid run over {files} files failed: {why}")
                    return 1
                written = sum(1 for _ in out.rglob("*.dcm"))
                log(f"{files:>7} files: peak RSS {peak / 1024:.1f} MiB ({written} written)")
                peaks[files].append(peak)
                shutil.rmtree(out.parent, ignore_errors=True)
        small = statistics.median(peaks[args.small])
        large = statistics.median(peaks[args.large])
        ratio = large / small
        log(f"deid run --workers {args.workers}, {args.size}x{args.size} slices, median of "
            f"{args.rounds}: {args.small} files {small / 1024:.1f} MiB, {args.large} files "
            f"{large / 1024:.1f} MiB, ratio {ratio:.3f} ({(ratio - 1) * 100:+.1f} %)")
        if args.json:
            args.json.write_text(json.dumps({"peaks_kib": peaks, "ratio": ratio,
                                             "workers": args.workers, "size": args.size},
                                            indent=2) + "\n")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
