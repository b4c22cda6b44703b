#!/usr/bin/env python3
"""Where one object's CPU goes inside ``deid run``'s pipeline, stage by stage, in process.

A benchmark, not a test: reads ``--files`` slices of bench_run.py's cached corpus into memory,
then de-identifies them ``--passes`` times and prints, per stage, the least CPU time per object
over the passes (ms): ``read`` (parse + completeness check), ``deidentify`` (the rules),
``encode``, ``check`` (the release check) and ``digest`` (of the released bytes, which the released
index claims: deid.digest's BLAKE3, or SHA-256 in a tree before it).
File reads and writes, the journal and the audit are outside (see bench_run.py for the whole
process).

    python bench/bench_stages.py                      # 100 slices of the 300-slice corpus, 5 passes
    python bench/bench_stages.py --slices 1000 --files 200 --passes 8
    python bench/bench_stages.py --pydicom-read       # read with pydicom's dcmread, not the scan
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parent.parent))  # unless PYTHONPATH names a tree

from bench_run import ensure_corpus  # noqa: E402

STAGES = ("read", "deidentify", "encode", "check", "digest")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300, help="corpus to take the files from")
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--files", type=int, default=100, help="slices de-identified per pass")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--profile", default="vghtpe")
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/deid-bench-corpus"))
    parser.add_argument("--pydicom-read", action="store_true",
                        help="read with pydicom's dcmread, not deid.io.scan (its gain in one tree)")
    args = parser.parse_args(argv)

    from deid.checks.complete import check_complete
    from deid.checks.release import release_check
    from deid.engine.deidentifier import Deidentifier
    from deid.io.encoder import encode
    from deid.io.reader import read_object
    from deid.keys import generate_key_file, load_key_file
    from deid.profile.loader import load_profile

    try:  # as the deid command does (a tree before deid.allocator: glibc's defaults)
        from deid import allocator
        allocator.tune()
    except ImportError:
        pass
    try:
        from deid.digest import content_digest as digest
    except ImportError:  # a tree before deid.digest: the released index kept SHA-256

        def digest(data: bytes) -> str:
            return hashlib.sha256(data).hexdigest()

    read = read_object
    if args.pydicom_read:
        if "scan" not in inspect.signature(read_object).parameters:  # a tree before deid.io.scan
            parser.error("--pydicom-read: this deid has no deid.io.scan (it reads with pydicom)")
        read = partial(read_object, scan=False)
    src, _manifest = ensure_corpus(args.corpus, args.slices, args.patients, 2)
    datas = [p.read_bytes() for p in sorted(src.rglob("*.dcm"))[: args.files]]
    profile = load_profile(args.profile)
    with tempfile.TemporaryDirectory() as folder:
        generate_key_file(Path(folder) / "bench.key")
        key = load_key_file(Path(folder) / "bench.key")
    def drop_option(deidentifier: Deidentifier) -> dict:
        """As the pipeline reads: private elements the rules remove unread left out by the scan
        (a tree before that reads them all)."""
        if "private_drop" in inspect.signature(read_object).parameters:
            return {"private_drop": deidentifier.private_drop}
        return {}

    best = dict.fromkeys(STAGES, float("inf"))
    clock = time.process_time
    for _ in range(args.passes):
        deidentifier = Deidentifier(profile, key)  # fresh caches each pass, as a new run has
        spent = dict.fromkeys(STAGES, 0.0)
        for data in datas:
            t0 = clock()
            ds = read(data, **drop_option(deidentifier))
            check_complete(ds)
            t1 = clock()
            result = deidentifier.deidentify(ds)
            t2 = clock()
            encoded = encode(result.dataset)
            t3 = clock()
            release_check(profile, data, result.dataset, result.sop_class_uid, encoded)
            t4 = clock()
            digest(encoded)
            t5 = clock()
            for stage, took in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                spent[stage] += took
        for stage in STAGES:
            best[stage] = min(best[stage], spent[stage] / len(datas) * 1000)
    print(f"{len(datas)} slices, least of {args.passes} passes, CPU ms per object: "
          + "  ".join(f"{stage} {best[stage]:.3f}" for stage in STAGES)
          + f"  total {sum(best.values()):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
