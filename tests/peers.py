"""Helpers for peer tests that run outside tools (DCMTK, dicom3tools) on our files.

A missing tool skips the test on a developer's machine and fails it in CI (``CI=true``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

_UID = re.compile(r"\b\d+(?:\.\d+){3,}\b")
_DATA_VALUE = re.compile(r" = <[^>]*>")  # ' = <value>'; 'Element=<Keyword>' has no spaces
_CHARACTER = re.compile(r" = '.*?' \(0x[0-9a-fA-F]+\)")
_NUMBER = re.compile(r" = \d+")
_SPACE = re.compile(r"\s+")


def require_tool(name: str) -> str:
    """Path of the executable ``name``; skip the test without it, or fail it in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"peer tool {name!r} is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _run(tool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool(tool), *map(str, args)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        check=False,
    )


def normalise_dciodvfy_line(line: str) -> str:
    """A dciodvfy message without the values and UIDs that de-identification changes."""
    line = _DATA_VALUE.sub(" = <>", line)
    line = _CHARACTER.sub("", line)
    line = _NUMBER.sub(" = N", line)
    line = _UID.sub("<uid>", line)
    return _SPACE.sub(" ", line).strip()


def dciodvfy_lines(path: str | Path) -> list[str]:
    """Every line dciodvfy (dicom3tools) prints about ``path``, stdout and stderr."""
    result = _run("dciodvfy", path)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def dciodvfy_errors(path: str | Path) -> list[str]:
    """dciodvfy's error lines for ``path``, normalised (see :func:`normalise_dciodvfy_line`).

    Element-name values in ``<...>`` (attribute and module names) are kept: they are what
    makes before/after comparisons meaningful; quoted data values and UIDs are not.
    """
    errors = [line for line in dciodvfy_lines(path) if "Error" in line]
    return list(dict.fromkeys(normalise_dciodvfy_line(line) for line in errors))


def dciodvfy_warnings(path: str | Path) -> list[str]:
    """dciodvfy's warning lines for ``path``, normalised."""
    warnings = [line for line in dciodvfy_lines(path) if "Warning" in line]
    return list(dict.fromkeys(normalise_dciodvfy_line(line) for line in warnings))


def dcmdump_ok(path: str | Path) -> bool:
    """True when DCMTK's dcmdump reads the whole file without an error."""
    result = _run("dcmdump", "-q", path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("E:")]
    return result.returncode == 0 and not errors
