"""The check before write: what de-identification broke is quarantined; what the input already
had is counted and let through.

The IOD check runs on the de-identified dataset; only when it finds problems is the original read
again and checked the same way, and problems are matched by kind and element path without item
numbers (content items may have been removed). With the profile's ``release_check.dciodvfy``,
dciodvfy also runs on the original and the encoded output.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from deid.checks import dciodvfy
from deid.checks.iod import Problem, iod_problems
from deid.engine.vr import another_kind_of_value
from deid.errors import ObjectError
from deid.io.reader import read_object
from deid.profile.model import Profile


@dataclass
class CheckReport:
    """What the release check found that the input already had (let through)."""

    preexisting: list[Problem] = field(default_factory=list)  # the in-process IOD check's
    dciodvfy_preexisting: int = 0  # dciodvfy error lines the input had too (gate on)

    @property
    def count(self) -> int:
        return len(self.preexisting) + self.dciodvfy_preexisting


def check_iod(original: bytes, released: Dataset, sop_class_uid: str) -> CheckReport:
    """Raise ObjectError ``iod-check-failed`` naming the first problem de-identification added."""
    after = iod_problems(released, sop_class_uid)
    if not after:
        return CheckReport()
    source: Dataset | None
    try:
        source = read_object(original, private_drop=_values_unchecked)
        before = iod_problems(source, sop_class_uid)
    except ObjectError:
        source, before = None, []
    remaining = Counter(p.key for p in before)
    added: list[Problem] = []
    kept: list[Problem] = []
    for problem in after:
        if remaining[problem.key] > 0:
            remaining[problem.key] -= 1
            kept.append(problem)
        else:
            added.append(problem)
    if added:
        first = added[0]
        raise ObjectError(
            "iod-check-failed",
            f"de-identification left {len(added)} IOD problem(s) the input did not have; first: "
            f"{first.kind}: {_what_to_do(first, source)}",
            stage="check",
            path=first.path,
        )
    return CheckReport(preexisting=kept)


def _what_to_do(problem: Problem, source: Dataset | None) -> str:
    """What a person does about an IOD problem de-identification added: fix the profile's rule,
    unless the input held the missing attribute under a VR of another kind of value (a damaged
    tag or VR: the engine does not release such an element as the attribute)."""
    vr = _vr_at(source, problem.path) if source is not None and "missing" in problem.kind else None
    if vr is not None:
        return (f"the input holds this attribute under VR {vr}, a value of another kind than the "
                "attribute's (a damaged file, not a rule), which is not released as it; fetch the "
                "object again or correct it at the source")
    return "fix the profile's rule for this attribute (or report it)"


_STEP = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)(?:\[(\d+)\])?")


def _vr_at(ds: Dataset, path: str) -> str | None:
    """The VR of the element at ``path`` (as :class:`Problem` writes it) in ``ds`` when it holds
    another kind of value than its attribute's, else None (absent, or of its attribute's kind).
    The path's item numbers are the released object's: where SR content items were removed before
    (deid.engine.content_items), the input's are others, so the elements at the same tags in every
    item are looked at when the one at the path is not damaged."""
    steps = [(int(group + element, 16), index) for group, element, index in _STEP.findall(path)]
    if not steps:
        return None
    tag = steps[-1][0]
    exact = _item_at(ds, steps[:-1])
    candidates = [exact] if exact is not None else []
    candidates += [item for item in _items_along(ds, [t for t, _ in steps[:-1]]) if item is not exact]
    for item in candidates:
        vr = getattr(item._dict.get(tag), "VR", None)
        if vr and another_kind_of_value(tag, vr):
            return vr
    return None


def _item_at(ds: Dataset, steps: list[tuple[int, str]]) -> Dataset | None:
    try:
        for tag, index in steps:
            ds = ds[tag].value[int(index)]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None
    return ds if isinstance(ds, Dataset) else None


def _items_along(ds: Dataset, tags: list[int]) -> list[Dataset]:
    """Every item reached from ``ds`` through sequences with these tags, whatever their numbers."""
    level = [ds]
    for tag in tags:
        below: list[Dataset] = []
        for item in level:
            try:
                sequence = item[tag].value if tag in item._dict else ()
            except Exception:  # noqa: BLE001 (a sequence pydicom cannot read: nothing below it)
                sequence = ()
            below.extend(child for child in sequence or () if isinstance(child, Dataset))
        level = below
    return level


def _values_unchecked(_sop_class: str, _lists_references: bool) -> Callable[[int, str], bool]:
    """For the scan of the original (deid.io.scan's PrivateDrop): the top-level private elements
    :func:`~deid.checks.iod.iod_problems` never looks at, left out: every one but a sequence (no
    IOD row names a private tag, and a private value is not held to a VR)."""
    return _not_a_sequence


def _not_a_sequence(_tag: int, vr: str) -> bool:
    return vr != "SQ"


def check_dciodvfy(original: bytes, encoded: bytes) -> int:
    """Raise ObjectError ``dciodvfy-new-error`` when dciodvfy finds an error the input did not have;
    return how many errors the input had too."""
    added, preexisting = dciodvfy.check(original, encoded)
    if added:
        what, path = dciodvfy.describe(added[0])
        raise ObjectError(
            "dciodvfy-new-error",
            f"dciodvfy reports {len(added)} error(s) after de-identification that the input "
            f"did not have; first: {what}: fix the profile's rule for it (or report it)",
            stage="check",
            path=path,
        )
    return preexisting


def release_check(
    profile: Profile, original: bytes, released: Dataset, sop_class_uid: str, encoded: bytes
) -> CheckReport:
    """Both checks, as the profile asks; returns what the input already had."""
    report = check_iod(original, released, sop_class_uid)
    if profile.dciodvfy_gate:
        report.dciodvfy_preexisting = check_dciodvfy(original, encoded)
    return report
