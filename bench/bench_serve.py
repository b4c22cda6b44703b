#!/usr/bin/env python3
"""Benchmark the forwarding node end to end: storescu -> deid serve -> storescp.

This is a benchmark, not a test. From one run it times, on the same corpus of 512x512 CT slices
(the one bench_run.py builds), alternating round-robin, for a forking storescp (``fork``: one
process per association) and a plain one (``plain``: one association at a time):

* ``direct-<kind>``: DCMTK storescu sending every file to DCMTK storescp, until storescu exits;
* ``deid-<kind>``:   storescu sending the same files to a running ``deid serve``, which
  de-identifies them and forwards them to storescp, until storescp holds every file (end to end,
  not just intake);
* ``deid-run``:      ``deid run --workers 2`` on the same files (whole process);
* ``intake-alone`` (``--intake-alone``): storescu sending to ``deid serve`` with the node's worker
  processes paused (SIGSTOP, outside any write to the spool's database), until storescu exits: the
  node's intake with the machine to itself, a bound on its end to end.

It prints the median files/s of each and the node's rate as a ratio to direct and to
``deid run``. ``TCP_NODELAY=1`` is set for both DCMTK tools (Debian's DCMTK otherwise waits
~50 ms per file). Run ``python bench/bench_serve.py --help`` for the options; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_run import (
    PRIVATE_ELEMENTS,
    REPO,
    SIZE,
    deid_env,
    ensure_corpus,
    find_deid,
    log,
    make_key,
)

STORESCU, STORESCP, ECHOSCU = "/usr/bin/storescu", "/usr/bin/storescp", "/usr/bin/echoscu"
SENDER, NODE, DEST = "SENDER", "DEID", "DEST"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dcmtk_env() -> dict[str, str]:
    return {**os.environ, "TCP_NODELAY": "1"}


def received(folder: Path) -> int:
    """Files storescp has written into ``folder``."""
    with os.scandir(folder) as entries:
        return sum(1 for entry in entries if entry.is_file())


class Storescp:
    """DCMTK storescp writing into a fresh folder, on a free port, one process per association."""

    def __init__(self, folder: Path, fork: bool = True) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        self.port = free_port()
        self.log = (folder.parent / f"{folder.name}.log").open("wb")
        self.process = subprocess.Popen(
            # --fork: one process per association, as a PACS takes several at once; without it
            # (--no-fork) one association at a time, as a plain storescp or a small PACS
            [STORESCP, *(["--fork"] if fork else []), "--aetitle", DEST, "--output-directory", str(folder),
             str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env=dcmtk_env(),
        )
        wait_for_echo(self.port, DEST, self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def wait_for_echo(port: int, called: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until a C-ECHO to ``called`` on 127.0.0.1:``port`` succeeds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before answering C-ECHO")
        echo = subprocess.run(
            [ECHOSCU, "-aet", SENDER, "-aec", called, "127.0.0.1", str(port)],
            capture_output=True, env=dcmtk_env(), check=False,
        )
        if echo.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"no C-ECHO answer on port {port} within {timeout} s")


def storescu(corpus: Path, port: int, called: str) -> subprocess.Popen:
    return subprocess.Popen(
        [STORESCU, "-aet", SENDER, "-aec", called, "+sd", "+r", "127.0.0.1", str(port),
         str(corpus)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dcmtk_env(),
    )


@dataclass
class Method:
    key: str
    label: str
    fork: bool = True  # the storescp it sends to forks (one process per association)
    times: list[float] = field(default_factory=list)
    intake: list[float] = field(default_factory=list)  # deid serve: until storescu was done


def run_direct(corpus: Path, n: int, work: Path, fork: bool) -> float:
    scp = Storescp(work / "direct-received", fork)
    try:
        started = time.perf_counter()
        sender = storescu(corpus, scp.port, DEST)
        _, errors = sender.communicate()
        elapsed = time.perf_counter() - started
        if sender.returncode != 0:
            raise RuntimeError(f"storescu -> storescp exited {sender.returncode}: {errors[-500:]!r}")
        count = received(scp.folder)
        if count != n:
            raise RuntimeError(f"storescp holds {count} files, not {n}")
        return elapsed
    finally:
        scp.stop()
        shutil.rmtree(scp.folder, ignore_errors=True)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the node's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def pause_idle(pids: list[int], queue: Path) -> list[int]:
    """Stop ``pids`` (SIGSTOP) outside any write to the spool's database: a worker stopped while
    it holds the write lock (a claim) would make the receiver refuse objects after its busy
    timeout.  After the stop, a write transaction is tried without waiting; if a stopped worker
    holds the lock, they go on for a moment and are stopped again."""
    import sqlite3

    conn = sqlite3.connect(queue, timeout=0, isolation_level=None)
    try:
        for _ in range(200):
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                return pids
            except sqlite3.OperationalError:  # (database is locked)
                for pid in pids:
                    os.kill(pid, signal.SIGCONT)
                time.sleep(0.005)
        raise RuntimeError("the node's workers kept the spool's database locked")
    finally:
        conn.close()


def run_deid(corpus: Path, n: int, work: Path, deid: list[str], key: Path, args: argparse.Namespace,
             fork: bool, warmup: Path, check: bool = False,
             checkout: Path | None = None, paused: bool = False) -> tuple[float, float]:
    """(end-to-end seconds, seconds until storescu had handed everything to deid).

    The node is timed running: before the clock starts, one other object (``warmup``) goes
    through it and has arrived, so its workers' start-up is not billed to the corpus.
    ``paused``: the node's worker processes are stopped (SIGSTOP) until storescu is done, so the
    intake has the machine to itself; they go on after it (the end to end is then no measure)."""
    scp = Storescp(work / "deid-received", fork)
    data = work / "deid-data"
    port = free_port()
    argv = [*deid, "serve", "--aet", NODE, "--host", "127.0.0.1", "--port", str(port),
            "--allow-aet", SENDER, "--forward", f"{DEST}@127.0.0.1:{scp.port}",
            "--profile", args.profile, "--key-file", str(key), "--data", str(data)]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    node_log = (work / "deid-serve.log").open("ab")
    env, cwd = deid_env(), None
    if checkout is not None:  # the node of another checkout (--compare): its deid package first
        argv = [sys.executable, "-m", "deid.cli", *argv[len(deid):]]
        env, cwd = {**env, "PYTHONPATH": str(checkout)}, checkout
    node = subprocess.Popen(argv, stdout=node_log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    stopped: list[int] = []  # the node's workers, while paused
    try:
        wait_for_echo(port, NODE, node)
        first = storescu(warmup, port, NODE)
        _, errors = first.communicate()
        if first.returncode != 0:
            raise RuntimeError(f"storescu -> deid (warm-up) exited {first.returncode}: "
                               f"{errors[-500:]!r}")
        deadline = time.monotonic() + args.timeout
        while received(scp.folder) < 1:
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the warm-up object did not arrive; see {node_log.name}")
            time.sleep(0.02)
        n += 1  # the warm-up object is already there
        if paused:
            stopped += pause_idle(children(node.pid), data / "spool" / "queue.sqlite")
        started = time.perf_counter()
        sender = storescu(corpus, port, NODE)
        intake = None
        deadline = time.monotonic() + args.timeout
        while True:
            if intake is None and sender.poll() is not None:
                intake = time.perf_counter() - started
                for pid in stopped:
                    os.kill(pid, signal.SIGCONT)
                stopped.clear()
                if sender.returncode != 0:
                    raise RuntimeError(f"storescu -> deid exited {sender.returncode}: "
                                       f"{sender.stderr.read()[-500:]!r}")
            if received(scp.folder) >= n:
                elapsed = time.perf_counter() - started
                break
            if node.poll() is not None:
                raise RuntimeError(f"deid serve exited ({node.returncode}); see {node_log.name}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"storescp holds {received(scp.folder)} of {n} files after "
                                   f"{args.timeout} s; see {node_log.name}")
            time.sleep(0.02)
        if intake is None:
            sender.wait()
            intake = elapsed
        if check:
            check_released(corpus, scp.folder, data)
        return elapsed, intake
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        node.send_signal(signal.SIGTERM)
        try:
            code = node.wait(timeout=120)
        except subprocess.TimeoutExpired:
            node.kill()
            code = node.wait()
        node_log.close()
        scp.stop()
        if code != 0:
            log(f"  note: deid serve exited {code} after SIGTERM (see {node_log.name})")
        shutil.rmtree(scp.folder, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


def make_warmup(folder: Path) -> Path:
    """One CT slice of a patient the corpus does not hold (the node's warm-up object)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # the builder, even when deid is not installed
    from deid.synthetic import ct_slice, make_patient, write_datasets

    patient = make_patient(9999)
    slice_ = ct_slice(patient, series_uid=patient.series_uid("N"), index=0, size=SIZE,
                      private_elements=PRIVATE_ELEMENTS, phase="N")
    write_datasets([slice_], folder, ["warmup.dcm"])
    return folder


def run_deid_run(corpus: Path, n: int, work: Path, deid: list[str], key: Path,
                 args: argparse.Namespace) -> float:
    """``deid run --workers N`` over the corpus, whole process (start-up included), as
    bench_run.py times it; every file must come out."""
    out = work / "run-out"
    for folder in (out, work / "run-out-quarantine", work / "run-out-records"):
        shutil.rmtree(folder, ignore_errors=True)
    argv = [*deid, "run", str(corpus), "--out", str(out), "--profile", args.profile,
            "--key-file", str(key), "--workers", str(args.run_workers)]
    os.sync()
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=deid_env(), check=False)
    elapsed = time.perf_counter() - started
    written = sum(1 for _ in out.rglob("*.dcm")) if out.exists() else 0
    for folder in (out, work / "run-out-quarantine", work / "run-out-records"):
        shutil.rmtree(folder, ignore_errors=True)
    if done.returncode != 0 or written != n:
        raise RuntimeError(f"deid run exited {done.returncode} with {written} of {n} files out: "
                           f"{done.stderr[-500:]!r}")
    return elapsed


def check_released(corpus: Path, destination: Path, data: Path) -> None:
    """The forwarded files are not the originals: patient IDs and SOP Instance UIDs differ."""
    import pydicom

    originals = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(corpus.rglob("*.dcm"))[:20]]
    out = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(destination.iterdir())[:20]]
    ids = {ds.PatientID for ds in originals}
    uids = {ds.SOPInstanceUID for ds in originals}
    leaked = [ds for ds in out if ds.PatientID in ids or ds.SOPInstanceUID in uids]
    if leaked or not out:
        raise RuntimeError("the destination holds objects that were not de-identified")
    quarantine = data / "quarantine"
    if quarantine.exists() and any(p.is_file() for p in quarantine.rglob("*")):
        raise RuntimeError(f"deid quarantined objects of the corpus; see {quarantine}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=500, help="CT slices sent per run (500)")
    parser.add_argument("--patients", type=int, default=5, help="patients they belong to (5)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (median reported)")
    parser.add_argument("--workers", type=int, default=0, help="deid serve --workers (default: its own)")
    parser.add_argument("--destinations", default="fork,plain",
                        help="storescp kinds to forward to, comma-separated: fork (--fork, one "
                        "process per association), plain (one association at a time)")
    parser.add_argument("--no-fork", action="store_true", help="the same as --destinations plain")
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="also time the node of another checkout of deid (e.g. a `git "
                        "archive` of main), side by side with this one")
    parser.add_argument("--intake-alone", action="store_true",
                        help="also time the node's intake with its workers paused (SIGSTOP): what "
                        "storescu -> deid serve takes with the machine to itself")
    parser.add_argument("--run-workers", type=int, default=2,
                        help="also time `deid run --workers N` on the same files (0: do not)")
    parser.add_argument("--profile", default="vghtpe")
    parser.add_argument("--corpus", type=Path, default=Path(tempfile.gettempdir()) / "deid-bench-corpus")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a fresh temp dir)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in (STORESCU, STORESCP, ECHOSCU):
        if not os.access(tool, os.X_OK):
            log(f"missing {tool} (Debian package dcmtk)")
            return 1
    env = deid_env()
    deid, why = find_deid(env)
    if deid is None:
        log(f"deid cannot run: {why}")
        return 1
    corpus, manifest = ensure_corpus(args.corpus, args.slices, args.patients, jobs=2)
    n = manifest["files"]
    work = args.work or Path(tempfile.mkdtemp(prefix="deid-bench-serve-"))
    work.mkdir(parents=True, exist_ok=True)
    key, why = make_key(deid, env, work)
    if key is None:
        log(why)
        return 1
    for path in sorted(corpus.rglob("*.dcm")):  # warm the page cache
        path.read_bytes()
    warmup = make_warmup(work / "warmup")  # another object, sent before timing
    kinds = ["plain"] if args.no_fork else [k.strip() for k in args.destinations.split(",")]
    if not kinds or any(k not in ("fork", "plain") for k in kinds):
        log(f"--destinations: fork, plain or both (got {args.destinations!r})")
        return 1
    methods = []
    for kind in kinds:
        fork = kind == "fork"
        what = "forking storescp" if fork else "plain storescp"
        log(f"check: one untimed deid serve run ({n} files) to a {what} ...")
        seconds, _ = run_deid(corpus, n, work, deid, key, args, fork, warmup, check=True)
        log(f"check: all {n} files arrived de-identified in {seconds:.1f} s")
        methods += [Method(f"direct-{kind}", f"storescu -> {what}", fork),
                    Method(f"deid-{kind}", f"storescu -> deid serve -> {what}", fork)]
        if args.compare:
            methods.append(Method(f"compare-{kind}", f"storescu -> compared node -> {what}", fork))
    if args.intake_alone:
        methods.append(Method("intake-alone", "storescu -> deid serve, workers paused", kinds[0] == "fork"))
    if args.run_workers:
        methods.append(Method("deid-run", f"deid run --workers {args.run_workers}"))

    for round_number in range(args.rounds):
        shift = round_number % len(methods)
        for method in methods[shift:] + methods[:shift]:
            if method.key.startswith("direct-"):
                method.times.append(run_direct(corpus, n, work, method.fork))
            elif method.key == "deid-run":
                method.times.append(run_deid_run(corpus, n, work, deid, key, args))
            elif method.key == "intake-alone":
                _elapsed, intake = run_deid(corpus, n, work, deid, key, args, method.fork, warmup,
                                            paused=True)
                method.times.append(intake)  # (its end to end waits for paused workers: no measure)
            else:
                checkout = args.compare if method.key.startswith("compare-") else None
                elapsed, intake = run_deid(corpus, n, work, deid, key, args, method.fork, warmup,
                                           checkout=checkout)
                method.times.append(elapsed)
                method.intake.append(intake)
            log(f"round {round_number + 1}: {method.key:12s} {method.times[-1]:7.2f} s "
                f"({n / method.times[-1]:.0f} files/s)")

    medians = {m.key: statistics.median(m.times) for m in methods}
    load = os.getloadavg()[1]
    results: dict = {
        "files": n, "bytes": manifest["bytes"], "rounds": args.rounds, "cpus": os.cpu_count(),
        "repo": str(REPO), "load_average_5min": load,
        "times": {m.key: m.times for m in methods}, "median_seconds": medians,
        "files_per_s": {k: n / v for k, v in medians.items()},
    }
    print()
    print(f"{n} CT slices {manifest['size']}x{manifest['size']} ({manifest['bytes'] / 1e6:.0f} MB), "
          f"median of {args.rounds} rounds, {os.cpu_count()} CPUs, load average {load:.1f} "
          "(anything else running skews every method)")
    for m in methods:
        note = ""
        if m.intake:
            intake = statistics.median(m.intake)
            results.setdefault("deid_intake_seconds", {})[m.key] = intake
            note = f" (intake done after {intake:.2f} s)"
        print(f"  {m.label:48s} {medians[m.key]:7.2f} s  {n / medians[m.key]:6.0f} files/s{note}")
    run = medians.get("deid-run")
    for kind in kinds:
        for prefix, name in (("deid", "deid serve"), ("compare", "--compare's")):
            if f"{prefix}-{kind}" not in medians:
                continue
            node, direct = medians[f"{prefix}-{kind}"], medians[f"direct-{kind}"]
            results.setdefault("ratio_to_direct", {})[f"{prefix}-{kind}"] = direct / node
            line = f"  {name:10s} -> {kind:5s} storescp: {direct / node:.3f} of direct"
            if run:
                results.setdefault("ratio_to_deid_run", {})[f"{prefix}-{kind}"] = run / node
                line += f", {run / node:.2f} of deid run --workers {args.run_workers}"
            print(line)
    if "intake-alone" in medians and run:
        alone = medians["intake-alone"]
        print(f"  the intake alone (workers paused): {run / alone:.2f} of deid run --workers "
              f"{args.run_workers}: no node end to end can be faster than its intake")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
