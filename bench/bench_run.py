#!/usr/bin/env python3
"""Benchmark ``deid run`` against a plain pydicom read+write and peer tools.

This is a benchmark, not a test: it times whole processes (wall clock) on a corpus of
512x512 CT slices made with :mod:`deid.synthetic`, alternating the methods round-robin,
and prints the median per method, its files/s, its ratio to the pydicom read+write
baseline and the ``--workers 2`` speed-up over ``--workers 1``.

Run ``python bench/bench_run.py --help`` for the options; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS_FORMAT = 1  # bump when the corpus layout or builder call changes
SIZE = 512
PRIVATE_ELEMENTS = 185

# The baseline: read every .dcm file with pydicom and write it to the same relative path.
BASELINE_SCRIPT = """
import os, sys
from pathlib import Path
from pydicom import dcmread, dcmwrite
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for dirpath, _, names in os.walk(src):
    for name in names:
        if name.endswith(".dcm"):
            path = Path(dirpath, name)
            out = dst / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            dcmwrite(out, dcmread(path))
"""

# gdcmanon --dumb: a handful of identifying attributes (group,element in hex).
GDCM_DUMB_ACTIONS = [
    ("--remove", "10,10"),  # Patient's Name
    ("--empty", "10,20"),  # Patient ID
    ("--remove", "10,30"),  # Patient's Birth Date
    ("--empty", "8,50"),  # Accession Number
    ("--remove", "8,80"),  # Institution Name
    ("--remove", "8,81"),  # Institution Address
    ("--empty", "8,90"),  # Referring Physician's Name
    ("--remove", "8,1010"),  # Station Name
    ("--remove", "10,1040"),  # Patient's Address
    ("--empty", "20,10"),  # Study ID
]
GDCM_DUMB_OPTIONS = [word for pair in GDCM_DUMB_ACTIONS for word in pair]


def log(message: str = "") -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- corpus


def corpus_plan(slices: int, patients: int) -> list[tuple[int, str, int, int]]:
    """(patient index, phase, first slice index, count) per series.

    Slices are shared out evenly over the patients, and each patient's share evenly over
    the four phases of a liver CT (N, A, P, D), so 1000 slices over 10 patients make 40
    series of 25 slices.
    """
    from deid.synthetic import PHASES

    patients = max(1, min(patients, slices))
    plan = []
    for p in range(patients):
        share = slices // patients + (p < slices % patients)
        phases = [ph for ph in PHASES][: max(1, min(len(PHASES), share))]
        for k, phase in enumerate(phases):
            count = share // len(phases) + (k < share % len(phases))
            if count:
                plan.append((p, phase, 0, count))
    return plan


def _write_series(job: tuple[str, int, str, int, int, int]) -> int:
    """Write one series of the plan into ``folder/<PHI-named study folder>/``."""
    from deid.synthetic import ct_slice, make_patient, study_folder_name, write_datasets

    folder, index, phase, first, count, size = job
    patient = make_patient(index)
    series_uid = patient.series_uid(phase)
    datasets = [
        ct_slice(
            patient,
            series_uid=series_uid,
            index=i,
            size=size,
            private_elements=PRIVATE_ELEMENTS,
            phase=phase,
        )
        for i in range(first, first + count)
    ]
    names = [f"CT_{phase}_{i + 1:04d}.dcm" for i in range(first, first + count)]
    write_datasets(datasets, Path(folder) / study_folder_name(patient), names)
    return count


def count_files(folder: Path, suffix: str | None = ".dcm") -> int:
    if not folder.exists():
        return 0
    total = 0
    for _, _, names in os.walk(folder):
        total += sum(1 for n in names if suffix is None or n.endswith(suffix))
    return total


def folder_bytes(folder: Path) -> int:
    return sum(
        os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(folder) for n in names
    )


def ensure_corpus(
    cache: Path, slices: int, patients: int, jobs: int, size: int = SIZE
) -> tuple[Path, dict]:
    """The corpus folder for these parameters (``size`` x ``size`` slices), built unless a
    complete one is cached."""
    key = f"ct{size}-{slices}slices-{patients}patients-v{CORPUS_FORMAT}"
    root = cache / key
    data = root / "dicom"
    manifest_path = root / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("files") == slices and count_files(data) == slices:
            log(f"corpus: reusing {data} ({slices} files, {manifest['bytes'] / 1e6:.0f} MB)")
            return data, manifest
        log(f"corpus: {root} is incomplete or stale; rebuilding")
    plan = corpus_plan(slices, patients)
    partial = cache / f"{key}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    log(
        f"corpus: building {slices} CT slices {size}x{size} ({len(plan)} series over "
        f"{len({p for p, *_ in plan})} patients) into {root} with {jobs} process(es)..."
    )
    started = time.perf_counter()
    jobs_list = [(str(partial / "dicom"), p, ph, first, n, size) for p, ph, first, n in plan]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        written = sum(pool.map(_write_series, jobs_list))
    assert written == slices == count_files(partial / "dicom"), (written, slices)
    manifest = {
        "format": CORPUS_FORMAT,
        "files": slices,
        "patients": len({p for p, *_ in plan}),
        "series": len(plan),
        "size": size,
        "private_elements": PRIVATE_ELEMENTS,
        "bytes": folder_bytes(partial / "dicom"),
        "built_with_deid_commit": git_commit(),
    }
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    log(
        f"corpus: built in {time.perf_counter() - started:.1f} s ({manifest['bytes'] / 1e6:.0f} MB)"
    )
    return data, manifest


# --------------------------------------------------------------------------- methods


@dataclass
class Method:
    key: str
    label: str
    # (input folder, output folder) -> argv
    argv: Callable[[Path, Path], list[str]]
    env: dict[str, str] | None = None
    deid: bool = False
    missing: str | None = None  # why it cannot run
    times: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)  # user+sys s of the run and its workers
    out_files: list[int] = field(default_factory=list)
    quarantined: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_quiet(argv: list[str], env: dict[str, str] | None = None, timeout: float = 120):
    try:
        return subprocess.run(
            argv,
            check=False,
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return subprocess.CompletedProcess(argv, 127, "", str(error))


def deid_env(tree: Path = REPO) -> dict[str, str]:
    """The environment for deid: its source tree first on PYTHONPATH (installed or not)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH")) if p)
    return env


def find_deid(env: dict[str, str], script: bool = True) -> tuple[list[str] | None, str]:
    """The deid command whose ``run --help`` works: the console script, else ``-m deid.cli``
    (only ``-m deid.cli`` without ``script``)."""
    tried = []
    candidates = []
    if script and shutil.which("deid"):
        candidates.append([shutil.which("deid")])
    # -P: not the working folder first on sys.path, so PYTHONPATH decides which tree runs
    candidates.append([sys.executable, "-P", "-m", "deid.cli"])
    for prefix in candidates:
        result = run_quiet([*prefix, "run", "--help"], env=env)
        if result.returncode == 0:
            return prefix, ""
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        tried.append(f"`{' '.join(prefix)} run --help` exited {result.returncode}: {last[0]}")
    return None, "; ".join(tried)


def make_key(prefix: list[str], env: dict[str, str], folder: Path) -> tuple[Path | None, str]:
    key = folder / "bench.key"
    key.unlink(missing_ok=True)  # a --work folder used before: keygen never overwrites a key
    result = run_quiet([*prefix, "keygen", str(key)], env=env)
    if result.returncode != 0 or not key.exists():
        detail = (result.stderr or result.stdout).strip()[-500:]
        return None, f"`deid keygen` exited {result.returncode}: {detail}"
    return key, ""


def make_certificate(folder: Path) -> tuple[Path | None, str]:
    if not shutil.which("openssl"):
        return None, "openssl not found (needed for a gdcmanon -e certificate)"
    cert, key = folder / "gdcm-cert.pem", folder / "gdcm-key.pem"
    result = run_quiet(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=deid-bench",
        ]
    )
    if result.returncode != 0:
        return None, f"openssl req failed: {result.stderr.strip()[-300:]}"
    return cert, ""


def write_bytecode(tree: Path) -> None:
    """Compile a deid source tree's modules into its ``__pycache__`` folders, as pip does when
    it installs deid: otherwise, under ``PYTHONDONTWRITEBYTECODE=1``, every timed run would compile
    deid's ~70 modules from source again (~0.06 s of start-up no user's installed deid pays)."""
    result = run_quiet([sys.executable, "-m", "compileall", "-q", str(tree / "deid")])
    if result.returncode != 0:
        log(f"bytecode: compileall over {tree / 'deid'} exited {result.returncode} (timed as is)")


def build_methods(
    selected: list[str],
    scratch: Path,
    profile: str,
    baseline: Path | None = None,
    bytecode: bool = True,
) -> list[Method]:
    methods: list[Method] = []
    py = sys.executable

    def want(key: str) -> bool:
        return key in selected

    if want("pydicom"):
        methods.append(
            Method(
                "pydicom",
                "pydicom read+write",
                lambda src, out: [py, "-c", BASELINE_SCRIPT, str(src), str(out)],
            )
        )

    trees = [("deid", REPO, "")] + ([("base", baseline, f" ({baseline.name})")] if baseline else [])
    for name, tree, suffix in trees:
        if not (want(f"{name}-w1") or want(f"{name}-w2")):
            continue
        env = deid_env(tree)
        if bytecode:
            write_bytecode(tree)
        prefix, why = find_deid(env, script=name == "deid")
        key = None
        if prefix:
            (scratch / f"key-{name}").mkdir(mode=0o700, exist_ok=True)
            key, why = make_key(prefix, env, scratch / f"key-{name}")
        for workers in (1, 2):
            k = f"{name}-w{workers}"
            if not want(k):
                continue

            # (bound now: the next tree's loop sets prefix and key again)
            def argv(src: Path, out: Path, workers: int = workers, prefix: list[str] | None = prefix,
                     key: Path | None = key) -> list[str]:
                return [
                    *(prefix or ["deid"]),
                    "run",
                    str(src),
                    "--out",
                    str(out),
                    "--profile",
                    profile,
                    "--key-file",
                    str(key),
                    "--workers",
                    str(workers),
                ]

            methods.append(
                Method(
                    k,
                    f"deid run --workers {workers}{suffix}",
                    argv,
                    env=env,
                    deid=True,
                    missing=None if (prefix and key) else why,
                )
            )

    if want("dicognito"):
        check = run_quiet([py, "-m", "dicognito", "--version"])
        methods.append(
            Method(
                "dicognito",
                "dicognito",
                lambda src, out: [
                    py,
                    "-m",
                    "dicognito",
                    "--quiet",
                    "--output-directory",
                    str(out),
                    str(src),
                ],
                missing=None
                if check.returncode == 0
                else f"`python -m dicognito` failed: {check.stderr.strip()[-200:]}",
            )
        )

    gdcmanon = shutil.which("gdcmanon")
    if want("gdcmanon-e"):
        cert, why = make_certificate(scratch / "cert") if gdcmanon else (None, "")
        methods.append(
            Method(
                "gdcmanon-e",
                "gdcmanon -e (PS3.15 basic)",
                lambda src, out: [
                    gdcmanon or "gdcmanon",
                    "-e",
                    "-c",
                    str(cert),
                    "--continue",
                    "-r",
                    "-i",
                    str(src),
                    "-o",
                    str(out),
                ],
                missing="gdcmanon not found" if not gdcmanon else (why or None),
            )
        )
    if want("gdcmanon-dumb"):
        methods.append(
            Method(
                "gdcmanon-dumb",
                "gdcmanon --dumb",
                lambda src, out: [
                    gdcmanon or "gdcmanon",
                    "--dumb",
                    *GDCM_DUMB_OPTIONS,
                    "--continue",
                    "-r",
                    "-i",
                    str(src),
                    "-o",
                    str(out),
                ],
                missing=None if gdcmanon else "gdcmanon not found",
            )
        )
    if want("cp"):
        cp = shutil.which("cp")
        methods.append(
            Method(
                "cp",
                "cp -r",
                lambda src, out: [cp or "cp", "-r", str(src), str(out)],
                missing=None if cp else "cp not found",
            )
        )
    return methods


ALL_METHODS = ["pydicom", "deid-w1", "deid-w2", "dicognito", "gdcmanon-e", "gdcmanon-dumb", "cp"]


# --------------------------------------------------------------------------- running


@dataclass
class Run:
    seconds: float
    cpu_seconds: float  # user+sys of the process and every process it waited for (workers)
    returncode: int
    out_files: int
    quarantined: int
    log_tail: str


def run_once(method: Method, src: Path, folder: Path, timeout: float, keep: bool) -> Run:
    """One timed whole-process run into a fresh ``folder/out`` (and its siblings)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    out = folder / "out"
    argv = method.argv(src, out)
    log_path = folder.parent / f"{folder.name}.log"
    os.sync()  # do not bill this run for the previous run's dirty pages
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                argv,
                check=False,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=method.env,
                timeout=timeout,
            )
            returncode = proc.returncode
        except subprocess.TimeoutExpired:
            returncode = -999
        seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tail = log_path.read_text(errors="replace")[-1500:]
    quarantined = count_files(folder / "out-quarantine", suffix=None)
    result = Run(seconds, cpu, returncode, count_files(out), quarantined, tail)
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def warm_cache(src: Path) -> None:
    """Read the corpus once so the first timed method does not pay for a cold cache."""
    for dirpath, _, names in os.walk(src):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as handle:
                while handle.read(1 << 20):
                    pass


def check_deid(method: Method, src: Path, expected: int, work: Path, timeout: float) -> bool:
    """An untimed full deid run: its output must hold as many .dcm files as the input."""
    log(f"check: {method.label} on the corpus (untimed)...")
    run = run_once(method, src, work / f"check-{method.key}", timeout, keep=True)
    records = count_files(work / f"check-{method.key}" / "out-records", suffix=None)
    log(
        f"check: exit {run.returncode} in {run.seconds:.1f} s; {run.out_files} .dcm out of "
        f"{expected} in; quarantined {run.quarantined} file(s); {records} record file(s)"
    )
    shutil.rmtree(work / f"check-{method.key}", ignore_errors=True)
    if run.returncode != 0 or run.out_files != expected:
        log(f"check: FAILED, so deid is not timed. Last output:\n{indent(run.log_tail)}")
        return False
    return True


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines())


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def git_commit() -> str:
    head = run_quiet(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = run_quiet(["git", "-C", str(REPO), "status", "--porcelain", "--", "deid"])
    commit = head.stdout.strip() or "unknown"
    return commit + ("+dirty(deid/)" if dirty.stdout.strip() else "")


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    try:
        import pydicom

        versions["pydicom"] = pydicom.__version__
    except ImportError:
        pass
    try:
        from importlib.metadata import version

        versions["dicognito"] = version("dicognito")
    except Exception as error:  # noqa: BLE001 - informational only
        versions["dicognito"] = f"unknown ({type(error).__name__})"
    if shutil.which("gdcmanon"):
        versions["gdcmanon"] = run_quiet(["gdcmanon", "--version"]).stdout.strip()
    return versions


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time `deid run` against pydicom read+write, dicognito, gdcmanon and cp -r."
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path("/tmp/deid-bench-corpus"),
        help="cache folder of corpora (reused when complete)",
    )
    parser.add_argument("--slices", type=int, default=1000, help="number of CT slices")
    parser.add_argument("--patients", type=int, default=10, help="patients to spread them over")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (median reported)")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument(
        "--methods",
        default=",".join(ALL_METHODS),
        help=f"comma-separated subset of: {','.join(ALL_METHODS)}",
    )
    parser.add_argument("--profile", default="vghtpe", help="deid profile (default vghtpe)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a fresh temp dir)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument(
        "--build-jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes used to build the corpus",
    )
    parser.add_argument("--keep", action="store_true", help="keep outputs and scratch folder")
    parser.add_argument(
        "--source-only",
        action="store_true",
        help="do not compile the deid trees' bytecode first (each run then compiles deid's "
        "modules again when PYTHONDONTWRITEBYTECODE is set)",
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="another deid source tree (e.g. `git archive` of main) timed beside this one as "
        "methods base-w1 and base-w2, added to --methods",
    )
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.baseline_tree:
        args.baseline_tree = args.baseline_tree.resolve()
        args.methods += [f"base-w{w}" for w in (1, 2) if f"deid-w{w}" in args.methods]
    unknown = set(args.methods) - set(ALL_METHODS) - {"base-w1", "base-w2"}
    if unknown:
        parser.error(f"unknown method(s): {', '.join(sorted(unknown))}")
    if args.slices < 1 or args.rounds < 1:
        parser.error("--slices and --rounds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # the builder, even when deid is not installed

    src, manifest = ensure_corpus(args.corpus, args.slices, args.patients, args.build_jobs)
    n = manifest["files"]

    work = args.work or Path(tempfile.mkdtemp(prefix="deid-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "key").mkdir(mode=0o700, exist_ok=True)
    (work / "cert").mkdir(mode=0o700, exist_ok=True)
    log(f"scratch: {work}")

    methods = build_methods(
        args.methods, work, args.profile, args.baseline_tree, bytecode=not args.source_only
    )
    for method in methods:
        if method.missing:
            log(f"skip: {method.label}: {method.missing}")
    runnable = [m for m in methods if not m.missing]

    warm_cache(src)
    deid_methods = [m for m in runnable if m.deid]
    if deid_methods:
        for tree in sorted({m.key.split("-")[0] for m in deid_methods}):
            mine = [m for m in deid_methods if m.key.startswith(tree + "-")]
            check = max(mine, key=lambda m: m.key)  # the --workers 2 one if selected
            if not check_deid(check, src, n, work, args.timeout):
                for method in mine:
                    method.missing = "output check failed (see above)"
                runnable = [m for m in runnable if m not in mine]

    log(f"timing: {len(runnable)} method(s) x {args.rounds} round(s), round-robin, {n} files")
    for r in range(args.rounds):
        order = runnable[r % len(runnable) :] + runnable[: r % len(runnable)] if runnable else []
        for method in order:
            run = run_once(method, src, work / f"r{r + 1}-{method.key}", args.timeout, args.keep)
            method.times.append(run.seconds)
            method.cpus.append(run.cpu_seconds)
            method.out_files.append(run.out_files)
            method.quarantined.append(run.quarantined)
            note = ""
            if run.returncode != 0:
                note = f"  exit {run.returncode}"
                method.failures.append(
                    f"round {r + 1}: exit {run.returncode}: {run.log_tail[-300:]}"
                )
            if run.out_files != n:
                note += f"  ({run.out_files}/{n} .dcm out)"
            if method.deid and run.out_files != n:
                method.failures.append(f"round {r + 1}: {run.out_files} of {n} files out")
            log(f"  round {r + 1}: {method.label:<28} {run.seconds:8.2f} s{note}")

    results = report(methods, n, manifest)
    if args.json:
        payload = {
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "corpus": {"path": str(src), **manifest},
            "rounds": args.rounds,
            "profile": args.profile,
            "bytecode": not args.source_only,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "deid_commit": git_commit(),
            "versions": tool_versions(),
            **results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        log(f"json: {args.json}")
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    broken = any(m.failures for m in methods) or any(m.deid and m.missing for m in methods)
    return 1 if broken else 0


def report(methods: list[Method], n: int, manifest: dict) -> dict:
    base = next((median(m.times) for m in methods if m.key == "pydicom"), None)
    rows = []
    out: dict = {"methods": {}}
    for m in methods:
        med = median(m.times)
        entry = {
            "label": m.label,
            "times_s": [round(t, 4) for t in m.times],
            "median_s": None if med is None else round(med, 4),
            "cpu_s": [round(t, 3) for t in m.cpus],
            "median_cpu_s": None if not m.cpus else round(median(m.cpus), 3),
            "files_per_s": None if not med else round(n / med, 2),
            "ratio_to_pydicom": None if not (med and base) else round(med / base, 3),
            "out_files": m.out_files,
            "skipped": m.missing,
            "failures": m.failures,
        }
        if m.deid:
            entry["quarantined"] = m.quarantined
        out["methods"][m.key] = entry
        if med is None:
            rows.append((m.label, "skipped", "", "", "", m.missing or "not run"))
            continue
        spread = f"{min(m.times):.2f}-{max(m.times):.2f}"
        rows.append(
            (
                m.label,
                f"{med:.2f}",
                f"{n / med:.1f}",
                f"{med / base:.2f}x" if base else "n/a",
                f"{median(m.cpus):.2f}" if m.cpus else "",
                spread + ("  FAILED" if m.failures else ""),
            )
        )
    w1 = median(next((m.times for m in methods if m.key == "deid-w1"), []))
    w2 = median(next((m.times for m in methods if m.key == "deid-w2"), []))
    out["speedup_workers2_over_workers1"] = round(w1 / w2, 3) if w1 and w2 else None

    header = ("method", "median s", "files/s", "vs pydicom", "cpu s", "min-max s / note")
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    rounds = max((len(m.times) for m in methods), default=0)
    log()
    log(
        f"{n} CT slices {manifest['size']}x{manifest['size']} "
        f"({manifest['bytes'] / 1e6:.0f} MB, {manifest['patients']} patients, "
        f"{manifest['series']} series); median of {rounds} round(s); "
        f"vs pydicom = median time / pydicom read+write median time; cpu s = median user+sys "
        f"of the run and its workers (less moved by other load than wall time)"
    )
    fmt = "  ".join(f"{{:{'<' if i in (0, 5) else '>'}{w}}}" for i, w in enumerate(widths))
    log(fmt.format(*header).rstrip())
    log("  ".join("-" * w for w in widths))
    for row in rows:
        log(fmt.format(*row).rstrip())
    if out["speedup_workers2_over_workers1"]:
        log(f"deid --workers 2 speed-up over --workers 1: {w1 / w2:.2f}x")
    b1 = median(next((m.times for m in methods if m.key == "base-w1"), []))
    b2 = median(next((m.times for m in methods if m.key == "base-w2"), []))
    if b1 and b2:
        out["baseline_speedup_workers2_over_workers1"] = round(b1 / b2, 3)
        log(f"baseline --workers 2 speed-up over --workers 1: {b1 / b2:.2f}x")
    for w, mine, theirs in ((1, w1, b1), (2, w2, b2)):
        if mine and theirs:
            out[f"workers{w}_time_vs_baseline"] = round(mine / theirs, 3)
            log(f"deid --workers {w} time / baseline's: {mine / theirs:.3f}")
    for m in methods:
        if m.deid and any(m.quarantined):
            log(f"{m.label}: quarantined per round: {m.quarantined}")
        for failure in m.failures:
            log(f"FAILED {m.label}: {failure}")
    return out


if __name__ == "__main__":
    sys.exit(main())
