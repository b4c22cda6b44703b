#!/usr/bin/env python3
"""Benchmark burned-in text blanking by OCR (pixels.ocr): objects/s at 512x512 and 1024x1024.

A benchmark, not a test.  Makes ``--count`` images per size with names, IDs and dates drawn into
real pixel data (deid.synthetic.burned_text: pydicom's US and CT test images and deid's phantom,
one in four without text), then

1. engine: de-identifies them in this process with a profile that blanks every word OCR finds
   (one worker's speed), and scores the blanking against what was drawn (recall: drawn strings
   covered; precision: blanked regions that hold text), and the same with ``blank: identity``
   (recall of names, IDs and dates);
2. run: times ``deid run --workers N`` as a whole process on the same files (OCR runs in the
   worker processes), next to the same run with a profile that does not read pixels.

Each line gives objects/s (wall clock) and CPU seconds per object (this process and its children,
Tesseract included): on a busy machine the first falls, the second holds.

    python bench/bench_ocr.py                        # 24 images per size, workers 1 and 2
    python bench/bench_ocr.py --count 48 --sizes 512 --workers 2 --seed 7
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

OCR_PROFILE = "name: bench-ocr\nextends: vghtpe\npixels:\n  ocr:\n    blank: {blank}\n"
PLAIN_PROFILE = "name: bench-plain\nextends: vghtpe\nallow_burned_in: true\n"


def _cpu() -> float:
    """CPU seconds used so far by this process and its finished children (Tesseract, deid run)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _engine(cases: list, profile_path: Path, kinds: tuple[str, ...]) -> tuple[float, float, object]:
    """(seconds, CPU seconds, BlankingScore) of de-identifying ``cases`` in this process."""
    import io

    from pydicom import dcmwrite

    from deid.engine.deidentifier import Deidentifier
    from deid.io.reader import read_object
    from deid.keys import SecretKey
    from deid.profile.loader import load_profile
    from deid.synthetic.burned_text import BlankingScore, score

    engine = Deidentifier(load_profile(profile_path), SecretKey(bytes(range(32))))
    blobs = []
    for case in cases:
        buffer = io.BytesIO()
        dcmwrite(buffer, case.dataset, enforce_file_format=True)
        blobs.append(buffer.getvalue())
    total = BlankingScore()
    cpu = _cpu()
    started = time.perf_counter()
    for case, data in zip(cases, blobs):
        result = engine.deidentify(read_object(data))
        boxes = [tuple(box) for box in result.pixels.get("boxes", [])]
        total.add(score(case, boxes, kinds))
    return time.perf_counter() - started, _cpu() - cpu, total


def _run(folder: Path, out: Path, profile: Path, key: Path, workers: int) -> tuple[float, float, str]:
    cpu = _cpu()
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "deid", "run", str(folder), "--out", str(out), "--key-file", str(key),
         "--no-progress", "--profile", str(profile), "--workers", str(workers)],
        capture_output=True, text=True, cwd=REPO, check=False)
    seconds = time.perf_counter() - started
    return seconds, _cpu() - cpu, (result.stdout.strip().splitlines() or [result.stderr.strip()])[-1][:160]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=24, help="images per size (default 24)")
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)

    from deid.synthetic import write_dataset
    from deid.synthetic.burned_text import text_cases

    with tempfile.TemporaryDirectory(prefix="deid-bench-ocr-") as scratch:
        root = Path(scratch)
        key = root / "key"
        key.write_text(bytes(range(32)).hex() + "\n")
        key.chmod(0o600)
        profiles = {}
        for name, text in (("all", OCR_PROFILE.format(blank="all")),
                           ("identity", OCR_PROFILE.format(blank="identity")), ("plain", PLAIN_PROFILE)):
            profiles[name] = root / f"{name}.yaml"
            profiles[name].write_text(text)
        for size in (int(s) for s in args.sizes.split(",")):
            cases = text_cases(args.count, size=size, seed=args.seed)
            folder = root / f"in-{size}"
            for case in cases:
                write_dataset(case.dataset, folder / f"{case.name}.dcm")
            seconds, cpu, every = _engine(text_cases(args.count, size=size, seed=args.seed), profiles["all"], ())
            print(f"{size}x{size} engine, blank all:      {len(cases) / seconds:6.2f} objects/s "
                  f"(1 process; {cpu / len(cases):.2f} CPU s/object); recall {every.recall:.3f} ({every.covered}/{every.strings}), precision "
                  f"{every.precision:.3f} ({every.on_text}/{every.regions})")
            seconds, cpu, ident = _engine(text_cases(args.count, size=size, seed=args.seed),
                                          profiles["identity"], ("name", "id", "date"))
            print(f"{size}x{size} engine, blank identity: {len(cases) / seconds:6.2f} objects/s "
                  f"(1 process; {cpu / len(cases):.2f} CPU s/object); recall of names, IDs, dates {ident.recall:.3f} ({ident.covered}/{ident.strings})")
            for workers in (int(w) for w in args.workers.split(",")):
                for name in ("all", "plain"):
                    seconds, cpu, said = _run(folder, root / f"out-{size}-{workers}-{name}", profiles[name], key,
                                         workers)
                    label = "pixels.ocr" if name == "all" else "no OCR    "
                    print(f"{size}x{size} deid run --workers {workers}, {label}: "
                          f"{len(cases) / seconds:6.2f} objects/s ({seconds:.1f} s, {cpu / len(cases):.2f} "
                          f"CPU s/object; {said.split(';')[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
