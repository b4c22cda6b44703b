"""The digest of a released object's bytes that the released index keeps (deid.released).

New claims hold ``blake3:`` and the BLAKE3 hash in hex: a cryptographic hash, ~4x faster than
SHA-256 here (0.07 against 0.29 ms for a 512x512 CT slice, where SHA-256 was a tenth of a
``deid run`` object's time).  Indexes written before hold the SHA-256 in hex: :func:`same_content`
compares such a digest with the SHA-256 of the same bytes, so a release continued or run again
over an older index finds its own objects as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from blake3 import blake3

PREFIX = "blake3:"


def content_digest(data: bytes | memoryview) -> str:
    """What the released index keeps of ``data``."""
    return PREFIX + blake3(data).hexdigest()


def same_content(kept: str, digest: str, data: Callable[[], bytes | memoryview]) -> bool:
    """Whether ``kept`` (an index's digest, of either form) is the digest of the bytes whose
    :func:`content_digest` is ``digest``; ``data`` gives them (read only for an older digest)."""
    if kept.startswith(PREFIX):
        return kept == digest
    return kept == hashlib.sha256(data()).hexdigest()
