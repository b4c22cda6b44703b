"""The run's worker processes (deid.run.pool): results in input order whatever the order in
which workers finish, read as they are needed, a worker's error raised at its turn, a dead worker
replaced and what it held done again, an item that kills every worker given up on alone, workers
that cannot work named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from deid.run.pool import Pool, WorkerLost

_SEEN: list[int] = []  # in a worker: what it was set up with


def _setup(tag: int) -> None:
    _SEEN.append(tag)


def _slow_evens(item: int) -> tuple[int, int, int]:
    """Items of even batches take longer: the other worker finishes later batches first."""
    if (item // 4) % 2 == 0:
        time.sleep(0.005)
    return item, os.getpid(), _SEEN[-1]


def _fail_at_ten(item: int) -> int:
    if item == 10:
        raise OSError(28, "No space left on device", "/out/a.dcm")
    return item


def _die_at_ten(item: int) -> int:
    if item == 10:
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def test_results_come_in_input_order_from_every_worker() -> None:
    with Pool(2, _setup, (7,), _slow_evens) as pool:
        results = list(pool.map(range(100)))
    assert [item for item, _pid, _tag in results] == list(range(100))
    assert len({pid for _item, pid, _tag in results}) == 2  # both workers did some
    assert {tag for _item, _pid, tag in results} == {7}  # each was set up first
    assert os.getpid() not in {pid for _item, pid, _tag in results}


def test_the_input_is_read_as_the_workers_need_it() -> None:
    taken: list[int] = []

    def items() -> Iterator[int]:
        for item in range(10_000):
            taken.append(item)
            yield item

    with Pool(2, _setup, (0,), _slow_evens, batch=4, ahead=2, window=8) as pool:
        results = pool.map(items())
        assert next(results)[0] == 0
        assert len(taken) <= 8 * 4  # never more than the window ahead of what was given back
        for _ in range(99):
            next(results)
        assert len(taken) <= 100 + 8 * 4


def test_a_workers_error_is_raised_at_its_turn() -> None:
    with Pool(2, _setup, (0,), _fail_at_ten) as pool:
        results = pool.map(range(40))
        assert [next(results) for _ in range(8)] == list(range(8))  # the batches before 8-11
        with pytest.raises(OSError) as raised:
            next(results)
    assert raised.value.filename == "/out/a.dcm"


def _given_up(item: int, deaths: int) -> tuple[str, int, int]:
    return ("crashed", item, deaths)


def _die_once_at_ten(marker: str):
    def work(item: int) -> int:
        if item == 10 and not os.path.exists(marker):
            open(marker, "w").close()  # the next worker given item 10 does it
            os.kill(os.getpid(), signal.SIGKILL)
        return item
    return work


def test_without_a_crashed_result_a_lost_worker_stops_the_map_with_what_to_do() -> None:
    with Pool(2, _setup, (0,), _die_at_ten) as pool, pytest.raises(WorkerLost) as raised:
        list(pool.map(range(40)))
    assert "killed (signal 9)" in str(raised.value)
    assert "run the same command again" in str(raised.value)


def test_a_dead_worker_is_replaced_and_what_it_held_is_done_again(tmp_path) -> None:
    """A worker killed once (the kernel's out-of-memory killer): every item still comes back,
    in order, none given up on; the pool keeps its two workers."""
    with Pool(2, _setup, (0,), _die_once_at_ten(str(tmp_path / "died")),
              crashed=_given_up) as pool:
        results = list(pool.map(range(100)))
        assert len(pool._workers) == 2
        assert all(process.is_alive() for _conn, process in pool._workers)
    assert results == list(range(100))
    assert (tmp_path / "died").exists()


def test_an_item_every_worker_dies_on_is_given_up_on_alone_and_the_rest_go_on() -> None:
    """Item 10 kills each worker it reaches: its batch (8-11) is done item by item, 8, 9 and 11
    come back, 10 is given up on after two workers died on it alone (three deaths in all)."""
    with Pool(2, _setup, (0,), _die_at_ten, crashed=_given_up) as pool:
        results = list(pool.map(range(40)))
    assert results == [*range(10), ("crashed", 10, 3), *range(11, 40)]


def test_a_one_item_batch_is_given_up_on_after_two_deaths() -> None:
    with Pool(2, _setup, (0,), _die_at_ten, crashed=_given_up, batch=1) as pool:
        results = list(pool.map(range(20)))
    assert results == [*range(10), ("crashed", 10, 2), *range(11, 20)]


def _exit_at_start(_tag: int) -> None:
    os._exit(3)


def test_workers_that_cannot_start_stop_the_map_with_what_to_do() -> None:
    with Pool(2, _exit_at_start, (0,), _slow_evens, crashed=_given_up) as pool, \
            pytest.raises(WorkerLost) as raised:
        list(pool.map(range(40)))
    assert "ended (exit code 3)" in str(raised.value)


def test_closing_stops_every_worker() -> None:
    pool = Pool(2, _setup, (0,), _slow_evens)
    results = pool.map(range(1000))
    next(results)
    processes = [process for _conn, process in pool._workers]
    pool.close()
    assert all(not process.is_alive() for process in processes)


ORPHANED = """
import os, sys, time
from deid.run.pool import Pool

def setup():
    pass

def slow(item):
    time.sleep(0.02)
    return item

pool = Pool(2, setup, (), slow)
results = pool.map(range(100_000))
next(results)
print(" ".join(str(process.pid) for _conn, process in pool._workers), flush=True)
time.sleep(60)
"""


def test_workers_leave_when_the_runs_process_dies() -> None:
    """A run killed (kill -9) leaves no worker behind: each finishes what it holds and leaves."""
    run = subprocess.Popen([sys.executable, "-c", ORPHANED], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in run.stdout.readline().split()]
        assert len(pids) == 2
    finally:
        run.kill()
        run.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    assert not [pid for pid in pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has left
    except FileNotFoundError:
        return False
