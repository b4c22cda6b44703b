"""A worker's hand-off to a destination's sender process (deid.sender): the object is copied into
the worker's shared memory block, and the sender sends those very bytes over its association;
a block grows for a larger object and loses its name once the sender has opened it; after a
request its worker gave up on, the worker moves to a new block, and the sender answers the old
request a retry (never sends what another object left in a reused block); a sender started
again is handed the object once more, in a new block."""

from __future__ import annotations

import errno
import multiprocessing
import os
import time
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import pytest
from pydicom import dcmread
from servenode import Storescp

from deid import sender as sender_module
from deid.forward import DONE, RETRY, Destination
from deid.sender import SharedSender, make_lines, sender_main
from deid.synthetic import make_patient
from deid.synthetic.many import write_many_ct_slices


@pytest.fixture
def context():
    return multiprocessing.get_context("spawn")


def _start_sender(context, lines, port: int):
    process = context.Process(
        target=sender_main,
        args=(Destination("DEST", "127.0.0.1", port), lines["DEST"], 1, 10.0, os.getpid()),
        daemon=True,
    )
    process.start()
    return process


def _stop_sender(lines, process) -> None:
    lines["DEST"].stop()
    process.join(30)
    if process.is_alive():
        process.kill()


def test_what_a_worker_hands_over_arrives_byte_for_byte(tmp_path: Path, context) -> None:
    small = write_many_ct_slices(tmp_path / "small", 2, make_patient(1))
    large = write_many_ct_slices(tmp_path / "large", 1, make_patient(2), size=1024)
    files = [*small, *large]  # the last one (2 MiB of pixels) outgrows the first block
    lines = make_lines(context, ["DEST"], 1)
    with Storescp(tmp_path / "received") as scp:
        process = _start_sender(context, lines, scp.port)
        sender = SharedSender(lines, 0, "w0", wait=60)
        try:
            blocks = []
            for path in files:
                assert sender.send("DEST", path.read_bytes()).outcome == DONE
                blocks.append(sender.hand_offs["DEST"].block.name)
            assert blocks[0] == blocks[1] != blocks[2]  # one block, until one is too small
            with pytest.raises(FileNotFoundError):  # opened by the sender: no name left behind
                SharedMemory(name=blocks[2])
        finally:
            sender.close()
            _stop_sender(lines, process)
        received = scp.received()
    assert _instances(received) == _instances(files)


def test_after_a_request_given_up_on_the_worker_moves_to_a_new_block(tmp_path: Path,
                                                                       context) -> None:
    first, second, third = write_many_ct_slices(tmp_path / "in", 3, make_patient(3))
    lines = make_lines(context, ["DEST"], 1)
    sender = SharedSender(lines, 0, "w0", wait=0.2)
    blocks = []
    for path in (first, second):  # no sender runs yet: nobody answers, the worker gives up
        late = sender.send("DEST", path.read_bytes())
        assert late.outcome == RETRY and late.status is None
        blocks.append(sender.hand_offs["DEST"].block.name)
    assert blocks[0] != blocks[1]  # the second went into a new block: the first was let go of
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=blocks[0])
    with Storescp(tmp_path / "received") as scp:
        process = _start_sender(context, lines, scp.port)
        sender.wait = 60
        try:
            # the sender finds the first request's block gone (a retry, dropped as late); the
            # second's too, or it sends it as it was left (whether the sender opened its block
            # before the worker let go of it); then the third, from a new block
            assert sender.send("DEST", third.read_bytes()).outcome == DONE
            assert sender.hand_offs["DEST"].block.name not in blocks
        finally:
            sender.close()
            _stop_sender(lines, process)
        received = scp.received()
    got, sent = _instances(received), _instances([second, third])
    assert got.items() <= sent.items() and _instances([third]).items() <= got.items()


def _instances(paths: list[Path]) -> dict[str, bytes]:
    """Each object's SOP Instance UID and pixel data (storescp writes its own file meta)."""
    return {str(ds.SOPInstanceUID): ds.PixelData for ds in map(dcmread, paths)}


def test_a_sender_started_again_gets_the_object_in_a_new_block(tmp_path: Path, context) -> None:
    first, second = write_many_ct_slices(tmp_path / "in", 2, make_patient(4))
    lines = make_lines(context, ["DEST"], 1)
    sender = SharedSender(lines, 0, "w0", wait=60)
    with Storescp(tmp_path / "received") as scp:
        process = _start_sender(context, lines, scp.port)
        try:
            assert sender.send("DEST", first.read_bytes()).outcome == DONE
            block = sender.hand_offs["DEST"].block.name
            _stop_sender(lines, process)
            process = _start_sender(context, lines, scp.port)  # it cannot open the old block
            assert sender.send("DEST", second.read_bytes()).outcome == DONE
            assert sender.hand_offs["DEST"].block.name != block
        finally:
            sender.close()
            _stop_sender(lines, process)
        received = scp.received()
    assert _instances(received) == _instances([first, second])


@pytest.fixture
def no_shared_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hand-off block can be had (a container's small /dev/shm)."""

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)


def _send_alone(tmp_path: Path, context, path: Path, **options: object):
    """One object sent by a worker's SharedSender (``options``: its keywords) through a real
    sender process to storescp: the result, the worker's hand-off block after it, and what
    arrived (SOP Instance UID -> pixel data)."""
    lines = make_lines(context, ["DEST"], 1)
    with Storescp(tmp_path / "received") as scp:
        process = _start_sender(context, lines, scp.port)
        sender = SharedSender(lines, 0, "w0", wait=60, **options)
        try:
            result = sender.send("DEST", path.read_bytes())
            block = sender.hand_offs["DEST"].block
        finally:
            sender.close()
            _stop_sender(lines, process)
        received = scp.received()
    return result, block, _instances(received)


def test_an_object_no_block_can_be_had_for_goes_through_the_request_pipe(
    tmp_path: Path, context, no_shared_memory: None,
) -> None:
    (path,) = write_many_ct_slices(tmp_path / "in", 1, make_patient(5))
    result, block, received = _send_alone(tmp_path, context, path)
    assert result.outcome == DONE and block is None
    assert received == _instances([path])


def _hand_over_and_wait(lines, path: str, ready) -> None:
    """A worker (its own process) that hands an object over and waits for the answer."""
    sender = SharedSender(lines, 0, "dies", wait=600)
    ready.set()
    sender.send("DEST", Path(path).read_bytes())


def test_a_worker_killed_while_it_waits_does_not_stall_the_next_one(tmp_path: Path,
                                                                    context) -> None:
    """A worker killed by the system while its object is with the sender (waiting for the
    answer, or just after handing it over): the worker started in its place is answered at once,
    and so is the other slot (before, a killed worker could keep a lock of the line for good)."""
    first, second, third = write_many_ct_slices(tmp_path / "in", 3, make_patient(6))
    lines = make_lines(context, ["DEST"], 2)
    ready = context.Event()
    dying = context.Process(target=_hand_over_and_wait, args=(lines, str(first), ready),
                            daemon=True)
    dying.start()
    assert ready.wait(60)
    time.sleep(0.5)  # handed over; no sender runs yet, so it is waiting for the answer
    dying.kill()
    dying.join(10)
    with Storescp(tmp_path / "received") as scp:
        process = _start_sender(context, lines, scp.port)
        again = SharedSender(lines, 0, "again", wait=30)
        other = SharedSender(lines, 1, "w1", wait=30)
        try:
            assert again.send("DEST", second.read_bytes()).outcome == DONE
            assert other.send("DEST", third.read_bytes()).outcome == DONE
        finally:
            again.close()
            other.close()
            _stop_sender(lines, process)
        received = scp.received()
    assert _instances([second, third]).items() <= _instances(received).items()


def test_a_node_worker_hands_an_object_no_block_can_be_had_for_over_in_a_file(
    tmp_path: Path, context, no_shared_memory: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a folder to spill to (the node's outgoing folder), the object goes through an
    owner-only file named in a small request (never through the request pipe in several writes),
    and no file is left once it is sent."""
    (path,) = write_many_ct_slices(tmp_path / "in", 1, make_patient(7))
    spill = tmp_path / "outgoing"
    spill.mkdir()
    seen: list[int] = []
    original = sender_module._spill

    def noted(where: Path, data: bytes) -> str:
        name = original(where, data)
        seen.append(os.stat(name).st_mode & 0o777)
        return name

    monkeypatch.setattr(sender_module, "_spill", noted)
    result, _block, received = _send_alone(tmp_path, context, path, spill=spill)
    assert result.outcome == DONE and received == _instances([path])
    assert seen == [0o600] and list(spill.iterdir()) == []


def test_an_outgoing_folder_that_refuses_the_file_sends_through_the_request_pipe(
    tmp_path: Path, context, no_shared_memory: None,
) -> None:
    (path,) = write_many_ct_slices(tmp_path / "in", 1, make_patient(8))
    result, _block, received = _send_alone(tmp_path, context, path,
                                           spill=tmp_path / "no such folder")
    assert result.outcome == DONE and received == _instances([path])
