"""Walk a dataset at every depth and apply the compiled decision to each element.

Elements the rules keep are left as pydicom read them (raw bytes), so they are written back
without being decoded or re-encoded; Pixel Data in particular is never decoded.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.tag import BaseTag
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from deid.engine.compiler import CompiledRules, Decision
from deid.engine.dates import DateFormError, generalise_da, generalise_dt
from deid.engine.identity import Identity
from deid.engine.uids import UidRemapper
from deid.engine.vr import DUMMY, STRING_VRS, fits, max_chars, vr_of
from deid.errors import ObjectError
from deid.profile.tags import format_tag

_ASCII_VRS = frozenset({"UI", "DA", "DT"})

Where = tuple[tuple[int, int], ...]  # (sequence tag, item index) pairs from the top


def element_path(where: Where, tag: int) -> str:
    """'(0040,0275)[0].(0010,0020)': tags and item numbers only, never a value."""
    return "".join(f"{format_tag(t)}[{i}]." for t, i in where) + format_tag(tag)


class Walker:
    """Applies decisions to one object; collects how often each action was applied."""

    def __init__(self, rules: CompiledRules, identity: Identity, uids: UidRemapper, patient_id: str) -> None:
        self.rules = rules
        self.identity = identity
        self.uids = uids
        self.patient_id = patient_id
        self.counts: Counter[str] = Counter()
        self.adjusted: Counter[str] = Counter()
        self._case_number: str | None = None
        self._apply: dict[str, Callable[[DataElement, str, Decision], None]] = {
            "hash": self._hash,
            "case_number": self._case,
            "generalise_date": self._date,
            "remap_uid": self._uid,
            "replace": self._replace,
        }

    def walk(self, ds: Dataset, path: tuple[int, ...] = (), where: Where = ()) -> None:
        decide = self.rules.decide
        counts = self.counts
        elements = ds._dict
        removed = False
        for tag, raw in list(elements.items()):
            vr = raw.VR
            if not vr or vr == "UN":
                known = vr_of(tag)
                vr = known if known != "UN" or not vr else vr
            decision = decide(path, tag, vr)
            action = decision.action
            counts[action] += 1
            if decision.note:
                self.adjusted[decision.note] += 1
            if action == "keep" or (action == "dummy" and vr == "SQ"):
                if vr == "SQ":
                    self._walk_sequence(ds, tag, path, where)
                continue
            if action == "remove":
                # straight from the element dict: Dataset.__delitem__ costs ~10x more per element
                del elements[tag]
                removed = True
                continue
            try:
                if getattr(raw, "is_raw", False) and self._store_fast(ds, tag, vr, raw, decision):
                    continue
                elem = ds[tag]
                if action == "empty":
                    elem.value = Sequence() if vr == "SQ" else ("" if vr in STRING_VRS else None)
                elif action == "dummy":
                    elem.value = DUMMY.get(vr, "")
                else:
                    self._apply[action](elem, vr, decision)
            except ObjectError as exc:
                exc.path = exc.path or element_path(where, tag)
                raise
            except (DateFormError, ValueError, TypeError, KeyError) as exc:
                raise ObjectError(
                    "rule-not-applicable",
                    f"the {action} rule cannot be applied to this {vr} value ({exc.__class__.__name__})",
                    stage="rules",
                    path=element_path(where, tag),
                ) from None
        if removed:
            ds._private_blocks.clear()  # what Dataset.__delitem__ would have reset

    # -- fast path: new ASCII values stored as raw bytes, written without pydicom's encoder --
    def _store_fast(self, ds: Dataset, tag: int, vr: str, raw: RawDataElement, decision: Decision) -> bool:
        """Apply an action whose result is ASCII straight to the raw element; False: use the slow path."""
        action = decision.action
        if vr == "SQ" or vr not in STRING_VRS:
            return False
        if action == "empty":
            values: list[str] = []
        elif action == "dummy":
            values = [str(DUMMY[vr])]
        elif action in ("remap_uid", "generalise_date") and vr in _ASCII_VRS:
            text = (raw.value or b"").decode("ascii").rstrip("\x00 ")
            parts = [v.strip() for v in text.split("\\")] if text else []
            if action == "remap_uid":
                values = [self.uids.remap(v) for v in parts]
            else:
                fn = generalise_da if vr == "DA" else generalise_dt
                values = [fn(v) for v in parts]
        elif action in ("hash", "case_number"):
            elem = ds[tag]  # text VRs need the character set to read the original
            holder = _Holder()
            self._apply[action](_Proxy(elem, holder), vr, decision)
            if holder.values is None:
                return True  # nothing to change (an empty value)
            values = holder.values
        else:
            return False
        for v in values:
            if not fits(vr, v) or not v.isascii():
                raise ObjectError("value-does-not-fit-vr", f"the {action} value does not fit VR {vr}", stage="rules")
        payload = "\\".join(values).encode("ascii")
        if len(payload) % 2:
            payload += b"\x00" if vr == "UI" else b" "
        ds._dict[tag] = RawDataElement(
            BaseTag(tag), vr, len(payload), payload, 0, raw.is_implicit_VR, raw.is_little_endian, True, False
        )
        return True

    def _walk_sequence(self, ds: Dataset, tag: int, path: tuple[int, ...], where: Where) -> None:
        value = ds[tag].value
        if not isinstance(value, Sequence):
            return
        for index, item in enumerate(value):
            self.walk(item, path + (tag,), where + ((tag, index),))

    # -- actions on one element ------------------------------------------------------------
    @staticmethod
    def _values(elem: DataElement) -> list[str]:
        value: Any = elem.value
        if value is None or value == "":
            return []
        if isinstance(value, (MultiValue, list, tuple)):
            return [str(v) for v in value]
        return [str(value)]

    @staticmethod
    def _set(elem: "DataElement | _Proxy", vr: str, values: list[str], what: str) -> None:
        if isinstance(elem, _Proxy):
            elem.holder.values = values
            return
        for v in values:
            if not fits(vr, v):
                raise ObjectError("value-does-not-fit-vr", f"the {what} value does not fit VR {vr}", stage="rules")
        elem.value = values[0] if len(values) == 1 else (values or "")

    def _hash(self, elem: DataElement, vr: str, decision: Decision) -> None:
        length = min(decision.length or 32, max_chars(vr) or 64)
        domain = format_tag(elem.tag)
        values = [self.identity.hashed(domain, v, length, upper=vr in ("CS", "AE")) for v in self._values(elem)]
        self._set(elem, vr, values, "hash")

    def _case(self, elem: DataElement, vr: str, decision: Decision) -> None:
        if not self._values(elem):
            return
        if self._case_number is None:
            self._case_number = self.identity.case_number(self.patient_id)
        self._set(elem, vr, [self._case_number], "case number")

    def _date(self, elem: DataElement, vr: str, decision: Decision) -> None:
        fn = generalise_da if vr == "DA" else generalise_dt
        self._set(elem, vr, [fn(v) for v in self._values(elem)], "date")

    def _uid(self, elem: DataElement, vr: str, decision: Decision) -> None:
        self._set(elem, vr, [self.uids.remap(v) for v in self._values(elem)], "UID")

    def _replace(self, elem: DataElement, vr: str, decision: Decision) -> None:
        elem.value = decision.value


class _Holder:
    """Receives the values an action computed, instead of setting them on the element."""

    values: list[str] | None = None


class _Proxy:
    """An element stand-in for the fast path: reads the real element, writes into a holder."""

    def __init__(self, elem: DataElement, holder: _Holder) -> None:
        self.elem = elem
        self.holder = holder
        self.tag = elem.tag
        self.value = elem.value
