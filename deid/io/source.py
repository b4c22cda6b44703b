"""Open an input file safely: regular files only, never blocking, never reading past a size limit.

Discovery (``deid.intake.folders``) already skips links, FIFOs, devices and sockets; this is the
second guard, for an entry swapped between discovery and reading.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from deid.errors import ObjectError

_CHUNK = 1 << 30  # one read for most files (Linux reads at most about 2 GiB at once)
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)


class NotRegularFile(OSError):
    """The entry is a FIFO, device, socket or folder, not a file (it was not read)."""


def shown(path: Path | str) -> str:
    """A path as it may be shown to a person: a name that is not UTF-8 with its bytes escaped."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def too_large(size: int, limit: int) -> ObjectError:
    return ObjectError(
        "too-large", f"the file holds {size} bytes, more than the limit of {limit}; it was not read "
        "(if it is a real object, run again with a larger --max-object-size or the profile's "
        "limits.max_object_size: every run tries it again; else remove it from the input)", stage="read")


def read_source(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file ``path``.  A final link is not followed and a FIFO or device is
    never waited on (:class:`NotRegularFile`); a file over ``max_bytes`` is not read whole
    (``ObjectError`` ``too-large``)."""
    fd = os.open(path, _FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(f"not a regular file ({stat.filemode(info.st_mode)[0]})")
        if max_bytes is not None and info.st_size > max_bytes:
            raise too_large(info.st_size, max_bytes)
        limit = (max_bytes if max_bytes is not None else max(info.st_size, 1 << 62)) + 1
        parts: list[bytes] = []
        total = 0
        while total < limit:  # the size it had, plus one byte to see the end (or growth)
            want = info.st_size + 1 - total if total <= info.st_size else _CHUNK
            asked = min(want, limit - total, _CHUNK)
            chunk = os.read(fd, asked)
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
            if total == info.st_size and len(chunk) < asked:
                break  # the end, where fstat put it (no read more to be told so)
        if max_bytes is not None and total > max_bytes:
            raise too_large(total, max_bytes)
        return parts[0] if len(parts) == 1 else b"".join(parts)
    finally:
        os.close(fd)
