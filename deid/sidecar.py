"""Side-car annotation files: PASCAL VOC XML and CSV/JSON landmark lists that name images by UID.

They are rewritten, never copied: every UID is remapped with the same keyed remapping as the
images (so the annotations still match them, whatever the order or split of runs), path fields are
reduced to de-identified file names, and any field that may hold identity and that deid cannot
transform makes the whole file go to quarantine.  A CSV/TSV cell a spreadsheet would run as a
formula (e.g. a label starting with ``=``, ``+``, ``-`` or ``@``) gets a leading ``'``, as in the
report's CSV tables (:func:`deid.audit.cells.spreadsheet_safe`); numbers such as ``-12.5`` stay
numbers.  Output names come from remapped UIDs, or from a keyed hash of the content: never from
the input's names.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from deid.audit.cells import spreadsheet_safe
from deid.engine.uids import UidRemapper
from deid.errors import ObjectError
from deid.keys import SecretKey

#: File suffixes looked at as side-cars (anything else that is not DICOM stays `not-dicom`).
SIDECAR_SUFFIXES = {".xml": "voc", ".csv": "csv", ".tsv": "csv", ".json": "json"}
#: The output sub-folder of side-cars: OUT/annotations/<de-identified name>.
SIDECAR_FOLDER = "annotations"

_UID = r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)){2,}"
_UID_NAME = re.compile(rf"^({_UID})(\.[A-Za-z][A-Za-z0-9]{{0,4}})?$")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_ .-]{1,40}$")
_MAX_LABEL = 64

# Field names (lower case, letters and digits only) by what deid does with their values.
NUMBER_FIELDS = frozenset({
    "x", "y", "z", "xmm", "ymm", "zmm", "xpx", "ypx", "xmin", "ymin", "xmax", "ymax", "zmin", "zmax",
    "width", "height", "depth", "row", "col", "column", "i", "j", "k", "frame", "framenumber",
    "frameindex", "slice", "sliceindex", "slicenumber", "instancenumber", "index", "radius",
    "diameter", "confidence", "score", "probability", "segmented", "truncated", "difficult",
    "occluded", "landmarkindex", "landmarknumber", "pointindex", "pointnumber", "segmentnumber",
})
LABEL_FIELDS = frozenset({"label", "labelname", "landmark", "landmarkname", "class", "classname",
                          "category", "structure", "pose", "segmentlabel", "tumour", "tumor"})
PATH_FIELDS = frozenset({"path", "file", "filename", "filepath", "image", "imagepath", "imagefile",
                         "imagename", "dicompath", "dicomfile"})
FOLDER_FIELDS = frozenset({"folder", "directory", "dir"})
LIST_FIELDS = frozenset({"landmarks", "annotations", "points", "objects", "items", "shapes", "regions",
                         "boxes", "records"})
COORDINATE_FIELDS = frozenset({"point", "coordinates", "coordinate", "position", "xyz", "bbox", "box",
                               "center", "centre"})


@dataclass(frozen=True)
class Sidecar:
    """A rewritten side-car: its de-identified file name, bytes, kind and how many UIDs it remapped."""

    name: str
    data: bytes
    kind: str
    uids: int


def sidecar_kind(name: str, data: bytes) -> str | None:
    """The side-car kind a file is looked at as ('voc', 'csv', 'json'), or None (DICOM or other)."""
    if data[128:132] == b"DICM":
        return None
    return SIDECAR_SUFFIXES.get(PurePath(name).suffix.lower())


def _field(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _where(name: str) -> str:
    """A field name for a reason: its own name when plain, else only 'a field'."""
    return name if _SAFE_NAME.match(name) else "a field"


def _unknown_format(kind: str, why: str) -> ObjectError:
    return ObjectError("sidecar-unknown-format", f"not a side-car deid knows ({why}); deid carries PASCAL "
                       "VOC XML and CSV/JSON landmark lists with a UID column: convert it, or review and "
                       f"release it by hand ({kind})", stage="sidecar")


def _unknown_field(where: str) -> ObjectError:
    return ObjectError("sidecar-unknown-field", "the side-car has a field deid cannot de-identify (it may "
                       "hold identity): remove the field from the file, or review and release it by hand",
                       stage="sidecar", path=where)


def _bad_value(where: str, what: str) -> ObjectError:
    return ObjectError("sidecar-bad-value", f"a value in the side-car is not {what}; correct the file",
                       stage="sidecar", path=where)


class SidecarRewriter:
    """Rewrites side-cars with the images' UID remapping (and the key, for content-named outputs)."""

    def __init__(self, uids: UidRemapper, key: SecretKey) -> None:
        self._uids = uids
        self._key = key

    def rewrite(self, name: str, data: bytes) -> Sidecar:
        """The de-identified side-car for the file ``name`` with ``data``; ObjectError when it cannot be."""
        kind = sidecar_kind(name, data)
        if kind is None:
            raise _unknown_format("unknown", "an unknown file type")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _unknown_format(kind, "not UTF-8 text") from None
        job = _Job(self._uids)
        if kind == "voc":
            stem_uid = self._uid_name(PurePath(name).stem)
            body, image_uid = job.voc(text, stem_uid)
            out_name = (stem_uid or image_uid) + ".xml"
        else:
            body = job.csv(text, "\t" if name.lower().endswith(".tsv") else None) if kind == "csv" \
                else job.json(text)
            if not job.uids:
                raise _unknown_format(kind, "no UID column or field names an image")
            stem_uid = self._uid_name(PurePath(name).stem)
            suffix = PurePath(name).suffix.lower()
            out_name = (stem_uid or f"{kind}-{self._key.hexdigest('sidecar', data)[:24]}") + suffix
        return Sidecar(out_name, body.encode("utf-8"), kind, job.uids)

    def _uid_name(self, stem: str) -> str | None:
        return self._uids.remap(stem) if re.fullmatch(_UID, stem) and len(stem) <= 64 else None


class _Job:
    """One side-car's rewrite: the transformations by field kind, counting remapped UIDs."""

    def __init__(self, uids: UidRemapper) -> None:
        self._remap = uids.remap
        self.uids = 0
        self.image_uid: str | None = None  # the new UID of the image <filename> names
        self._image_ext = ""
        self._pending: list[tuple[ET.Element, str]] = []  # fields naming the image by another name

    # -- values ----------------------------------------------------------------------------
    def uid(self, value: str, where: str) -> str:
        value = value.strip()
        if not value:
            return value
        if not re.fullmatch(_UID, value) or len(value) > 64:
            raise _bad_value(where, "a UID")
        self.uids += 1
        return self._remap(value)

    def uid_file(self, value: str, where: str) -> str | None:
        """A file name that is a UID (with an optional extension), remapped; None when it is not."""
        match = _UID_NAME.match(value.strip())
        if match is None or len(match.group(1)) > 64:
            return None
        self.uids += 1
        return self._remap(match.group(1)) + (match.group(2) or "")

    def path(self, value: str, where: str) -> str:
        """A path reduced to its de-identified file name (the file must be named by a UID)."""
        if not value.strip():
            return ""
        base = re.split(r"[\\/]", value.strip())[-1]
        new = self.uid_file(base, where)
        if new is None:
            raise _bad_value(where, "a path to a file named by its UID (it cannot be reduced to a "
                             "de-identified name)")
        return new

    def folder(self, value: str, where: str) -> str:
        """A folder name: remapped when it is a UID, else emptied (it may name the patient)."""
        base = re.split(r"[\\/]", value.strip())[-1] if value.strip() else ""
        return (self.uid_file(base, where) or "") if base else ""

    @staticmethod
    def number(value: str, where: str) -> str:
        if value.strip() and not _NUMBER.match(value.strip()):
            raise _bad_value(where, "a number")
        return value

    @staticmethod
    def label(value: str, where: str) -> str:
        if len(value) > _MAX_LABEL or not value.isprintable():
            raise _bad_value(where, f"a short label (at most {_MAX_LABEL} printable characters)")
        return value

    def text_rule(self, name: str) -> Callable[[str, str], str] | None:
        """How a text field of this name is transformed; None when deid cannot de-identify it."""
        field = _field(name)
        if field.endswith(("uid", "uids")):
            return self.uid
        if field in NUMBER_FIELDS:
            return self.number
        if field in LABEL_FIELDS:
            return self.label
        if field in PATH_FIELDS:
            return self.path
        if field in FOLDER_FIELDS:
            return self.folder
        return None

    # -- PASCAL VOC ------------------------------------------------------------------------
    def voc(self, text: str, own_uid: str | None) -> tuple[str, str]:
        """The rewritten VOC XML and the new UID of its image: the one <filename> names, else the
        file's own (``own_uid``, already remapped)."""
        try:  # defusedxml: no DTD, so no entity expansion and nothing fetched from elsewhere
            root = SafeET.fromstring(text, forbid_dtd=True)
        except DefusedXmlException:
            raise _unknown_format("voc", "XML with a DOCTYPE or entities") from None
        except SafeET.ParseError:
            raise _unknown_format("voc", "not well-formed XML") from None
        if root.tag != "annotation":
            raise _unknown_format("voc", "the XML root is not <annotation> (PASCAL VOC)")
        self._voc_element(root, "annotation", _VOC)
        image = self.image_uid or own_uid
        if image is None:
            raise ObjectError("sidecar-no-image-reference", "neither the file name nor <filename> is a "
                              "SOP Instance UID, so the annotation cannot follow its image; rename the "
                              "file to its image's SOP Instance UID", stage="sidecar", path="annotation/filename")
        for element, suffix in self._pending:  # <filename>/<path> naming the image otherwise: its new name
            element.text = image + (self._image_ext or suffix)
        tail = "\n" if text.endswith("\n") else ""
        return ET.tostring(root, encoding="unicode", short_empty_elements=False) + tail, image

    def _voc_element(self, element: ET.Element, where: str, schema: dict[str, Any]) -> None:
        if element.attrib:
            raise _unknown_field(where)
        if (element.text or "").strip():
            raise _unknown_field(where)
        for child in element:
            path = f"{where}/{_where(str(child.tag))}"
            rule = schema.get(str(child.tag))
            if (child.tail or "").strip() or rule is None:
                raise _unknown_field(path)
            if isinstance(rule, dict):
                self._voc_element(child, path, rule)
                continue
            if len(child) or child.attrib:
                raise _unknown_field(path)
            value = child.text or ""
            if rule in ("filename", "path"):
                child.text = self._voc_file(child, value, path, rule == "filename")
            elif rule == "folder":
                child.text = self.folder(value, path)
            elif rule == "unknown":
                child.text = "Unknown"
            else:
                child.text = getattr(self, rule)(value, path)

    def _voc_file(self, element: ET.Element, value: str, where: str, is_filename: bool) -> str:
        """<filename> or <path>: the de-identified name of the file it names when that is a UID; else
        (a name like '1-23.dcm') the image's new name, set once the whole file is read."""
        base = re.split(r"[\\/]", value.strip())[-1] if value.strip() else ""
        if not base:
            return ""
        match = _UID_NAME.match(base)
        if match is not None and len(match.group(1)) <= 64:
            self.uids += 1
            new = self._remap(match.group(1))
            if is_filename:
                self.image_uid, self._image_ext = new, match.group(2) or ""
            return new + (match.group(2) or "")
        suffix = PurePath(base).suffix
        self._pending.append((element, suffix if re.fullmatch(r"\.[A-Za-z][A-Za-z0-9]{0,4}", suffix) else ""))
        return ""

    # -- CSV -------------------------------------------------------------------------------
    def csv(self, text: str, delimiter: str | None) -> str:
        lines = text.splitlines()
        if not lines:
            raise _unknown_format("csv", "an empty file")
        if delimiter is None:
            delimiter = max((",", ";", "\t"), key=lines[0].count)
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        header = rows[0]
        rules = []
        for number, name in enumerate(header, start=1):
            rule = self.text_rule(name)
            if rule is None:
                raise _unknown_field(f"column {number}")
            rules.append(rule)
        if not any(rule == self.uid for rule in rules):
            raise _unknown_format("csv", "no UID column names an image")
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if "\r\n" in text else "\n")
        writer.writerow([spreadsheet_safe(name) for name in header])
        for line, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) > len(header):
                raise _unknown_field(f"line {line}")
            writer.writerow([spreadsheet_safe(rule(value, f"line {line} column {n}"))
                             for n, (rule, value) in enumerate(zip(rules, row), start=1)])
        return out.getvalue()

    # -- JSON ------------------------------------------------------------------------------
    def json(self, text: str) -> str:
        try:
            data = json.loads(text)
        except ValueError:
            raise _unknown_format("json", "not valid JSON") from None
        if isinstance(data, list):
            data = [self._record(item, f"$[{i}]") for i, item in enumerate(data)]
        elif isinstance(data, dict):
            data = self._record(data, "$")
        else:
            raise _unknown_format("json", "neither a list nor an object")
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    def _record(self, record: Any, where: str) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise _unknown_field(where)
        out: dict[str, Any] = {}
        for name, value in record.items():
            path = f"{where}.{_where(name)}"
            field = _field(name)
            if field in LIST_FIELDS:
                if not isinstance(value, list):
                    raise _unknown_field(path)
                out[name] = [self._record(item, f"{path}[{i}]") for i, item in enumerate(value)]
            elif field in COORDINATE_FIELDS or field in NUMBER_FIELDS:
                out[name] = self._numbers(value, path)
            else:
                rule = self.text_rule(name)
                if rule is None:
                    raise _unknown_field(path)
                if isinstance(value, list) and rule == self.uid:
                    out[name] = [self._text(rule, item, path) for item in value]
                else:
                    out[name] = self._text(rule, value, path)
        return out

    @staticmethod
    def _text(rule: Callable[[str, str], str], value: Any, where: str) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _bad_value(where, "text")
        return rule(value, where)

    def _numbers(self, value: Any, where: str) -> Any:
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return value
        if isinstance(value, list):
            return [self._numbers(item, where) for item in value]
        if isinstance(value, str):
            return self.number(value, where)
        raise _bad_value(where, "a number")


# PASCAL VOC as labelImg writes it: element -> nested schema, or what is done with its text.
_VOC: dict[str, Any] = {
    "folder": "folder",
    "filename": "filename",
    "path": "path",
    "source": {"database": "unknown", "annotation": "unknown", "image": "unknown"},
    "size": {"width": "number", "height": "number", "depth": "number"},
    "segmented": "number",
    "object": {
        "name": "label", "pose": "label", "truncated": "number", "difficult": "number",
        "occluded": "number",
        "bndbox": {"xmin": "number", "ymin": "number", "xmax": "number", "ymax": "number"},
    },
}
