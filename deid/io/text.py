"""The values pydicom would give for a raw text element, read straight from its bytes.

Reading an element's value through pydicom (``convert_raw_data_element``: the value hooks,
``BaseTag`` comparisons in Python, the converter table, ``PersonName`` objects) costs about as
much per element as the rest of the walk; deid reads some 40 text values of every object that
way (identity values, the originals the map keeps, the identifiers, the values a rule hashes or
remaps).  For the common case, a plain text VR whose bytes decode with the data set's (first) codec
(ASCII for the VRs not in the character set), :func:`raw_strings` gives the very strings
pydicom's converters give (the same splitting on backslashes, the same padding
stripped, VR by VR: tests/io/test_io_text.py compares them over generated values and character
sets), and ``None`` for anything else, which the caller reads with pydicom as before: another VR,
an escape sequence (ISO 2022 code extensions), bytes the codec cannot decode (pydicom replaces
them), a deferred value.
"""

from __future__ import annotations

from pydicom.dataelem import RawDataElement

# VR -> how pydicom's converter turns the decoded string into values (pydicom.values)
_TEXT = "text"  # SH, LO, UC: split on backslash, each value's trailing NULs and spaces stripped
_NAME = "name"  # PN: the bytes' trailing NULs and spaces stripped, then split; no trailing '='
_SINGLE = "single"  # LT, ST, UT: one value, trailing NULs and spaces stripped
_URL = "url"  # UR: one value, trailing whitespace stripped
_TITLE = "title"  # AE: split, each value stripped of spaces at both ends
_STRING = "string"  # AS, CS, DA, DT, TM: trailing spaces and NULs of the whole stripped, then split
_UID = "uid"  # UI: as _STRING, then each value stripped (pydicom.uid.UID)
_KINDS = {
    "SH": _TEXT, "LO": _TEXT, "UC": _TEXT, "PN": _NAME, "LT": _SINGLE, "ST": _SINGLE, "UT": _SINGLE,
    "UR": _URL, "AE": _TITLE, "AS": _STRING, "CS": _STRING, "DA": _STRING, "DT": _STRING,
    "TM": _STRING, "UI": _UID,
}
_CHARSET_VRS = frozenset({"SH", "LO", "UC", "PN", "LT", "ST", "UT"})  # decoded with the data set's
_ESC = 0x1B


def raw_strings(raw: RawDataElement, vr: str, charset: str | list[str] | None) -> list[str] | None:
    """The value(s) pydicom reads from ``raw`` (as ``vr``, in ``charset``), each as ``str``; an
    empty list when pydicom reads an empty value (``""``: also padding only); None when this
    function does not read such an element exactly as pydicom does (the caller converts it with
    pydicom)."""
    kind = _KINDS.get(vr)
    data = raw.value
    if kind is None:
        return None
    if data is None:  # an empty element, or a value not read yet (deferred)
        return None if raw.length else []
    if not isinstance(data, bytes):
        return None
    if not data:
        return []
    if _ESC in data:  # ISO 2022 code extensions: pydicom decodes each part with its own codec
        return None
    if kind is _NAME:
        if data.count(b"=") > 2:  # more than three component groups: pydicom's own handling
            return None
        data = data.rstrip(b"\x00 ")
    if vr in _CHARSET_VRS:  # decoded with the first codec, as pydicom decodes a value without ESC
        if isinstance(charset, str):
            codec, several = charset, False
        else:
            codecs = list(charset or ["iso8859"])
            codec, several = codecs[0], len(codecs) > 1
        if kind is _NAME and several and not data.isascii():
            return None  # PersonName re-encodes with every codec of the set: pydicom's own handling
        try:
            text = data.decode(codec)
        except (LookupError, UnicodeError):  # pydicom warns and replaces: its own handling
            return None
    elif data.isascii():
        text = data.decode("ascii")
    else:
        return None
    if "\\" not in text or kind is _SINGLE or kind is _URL:  # one value (the common case)
        if kind is _TEXT or kind is _SINGLE:
            value = text.rstrip("\0 ")
        elif kind is _STRING:
            value = text.rstrip(" \x00")
        elif kind is _UID:  # (pydicom.uid.UID strips it)
            value = text.rstrip(" \x00").strip()
        elif kind is _NAME:
            value = text.rstrip("=")
        elif kind is _TITLE:
            value = text.strip()
        else:  # _URL
            value = text.rstrip()
        return [value] if value else []
    if kind is _TEXT:
        values = [value.rstrip("\0 ") for value in text.split("\\")]
    elif kind is _NAME:  # str(PersonName): trailing empty component groups dropped
        values = [value.rstrip("=") for value in text.split("\\")]
    elif kind is _TITLE:
        values = [value.strip() for value in text.split("\\")]
    else:  # _STRING, _UID
        values = text.rstrip(" \x00").split("\\")
        if kind is _UID:  # pydicom.uid.UID strips each value
            values = [value.strip() for value in values]
    return [] if values == [""] else values


def raw_texts(raw: RawDataElement, vr: str, charset: str | list[str] | None) -> list[str] | None:
    """:func:`raw_strings` as deid's peeks take them: each value stripped, empty ones left out."""
    values = raw_strings(raw, vr, charset)
    if values is None:
        return None
    return [text for value in values if (text := value.strip())]
