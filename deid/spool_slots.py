"""The format of a spool slot: a reusable file holding one received object behind a fixed header.

A slot file starts with :data:`HEADER_SIZE` bytes: the magic ``deidslot``, the format version, the
object's token (random, 16 bytes: it names this object, never its content), the payload's length
and the BLAKE3 digest of those header fields and the payload.  The payload follows; the bytes
after it (left by an older, larger object, or preallocated) are not part of it.

A header whose digest does not match its payload was torn by a crash while being written (never
answered success) or damaged since: the slot holds no object (:func:`slot_object`), and a read of
it is refused (:func:`read_object` raises :class:`SlotDamaged`, an ``OSError``).
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from blake3 import blake3

MAGIC = b"deidslot"
VERSION = 1
#: magic, version, (reserved), token, payload length, digest
_HEADER = struct.Struct("<8sH6x16sQ32s")
HEADER_SIZE = _HEADER.size
_DIGESTED = HEADER_SIZE - 32  # the header's bytes before the digest, digested with the payload


class SlotDamaged(OSError):
    """A slot does not hold the object asked for whole (torn, damaged, or holding another)."""


@dataclass(frozen=True)
class Header:
    """What a slot's header says: the object's token (hex), payload length and digest."""

    token: str
    length: int
    digest: bytes


def new_token() -> str:
    """A fresh object token (hex; random, so nothing of the object is in it)."""
    return uuid.uuid4().hex


def pack_header(token: str, parts: Sequence[bytes | memoryview]) -> bytes:
    """The header of a slot holding ``parts`` (the object's bytes, in order) as ``token``."""
    length = sum(len(part) for part in parts)
    fields = _HEADER.pack(MAGIC, VERSION, bytes.fromhex(token), length, b"")[:_DIGESTED]
    return fields + _digest(fields, parts)


def _digest(fields: bytes, parts: Sequence[bytes | memoryview]) -> bytes:
    """The header's digest: BLAKE3 of its ``fields`` (all before the digest) and the payload."""
    hasher = blake3(fields)
    for part in parts:
        hasher.update(part)
    return hasher.digest()


def unpack_header(raw: bytes) -> Header | None:
    """The header in ``raw`` (a slot's first bytes), or None when it is none of ours (empty,
    zeros, another format version)."""
    if len(raw) < HEADER_SIZE:
        return None
    magic, version, token, length, digest = _HEADER.unpack_from(raw)
    if magic != MAGIC or version != VERSION:
        return None
    return Header(token.hex(), length, digest)


def read_header(fd: int) -> Header | None:
    """The header of the slot open as ``fd`` (None: it holds nothing we wrote whole)."""
    return unpack_header(os.pread(fd, HEADER_SIZE, 0))


def read_payload(fd: int, header: Header) -> bytes:
    """The payload ``header`` describes, checked against its digest (:class:`SlotDamaged` when
    it does not match: a torn or damaged slot)."""
    if header.length > os.fstat(fd).st_size - HEADER_SIZE:  # (a damaged length: not read)
        raise SlotDamaged("spool slot shorter than its header says")
    chunks = []
    offset, left = HEADER_SIZE, header.length
    while left:
        chunk = os.pread(fd, left, offset)
        if not chunk:
            raise SlotDamaged("spool slot shorter than its header says")
        chunks.append(chunk)
        offset += len(chunk)
        left -= len(chunk)
    payload = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    fields = _HEADER.pack(MAGIC, VERSION, bytes.fromhex(header.token), header.length, b"")
    if _digest(fields[:_DIGESTED], (payload,)) != header.digest:
        raise SlotDamaged("spool slot does not match its checksum")
    return payload


def read_object(path: str | os.PathLike[str], token: str) -> bytes:
    """The payload of the object ``token`` in the slot at ``path`` (OSError when the file cannot
    be read, :class:`SlotDamaged` when it does not hold that object whole)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        header = read_header(fd)
        if header is None or header.token != token:
            raise SlotDamaged("spool slot does not hold the object asked for")
        return read_payload(fd, header)
    finally:
        os.close(fd)


def slot_object(path: str | os.PathLike[str]) -> tuple[str, bytes] | None:
    """The object the slot at ``path`` holds whole (its token and payload), or None (torn,
    damaged, empty, or not a slot)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        header = read_header(fd)
        if header is None:
            return None
        try:
            return header.token, read_payload(fd, header)
        except SlotDamaged:
            return None
    finally:
        os.close(fd)


def slot_token(path: str | os.PathLike[str]) -> str | None:
    """The token the header of the slot at ``path`` names (payload not checked), or None."""
    fd = os.open(path, os.O_RDONLY)
    try:
        header = read_header(fd)
    finally:
        os.close(fd)
    return header.token if header is not None else None


#: the most buffers one pwritev takes
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16


def write_object(fd: int, header: bytes, parts: Sequence[bytes | memoryview]) -> None:
    """Write ``header`` and ``parts`` at the start of the slot open as ``fd`` (no sync)."""
    views = [memoryview(header)] + [memoryview(part) for part in parts if len(part)]
    offset = 0
    while views:
        written = os.pwritev(fd, views[:_IOV_MAX], offset)
        offset += written
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]
