"""`deid verify`: scan a de-identified tree on its own for what must not be in a release.

Headers only (reading stops before Pixel Data).  Each finding names the file, the element path (tags
and item numbers only) and a code from :data:`CODES`, never a value.  Without the records and key it
checks what the output and the profile show alone; with them it also searches for the original
identity values of the re-identification map.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import validate_value

from deid.audit.references import Reference, dangling, references
from deid.engine.compiler import compile_rules
from deid.engine.dates import generalise_da, generalise_dt
from deid.engine.deidentifier import lists_references
from deid.engine.review import CLEANED_TEXT
from deid.engine.uids import CLASS_UID_TAGS, is_well_known
from deid.engine.vr import DUMMY, STRING_VRS, fits, max_chars, vr_of
from deid.engine.walker import element_path
from deid.io.writer import OUTPUT_LOCK
from deid.profile.model import Profile
from deid.sidecar import SIDECAR_FOLDER

#: finding code -> what it means (printed by ``deid verify --codes`` and in the README)
CODES: dict[str, str] = {
    "unreadable": "a file in the output that is not a readable DICOM Part 10 file (or, under annotations/, "
                  "not UTF-8 text)",
    "file-meta-identity": "the file meta group holds an element deid never writes there (e.g. the sender's AE title)",
    "private-tag": "a private element, where the profile removes them",
    "identity-attribute": "an attribute the profile removes, empties or replaces still has its own value",
    "person-name": "a person name (PN) with a value that is not the case number or a dummy",
    "patient-name-not-case-number": "Patient's Name is not a case number (see --case-pattern)",
    "not-pseudonymised": "a value the profile hashes is not a keyed hash",
    "date-not-generalised": "a date the profile generalises keeps its month or day",
    "uid-not-remapped": "an instance UID outside 2.25. and the profile's UID root",
    "bad-vr-value": "a value that breaks its VR (form, characters or length)",
    "missing-method": "Patient Identity Removed is not YES, or De-identification Method (Code Sequence) is missing",
    "dangling-reference": "a reference to an instance that is not in the output (or of another SOP class)",
    "original-uid": "a UID equal to an original UID of the re-identification map",
    "original-value": "a value containing an original identity value of the re-identification map",
    "identity-in-text": "kept free text naming an identity (name, ID, date, institution) that the map holds "
                        "for an object of the same patient or study",
}

_FILE_META_WRITTEN = frozenset({0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012,
                                0x00020013})
_BINARY_SIZES = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "AT": 4, "FD": 8, "SV": 8, "UV": 8, "OF": 4,
                 "OD": 8, "OL": 4, "OV": 8, "OW": 2}
_ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})
_MARKS = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})  # added by deid after the rules
_UID_IN_TEXT = re.compile(r"\d+(?:\.\d+){2,}")
_TOKEN = re.compile(r"[^\W_]+")
_HASH = re.compile(r"^[0-9A-Fa-f]{1,64}$")


@dataclass(frozen=True, order=True)
class Finding:
    """One thing that must not be in a release: where it is and what it is (never the value)."""

    file: str
    path: str
    code: str

    def line(self) -> str:
        return f"{self.file}\t{self.path or '-'}\t{self.code}"


@dataclass
class Originals:
    """Original identity values to search for (from the decrypted re-identification map)."""

    uids: set[str] = field(default_factory=set)
    phrases: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # first token -> token runs

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]]) -> Originals:
        """From map entries ``{"original": {patient_id, patient_name, accession_number, study_uid,
        series_uid, sop_uid}, ...}``."""
        found = cls()
        for entry in entries:
            original = entry.get("original") or {}
            for name in ("study_uid", "series_uid", "sop_uid"):
                if original.get(name):
                    found.uids.add(str(original[name]))
            for name in ("patient_id", "accession_number", "patient_name"):
                value = str(original.get(name) or "")
                for form in _name_forms(value) if name == "patient_name" else (value,):
                    found.add_phrase(form)
        return found

    def add_phrase(self, text: str) -> None:
        tokens = _tokens(text)
        if tokens and len("".join(tokens)) >= 3:
            runs = self.phrases.setdefault(tokens[0], [])
            if tokens not in runs:
                runs.append(tokens)

    def in_text(self, text: str) -> bool:
        """Whether a text holds an original value as a whole run of words (case-insensitive)."""
        tokens = _tokens(text)
        for i, token in enumerate(tokens):
            for run in self.phrases.get(token, ()):
                if tuple(tokens[i:i + len(run)]) == run:
                    return True
        return any(uid in self.uids for uid in _UID_IN_TEXT.findall(text))


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text.upper()))


def _name_forms(value: str) -> list[str]:
    """A PN value and the ways free text writes it: each component group, given-family order."""
    forms = [value]
    for group in value.split("="):
        parts = [p for p in group.split("^") if p]
        if parts:
            forms.append(" ".join(parts))
            forms.append("".join(parts))  # ideographic names run together
            if len(parts) >= 2:
                forms.append(" ".join([parts[1], parts[0]]))
    return forms


def _generalised(vr: str, value: str) -> bool:
    """Whether a DA/DT value is already generalised (generalising it again changes nothing)."""
    try:
        return (generalise_da if vr == "DA" else generalise_dt)(value) == value
    except ValueError:
        return False


def _sequences_only(ds: Dataset) -> Dataset:
    """The top-level sequences of ``ds`` (instance references only live in sequence items): so the
    reference search does not decode every top-level value again."""
    shallow = Dataset()
    for tag, raw in ds._dict.items():
        if raw.VR == "SQ" or (raw.VR in (None, "UN") and vr_of(tag) == "SQ"):
            shallow._dict[tag] = ds[tag]
    return shallow


def _raw_values(raw: Any, vr: str) -> list[str] | None:
    """The values of a still-raw element of an ASCII VR, without pydicom's conversion; None when the
    bytes are not ASCII (then pydicom decodes them and the VR check judges them)."""
    data = raw.value or b""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    text = text.rstrip("\x00 ")
    return [v.strip(" \x00") for v in text.split("\\")] if text else []


def _values(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, (MultiValue, list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, bytes):
        return []
    return [str(value)]


def builtin_profiles() -> dict[str, Profile]:
    """The shipped profiles by the De-identification Method (0012,0063) they write."""
    from deid.errors import ProfileError
    from deid.profile.loader import load_profile

    found: dict[str, Profile] = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "profiles").glob("*.yaml")):
        try:
            profile = load_profile(path.stem)
        except ProfileError:
            continue
        found.setdefault(profile.method_description, profile)
    return found


class Verifier:
    """Checks the files of one output tree against a profile (given, or for each file the shipped
    profile its De-identification Method names, else ``default``); collects references across files."""

    def __init__(self, profile: Profile | None, *, originals: Originals | None = None,
                 case_pattern: str | None = None, default: Profile | None = None,
                 tokens: Any = None) -> None:
        self.given = profile
        self.by_method = {} if profile is not None else builtin_profiles()
        self.default = profile or default or next(
            (p for p in self.by_method.values() if p.name == "vghtpe"), None)
        if self.default is None:
            raise ValueError("no profile to verify against")
        self.profile = self.default
        self.originals = originals
        self.tokens = tokens  # deid.audit.reid.StudyTokens: identity tokens by released study/patient
        self._names: Any = None  # the current file's finder of its patient's and study's tokens
        self.given_case_pattern = re.compile(case_pattern) if case_pattern else None
        self.profiles_used: set[str] = set()
        self._use(self.default)
        self.profiles_used.clear()
        self.released: dict[str, str] = {}  # SOP Instance UID -> SOP Class UID of every file read
        self.references: list[tuple[str, Reference]] = []  # (file, instance reference) of every file

    # -- one file --------------------------------------------------------------------------
    def check_sidecar(self, path: Path, name: str) -> list[Finding]:
        """A released annotation file (``annotations/``): text; with the map, no original value."""
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return [Finding(name, "", "unreadable")]
        if self.originals is None:
            return []
        return [Finding(name, f"line {n}", "original-value") for n, line in enumerate(text.splitlines(), 1)
                if self.originals.in_text(line)]

    def check_file(self, path: Path, name: str) -> list[Finding]:
        findings: list[Finding] = []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            sop_class = str(ds.get("SOPClassUID", "") or "")
        except Exception:  # noqa: BLE001 - pydicom raises many types on a broken file: all mean unreadable
            return [Finding(name, "", "unreadable")]
        add = findings.append
        for elem in getattr(ds, "file_meta", None) or ():
            if elem.tag not in _FILE_META_WRITTEN:
                add(Finding(name, element_path((), elem.tag), "file-meta-identity"))
        sop_uid = str(ds.get("SOPInstanceUID", "") or "")
        if sop_uid:
            self.released[sop_uid] = sop_class
        self._check_marks(ds, name, add)
        method = str(ds.get("DeidentificationMethod", "") or "").strip()
        self._use(self.given or self.by_method.get(method) or self.default)
        rules = compile_rules(self.profile, sop_class, keep_references=lists_references(ds))  # as the engine
        if self.tokens is not None:
            self._names = self.tokens.finder(str(ds.get("PatientID", "") or ""),
                                             str(ds.get("StudyInstanceUID", "") or ""))
        self._walk(ds, name, rules, (), (), add)
        self.references += [(name, ref) for ref in references(_sequences_only(ds)) if ref.kind == "instance"]
        return findings

    def _use(self, profile: Profile) -> None:
        """Judge the next file by ``profile`` (its case-number digits, UID root and labels)."""
        self.profile = profile
        self.profiles_used.add(profile.name)
        self.case_pattern = self.given_case_pattern or re.compile(rf"^\d{{{profile.case_number_digits}}}$")
        root = (profile.uid_root or "").rstrip(".")
        self.uid_prefixes = ("2.25.",) + ((root + ".",) if root else ())

    def _check_marks(self, ds: Dataset, name: str, add: Any) -> None:
        if str(ds.get("PatientIdentityRemoved", "") or "").strip() != "YES":
            add(Finding(name, "(0012,0062)", "missing-method"))
        if not str(ds.get("DeidentificationMethod", "") or "").strip():
            add(Finding(name, "(0012,0063)", "missing-method"))
        if not ds.get("DeidentificationMethodCodeSequence"):
            add(Finding(name, "(0012,0064)", "missing-method"))

    def _walk(self, ds: Dataset, name: str, rules: Any, path: tuple[int, ...],
              where: tuple[tuple[int, int], ...], add: Any) -> None:
        """Check every element at every depth; values stay raw unless they are text to decode."""
        kept_private = rules.kept_private(ds)  # Retain Safe Private: by this dataset's creators
        for tag, raw in list(ds._dict.items()):
            if not where and tag in _MARKS:
                continue
            vr = raw.VR
            if not vr or vr == "UN":
                known = vr_of(tag)
                vr = known if known != "UN" or not vr else vr
            decision = kept_private.get(tag) or rules.decide(path, tag, vr)
            if (tag >> 16) % 2 == 1 and decision.action == "remove":
                add(Finding(name, element_path(where, tag), "private-tag"))
                continue
            if vr == "SQ":
                items = ds[tag].value or ()
                if decision.action in ("remove", "empty") and items:
                    add(Finding(name, element_path(where, tag), "identity-attribute"))
                    continue
                for index, item in enumerate(items):
                    self._walk(item, name, rules, path + (tag,), where + ((tag, index),), add)
                continue
            if vr not in STRING_VRS:
                size = _BINARY_SIZES.get(vr)
                length = getattr(raw, "length", 0) if getattr(raw, "is_raw", False) else 0
                if size and length not in (0, 0xFFFFFFFF) and length % size:
                    add(Finding(name, element_path(where, tag), "bad-vr-value"))
                continue
            values = _raw_values(raw, vr) if getattr(raw, "is_raw", False) and vr in _ASCII_VRS else None
            if values is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values = [v.strip() for v in _values(ds[tag].value)]
            code = self._check_values(tag, vr, values, decision, top=not where)
            if not code and self._names is not None and tag in CLEANED_TEXT and any(map(self._names, values)):
                code = "identity-in-text"
            if code:
                add(Finding(name, element_path(where, tag), code))

    def _check_values(self, tag: Any, vr: str, values: list[str], decision: Any, *, top: bool) -> str:
        """The most telling finding code for one element's values, or ''."""
        values = [v for v in values if v]
        if not values:
            return ""
        action = decision.action
        if self.originals is not None:
            if vr == "UI" and any(v in self.originals.uids for v in values):
                return "original-uid"
            if vr != "UI" and any(self.originals.in_text(v) for v in values):
                return "original-value"
        if action in ("remove", "empty"):
            return "identity-attribute"
        if action == "dummy":
            return "" if values == [str(DUMMY.get(vr, ""))] else "identity-attribute"
        label = self.profile.labels.get(tag)
        pseudonyms = [v.rsplit(label.separator, 1)[-1] for v in values] if label is not None else values
        if action == "case_number" or (top and tag == 0x00100010):
            if not all(self.case_pattern.match(v) for v in pseudonyms):
                return "patient-name-not-case-number"
        elif vr == "PN" and any(v != DUMMY["PN"] for v in values):
            return "person-name"
        if not all(self._fits(vr, v) for v in values):
            return "bad-vr-value"
        if action == "hash":
            length = min(getattr(decision, "length", None) or 32, max_chars(vr) or 64)
            if not all(_HASH.match(p) and len(v) == length for v, p in zip(values, pseudonyms)):
                return "not-pseudonymised"
        if action == "generalise_date" and not all(_generalised(vr, v) for v in values):
            return "date-not-generalised"
        if vr == "UI" and tag not in CLASS_UID_TAGS and not all(self._remapped(v) for v in values):
            return "uid-not-remapped"
        return ""

    @staticmethod
    def _fits(vr: str, value: str) -> bool:
        if not fits(vr, value):
            return False
        try:
            validate_value(vr, value, config.RAISE)
        except (ValueError, TypeError):
            return False
        return True

    def _remapped(self, uid: str) -> bool:
        return uid.startswith(self.uid_prefixes) or is_well_known(uid)

    # -- across files ----------------------------------------------------------------------
    def dangling(self) -> list[Finding]:
        """References (at any depth, any file) to an instance not in the tree or of another class."""
        return [Finding(name, ref.path, "dangling-reference") for name, ref in self.references
                if dangling([ref], self.released)]


def load_originals(records: Path, key: Any) -> Originals:
    """The original values of a records folder's re-identification map (opened with ``key``)."""
    return load_map(records, key)[0]


def load_map(records: Path, key: Any) -> tuple[Originals, Any]:
    """The original values and the identity tokens (``StudyTokens``) of a records folder's map."""
    from deid.audit.reid import StudyTokens, read_map  # the map's own module (UsageError on a wrong key)

    contents = read_map(Path(records), key)
    return Originals.from_entries(contents.entries), StudyTokens(contents.tokens)


def output_files(out: Path) -> Iterator[tuple[Path, str]]:
    """Every file of an output tree (hidden ones too: nothing else belongs there), stable order;
    not the lock a running (or killed) ``deid run`` holds at its top."""
    for root, dirs, files in os.walk(out):
        dirs.sort()
        for file_name in sorted(files):
            if file_name == OUTPUT_LOCK and Path(root) == Path(out):
                continue
            path = Path(root, file_name)
            yield path, str(path.relative_to(out))


@dataclass
class Verification:
    """What a verify found: files checked, findings, and the profiles the files were judged by."""

    files: int
    findings: list[Finding]
    profiles: list[str]


def verify(out: Path, profile: Profile | None, *, originals: Originals | None = None,
           case_pattern: str | None = None, tokens: Any = None) -> Verification:
    """Verify an output tree; ``profile`` None: each file by the shipped profile its
    De-identification Method names (vghtpe when none does).  ``tokens``
    (``deid.audit.reid.StudyTokens``): flag kept text naming an identity of the same patient or study."""
    verifier = Verifier(profile, originals=originals, case_pattern=case_pattern, tokens=tokens)
    findings: list[Finding] = []
    files = 0
    for path, name in output_files(Path(out)):
        files += 1
        sidecar = Path(name).parts[0] == SIDECAR_FOLDER
        findings += verifier.check_sidecar(path, name) if sidecar else verifier.check_file(path, name)
    findings += verifier.dangling()
    return Verification(files, findings, sorted(verifier.profiles_used))


def verify_tree(out: Path, profile: Profile | None, *, originals: Originals | None = None,
                case_pattern: str | None = None) -> tuple[int, list[Finding]]:
    """(files checked, findings) of an output tree (see :func:`verify`)."""
    result = verify(out, profile, originals=originals, case_pattern=case_pattern)
    return result.files, result.findings
