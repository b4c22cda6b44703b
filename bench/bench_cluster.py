#!/usr/bin/env python3
"""Benchmark ``deid run --cluster`` against ``deid run --workers 1/2`` on this machine.

A benchmark, not a test: it times whole ``deid run`` processes (wall clock) on bench_run.py's
corpus of 512x512 CT slices, round-robin, with a real ``dask scheduler`` and ``dask worker``
processes (``--nworkers 1 --nthreads 1``) started once, on 127.0.0.1, before the timing: one
cluster with one worker, one with two.  It prints the median per method, objects/s, the client's
CPU time per object (the client claims, renames and records every object: its ceiling for a
bigger cluster), and the cost of one more task (the same run with one file per task).

    python bench/bench_cluster.py                      # 300 slices, 3 rounds
    python bench/bench_cluster.py --slices 200 --rounds 1 --json /tmp/cluster.json

See bench/README.md for figures and the projection to a bigger cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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
from bench_run import deid_env, ensure_corpus, git_commit, log

# deid run with one file per task: the extra tasks' cost is the overhead of a task
ONE_FILE_PER_TASK = """
import sys
from deid.cluster import client
from deid.cli import main
client.FILES_PER_TASK = 1
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Method:
    key: str
    label: str
    argv: list[str]  # with {src} and {out}
    times: list[float] = field(default_factory=list)
    cluster: Cluster | None = None
    cpu: list[float] = field(default_factory=list)  # the deid process's user+sys seconds
    scheduler_cpu: list[float] = field(default_factory=list)
    workers_cpu: list[float] = field(default_factory=list)
    empty: bool = False  # run on an empty folder: the client's fixed cost


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """``dask scheduler`` and N ``dask worker --nworkers 1 --nthreads 1`` on 127.0.0.1."""

    def __init__(self, workers: int, logs: Path) -> None:
        dask = str(Path(sys.executable).with_name("dask"))
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.processes: list[subprocess.Popen] = []
        env = deid_env()
        logs.mkdir(parents=True, exist_ok=True)
        self._start([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                    logs / "scheduler.log", env)
        self._wait(lambda: _listening(port), "the scheduler")
        for n in range(workers):
            self._start([dask, "worker", self.address, "--nworkers", "1", "--nthreads", "1", "--host",
                         "127.0.0.1", "--no-dashboard"], logs / f"worker-{n}.log", env)
        self._wait(lambda: all("Registered to:" in (logs / f"worker-{n}.log").read_text()
                               for n in range(workers)), "the workers")

    def _start(self, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        with open(log_path, "wb") as handle:
            self.processes.append(subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                                   start_new_session=True))

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + 120
        while not ready():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.stop()
                raise SystemExit(f"{what} did not start")
            time.sleep(0.1)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds (user + sys) so far of the scheduler, and of the workers (nannies included)."""
        import psutil

        def of(process: subprocess.Popen) -> float:
            try:
                tree = psutil.Process(process.pid)
                return sum(sum(p.cpu_times()[:2]) for p in [tree, *tree.children(recursive=True)])
            except psutil.Error:
                return 0.0

        return of(self.processes[0]), sum(of(p) for p in self.processes[1:])

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and the child's CPU seconds (user + sys) of one run."""
    subprocess.run(["sync"], check=False)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), result


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300, help="512x512 CT slices (default 300)")
    parser.add_argument("--patients", type=int, default=5, help="patients the slices are spread over")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=Path(tempfile.gettempdir()) / "deid-bench-corpus")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    data, manifest = ensure_corpus(args.corpus, args.slices, args.patients, os.cpu_count() or 1)
    env = deid_env()
    scratch = Path(tempfile.mkdtemp(prefix="deid-bench-cluster-"))
    key = scratch / "bench.key"
    subprocess.run([sys.executable, "-m", "deid", "keygen", str(key)], env=env, check=True)
    one, two = Cluster(1, scratch / "dask-1"), Cluster(2, scratch / "dask-2")
    try:
        run = [sys.executable, "-m", "deid", "run", "{src}", "--out", "{out}", "--key-file", str(key),
               "--no-progress", "-q"]
        methods = [
            Method("deid-w1", "deid run --workers 1", [*run, "--workers", "1"]),
            Method("deid-w2", "deid run --workers 2", [*run, "--workers", "2"]),
            Method("dask-1", "--cluster, 1 dask worker", [*run, "--cluster", one.address], cluster=one),
            Method("dask-2", "--cluster, 2 dask workers", [*run, "--cluster", two.address], cluster=two),
            Method("dask-2-t1", "--cluster, 2 workers, 1 file/task",
                   [sys.executable, "-c", ONE_FILE_PER_TASK, *run[3:], "--cluster", two.address], cluster=two),
            Method("dask-empty", "--cluster, an empty input folder", [*run, "--cluster", two.address], cluster=two,
                   empty=True),
        ]
        (scratch / "empty").mkdir()

        def argv_of(method: Method, out: Path) -> list[str]:
            src = scratch / "empty" if method.empty else data
            return [a.replace("{src}", str(src)).replace("{out}", str(out)) for a in method.argv]

        # check: the cluster's output is the local one, byte for byte (untimed)
        for method in (methods[0], methods[3]):
            _, _, result = timed(argv_of(method, scratch / f"check-{method.key}" / "out"), env)
            if result.returncode != 0:
                raise SystemExit(f"{method.key} failed: {result.stderr[-2000:]}")
        same = tree(scratch / "check-deid-w1" / "out") == tree(scratch / "check-dask-2" / "out")
        log(f"check: --cluster output {'==' if same else '!='} --workers 1 output ({args.slices} files)")
        if not same:
            return 1
        for round_ in range(args.rounds):
            order = methods[round_ % len(methods):] + methods[:round_ % len(methods)]
            for method in order:
                out = scratch / f"r{round_}-{method.key}" / "out"
                before = method.cluster.cpu() if method.cluster else (0.0, 0.0)
                wall, cpu, result = timed(argv_of(method, out), env)
                after = method.cluster.cpu() if method.cluster else (0.0, 0.0)
                if result.returncode != 0:
                    raise SystemExit(f"{method.key} failed: {result.stderr[-2000:]}")
                method.times.append(wall)
                method.cpu.append(cpu)
                method.scheduler_cpu.append(after[0] - before[0])
                method.workers_cpu.append(after[1] - before[1])
                shutil.rmtree(out.parent)
                log(f"round {round_ + 1} {method.key:10s} {wall:7.2f} s  CPU s: client {cpu:6.2f} "
                    f"scheduler {after[0] - before[0]:5.2f} workers {after[1] - before[1]:6.2f}")
    finally:
        one.stop()
        two.stop()

    n = args.slices
    figures: dict[str, dict] = {}
    log(f"\n{n} CT slices 512x512 ({manifest['bytes'] / 1e6:.0f} MB), {args.rounds} round(s), "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, deid {git_commit()}")
    log(f"{'method':10s} {'label':36s} {'median s':>9s} {'obj/s':>7s}   CPU ms/obj: client scheduler workers")
    for method in methods:
        wall = statistics.median(method.times)
        cpu = [statistics.median(v) for v in (method.cpu, method.scheduler_cpu, method.workers_cpu)]
        figures[method.key] = {"seconds": wall, "objects_per_second": 0 if method.empty else n / wall,
                               "cpu_seconds": dict(zip(("client", "scheduler", "workers"), cpu)),
                               "times": method.times}
        if method.empty:
            log(f"{method.key:10s} {method.label:36s} {wall:9.2f}         CPU s: client {cpu[0]:.2f}")
            continue
        log(f"{method.key:10s} {method.label:36s} {wall:9.2f} {n / wall:7.1f}   "
            + " ".join(f"{1000 * c / n:6.2f}" for c in cpu))
    fixed = figures["dask-empty"]["cpu_seconds"]["client"]
    client = (figures["dask-2"]["cpu_seconds"]["client"] - fixed) / n
    worker = figures["dask-1"]["cpu_seconds"]["workers"] / n
    log(f"client CPU per object (beyond its {fixed:.2f} s start): {1000 * client:.2f} ms -> one client core "
        f"places and records up to {1 / client:.0f} obj/s; one worker core: {1000 * worker:.1f} ms/obj "
        f"({1 / worker:.1f} obj/s)")
    tasks_default = -(-n // min(32, -(-n // 8)))  # batches of the default size with 2 threads
    extra = n - tasks_default
    t1, t32 = figures["dask-2-t1"], figures["dask-2"]
    per_task = {"wall_ms": 1000 * (t1["seconds"] - t32["seconds"]) / extra,
                **{f"{k}_cpu_ms": 1000 * (t1["cpu_seconds"][k] - t32["cpu_seconds"][k]) / extra
                   for k in ("client", "scheduler", "workers")}, "tasks_default": tasks_default}
    log(f"one more task ({tasks_default} tasks of up to 32 files vs {n} of 1): {per_task['wall_ms']:.1f} ms wall "
        f"with 2 workers; CPU ms: client {per_task['client_cpu_ms']:.2f}, scheduler "
        f"{per_task['scheduler_cpu_ms']:.2f}, workers {per_task['workers_cpu_ms']:.2f}")
    figures["per_task"] = per_task
    figures["client_cpu_ms_per_object"] = {"ms": 1000 * client, "fixed_seconds": fixed}
    figures["worker_cpu_ms_per_object"] = 1000 * worker
    if args.json:
        args.json.write_text(json.dumps({"slices": n, "commit": git_commit(), "figures": figures}, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
