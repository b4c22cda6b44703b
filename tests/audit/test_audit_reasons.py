"""Every quarantine reason code deid can give has a 'what to do' in the report."""

from __future__ import annotations

import re
from pathlib import Path

from deid.audit.reasons import REASONS, UNKNOWN, describe

PACKAGE = Path(__file__).resolve().parents[2] / "deid"
_RAISED = re.compile(r'ObjectError\(\s*"([a-z]+(?:-[a-z]+)*)"')
_LITERAL = re.compile(r'"code":\s*"([a-z]+(?:-[a-z]+)*)"')


def test_every_code_in_the_source_is_described() -> None:
    codes = set()
    for path in PACKAGE.rglob("*.py"):
        if "synthetic" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        codes |= set(_RAISED.findall(text)) | set(_LITERAL.findall(text))
    assert codes >= {"not-dicom", "unreadable", "burned-in-annotation-risk", "internal-error"}
    assert sorted(codes - set(REASONS)) == []


def test_an_unknown_code_gets_a_generic_answer() -> None:
    assert describe("something-new") == UNKNOWN and "reason.json" in UNKNOWN[1]
