"""The dciodvfy gate: run dicom3tools' validator on the input and the output, compare errors.

The object is given on standard input from an anonymous in-memory file (dciodvfy needs to seek, so
not a pipe; no file on disk holds the original). Error lines are
compared without the values and UIDs that de-identification changes; what the output has more
of than the input is what de-identification added. Nothing dciodvfy prints reaches a reason or a
log: an error is described by a fixed category and, when it names one, the element's tag.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from functools import cache
from typing import IO

from pydicom.datadict import DicomDictionary, tag_for_keyword

from deid.errors import ObjectError
from deid.profile.tags import format_tag

TIMEOUT_SECONDS = 120
_UID = re.compile(r"\b\d+(?:\.\d+){2,}\b")  # 2.25.<n> (what remapping gives) has three parts
_NAMED_UID = re.compile(r"(\w+UID) [0-9.]+(?![0-9.])")  # '...ReferencedSOPInstanceUID 0': any UID value
_DATA_VALUE = re.compile(r" = <[^>]*>")  # ' = <value>'; 'Element=<Keyword>' has no spaces
_QUOTED = re.compile(r" = '.*?' \(0x[0-9a-fA-F]+\)")
_NUMBER = re.compile(r" = \d+")
_ITEM = re.compile(r"\[\d+\]")
_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"\(0x([0-9a-fA-F]{4}),0x([0-9a-fA-F]{4})\)")
_KEYWORD = re.compile(r"Element=<(\w+)>")
_NAME = re.compile(r"attribute <([^>]+)>")
_CATEGORIES = (
    ("Missing attribute", "a required attribute is missing"),
    ("zero length", "a required attribute is empty"),
    ("Empty attribute", "a required attribute is empty"),
    ("Value invalid for this VR", "a value does not fit its VR"),
    ("Value invalid", "a value is invalid"),
    ("Value dubious", "a value is dubious"),
    ("enumerated value", "a value is not one of the enumerated values"),
    ("Bad Sequence", "a sequence is malformed"),
)


def available() -> str | None:
    """The dciodvfy executable, or None when dicom3tools is not installed."""
    return shutil.which("dciodvfy")


def normalise(line: str) -> str:
    """An error line without data values, numbers, UIDs and item numbers."""
    line = _DATA_VALUE.sub(" = <>", line)
    line = _QUOTED.sub("", line)
    line = _NUMBER.sub(" = N", line)
    line = _UID.sub("<uid>", line)
    line = _NAMED_UID.sub(r"\1 <uid>", line)
    line = _ITEM.sub("", line)
    return _SPACE.sub(" ", line).strip()


def errors(data: bytes, executable: str) -> Counter[str]:
    """dciodvfy's error lines for a Part 10 object, normalised, counted."""
    try:
        with _seekable(data) as source:
            result = subprocess.run(
                [executable],
                stdin=source,
                capture_output=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ObjectError(
            "dciodvfy-failed",
            f"dciodvfy could not check the object ({exc.__class__.__name__}); "
            "check the dicom3tools installation",
            stage="check",
        ) from None
    text = (result.stdout + result.stderr).decode("utf-8", errors="replace")
    return Counter(normalise(line) for line in text.splitlines() if "Error" in line)


def _seekable(data: bytes) -> IO[bytes]:
    """A file holding ``data``, positioned at its start: in memory where the system allows it."""
    if hasattr(os, "memfd_create"):
        handle = os.fdopen(os.memfd_create("deid-dciodvfy", os.MFD_CLOEXEC), "w+b")
    else:  # pragma: no cover - not Linux: an unnamed temporary file (owner-only)
        handle = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it (with ... as)
    handle.write(data)
    handle.flush()
    handle.seek(0)
    return handle


def describe(line: str) -> tuple[str, str]:
    """A fixed description of an error line and the tag it names ('' when none): no value."""
    what = next((text for phrase, text in _CATEGORIES if phrase in line), "another error")
    tag = _TAG.search(line)
    if tag:
        return what, f"({tag.group(1).upper()},{tag.group(2).upper()})"
    keyword = _KEYWORD.search(line)
    number = tag_for_keyword(keyword.group(1)) if keyword else None
    if number is None and (name := _NAME.search(line)):
        number = _tags_by_name().get(name.group(1))
    return what, format_tag(number) if number is not None else ""


@cache
def _tags_by_name() -> dict[str, int]:
    """The data dictionary's attribute names (as dciodvfy prints them) -> tag."""
    return {entry[2]: tag for tag, entry in DicomDictionary.items()}


def check(original: bytes, released: bytes) -> tuple[list[str], int]:
    """The dciodvfy errors ``released`` has that ``original`` did not (normalised lines), and how
    many of its errors the original had too; raises ObjectError (fail closed) when dciodvfy is not
    installed or cannot run."""
    executable = available()
    if executable is None:
        raise ObjectError(
            "dciodvfy-not-available",
            "the profile turns on the dciodvfy gate (release_check.dciodvfy) but dciodvfy is not "
            "installed: install dicom3tools, or turn the gate off",
            stage="check",
        )
    after = errors(released, executable)
    added = after - errors(original, executable)
    return sorted(added.elements()), sum(after.values()) - sum(added.values())
