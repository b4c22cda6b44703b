"""The slot file format: a header naming the object, its length and checksum, then its bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deid.spool_slots import (
    HEADER_SIZE,
    SlotDamaged,
    new_token,
    pack_header,
    read_object,
    slot_object,
    slot_token,
    write_object,
)


def _slot(path: Path, token: str, parts: list[bytes], *, size: int = 0) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if size:
            os.posix_fallocate(fd, 0, size)
        write_object(fd, pack_header(token, parts), parts)
    finally:
        os.close(fd)


def test_an_object_in_parts_reads_back_whole_and_trailing_bytes_are_ignored(
        tmp_path: Path) -> None:
    path, token = tmp_path / "a.slot", new_token()
    _slot(path, new_token(), [b"x" * 5000], size=8192)  # an older, larger object
    parts = [b"\x00" * 128 + b"DICM", b"", memoryview(b"body" * 100)]
    _slot(path, token, parts)
    assert path.stat().st_size == 8192
    assert read_object(path, token) == b"".join(parts)
    assert slot_object(path) == (token, b"".join(parts)) and slot_token(path) == token


def test_an_empty_object_is_an_object(tmp_path: Path) -> None:
    path, token = tmp_path / "a.slot", new_token()
    _slot(path, token, [b""])
    assert read_object(path, token) == b"" and slot_object(path) == (token, b"")


@pytest.mark.parametrize("where", [HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 600, 20])
def test_a_changed_byte_anywhere_is_a_damaged_slot(tmp_path: Path, where: int) -> None:
    """The checksum covers the header's fields and the payload (a torn write changes either)."""
    path, token = tmp_path / "a.slot", new_token()
    _slot(path, token, [os.urandom(1000)])
    data = bytearray(path.read_bytes())
    data[where] ^= 1
    path.write_bytes(bytes(data))
    assert slot_object(path) is None
    with pytest.raises(OSError):
        read_object(path, token)


def test_a_torn_write_holds_nothing(tmp_path: Path) -> None:
    """The new header written, half the new object over the old one: neither is there."""
    path, old, new = tmp_path / "a.slot", new_token(), new_token()
    _slot(path, old, [b"o" * 4000])
    payload = b"n" * 4000
    with path.open("r+b") as handle:
        handle.write(pack_header(new, [payload]) + payload[:2000])
    assert slot_object(path) is None and slot_token(path) == new
    with pytest.raises(SlotDamaged):
        read_object(path, new)
    with pytest.raises(SlotDamaged):
        read_object(path, old)


def test_a_slot_holding_another_object_or_none_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.slot"
    _slot(path, new_token(), [b"other"])
    with pytest.raises(SlotDamaged):
        read_object(path, new_token())
    path.write_bytes(bytes(HEADER_SIZE + 10))  # preallocated, never written
    assert slot_object(path) is None and slot_token(path) is None
    path.write_bytes(b"short")
    assert slot_object(path) is None


def test_a_slot_shorter_than_its_header_says_is_damaged(tmp_path: Path) -> None:
    path, token = tmp_path / "a.slot", new_token()
    _slot(path, token, [b"z" * 3000])
    os.truncate(path, HEADER_SIZE + 1000)
    assert slot_object(path) is None
    with pytest.raises(SlotDamaged):
        read_object(path, token)


def test_a_damaged_length_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    path, token = tmp_path / "a.slot", new_token()
    _slot(path, token, [b"z" * 3000])
    data = bytearray(path.read_bytes())
    data[32:40] = (1 << 60).to_bytes(8, "little")  # the length field
    path.write_bytes(bytes(data))
    assert slot_token(path) == token and slot_object(path) is None
    with pytest.raises(SlotDamaged):
        read_object(path, token)
