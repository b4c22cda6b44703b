"""One ``BaseTag`` object per tag for the process: the keys the scan gives a data set's elements,
and the tags deid looks them up by.

A data set's elements are keyed by ``BaseTag`` (pydicom's ``int`` subclass), whose ``__eq__`` is a
Python method: a dict look-up with a plain ``int`` (or another ``BaseTag`` object of the same
value) calls it on the entry it finds, ~0.15 µs; with the very object the dict holds it compares
by identity, ~0.03 µs.  The scan (deid.io.scan) keys its elements with :func:`tag_key`'s objects,
and the checks and peeks look up with them.  Only identity changes: the values, hashes and
order are those of ``BaseTag(tag)``.
"""

from __future__ import annotations

from pydicom.tag import BaseTag

KEYS: dict[int, BaseTag] = {}  # tag -> its object (read it; tag_key adds to it)
MOST = 1 << 15  # tags kept (a file of many odd private tags cannot grow the table past this)


def tag_key(tag: int) -> BaseTag:
    """The process's ``BaseTag`` for ``tag`` (a new one once :data:`MOST` are kept)."""
    found = KEYS.get(tag)
    if found is None:
        found = BaseTag(tag)
        if len(KEYS) < MOST:
            KEYS[int(tag)] = found
    return found

