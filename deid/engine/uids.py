"""Keyed UID remapping: the same input UID gives the same output UID in any file, run or process."""

from __future__ import annotations

from functools import lru_cache

from pydicom.datadict import DicomDictionary
from pydicom.uid import UID_dictionary

from deid.keys import SecretKey

DICOM_ROOT = "1.2.840.10008."
# Attributes that name a class, a syntax or a scheme, never an instance: their values are not remapped.
_CLASS_WORDS = ("SOPClass", "TransferSyntax", "ImplementationClassUID", "CodingSchemeUID",
                "ContextGroupExtensionCreatorUID", "ContextUID", "MappingResourceUID",
                "PrivateInformationCreatorUID", "ManufacturerDeviceClassUID", "CreatorVersionUID")
CLASS_UID_TAGS = frozenset(
    tag for tag, entry in DicomDictionary.items()
    if entry[0] == "UI" and any(word in entry[4] for word in _CLASS_WORDS)
)
# Coding-scheme and other registry roots that are identifiers of vocabularies, not of patients.
_WELL_KNOWN_PREFIXES = (DICOM_ROOT, "2.16.840.1.113883.6.", "2.16.840.1.113883.5.", "2.16.840.1.113883.12.")


def is_well_known(uid: str) -> bool:
    """True for UIDs of the DICOM registry (SOP classes, transfer syntaxes, ...) and coding schemes."""
    return uid in UID_dictionary or uid.startswith(_WELL_KNOWN_PREFIXES)


REMAP_CACHE_SIZE = 1024  # remapped UIDs kept per process (~0.35 MB; filled within ~1,000 objects)


class UidRemapper:
    """Maps an instance UID to ``2.25.<decimal of HMAC>`` or ``<root>.<decimal>``, at most 64 characters."""

    def __init__(self, key: SecretKey, root: str | None = None) -> None:
        self._key = key
        self._root = root.rstrip(".") if root else None
        # bounded: study and series UIDs repeat and stay; an unbounded cache grew with every
        # object's own UIDs (~1 KB per object: peak RSS rose with the size of the corpus)
        self.remap = lru_cache(maxsize=REMAP_CACHE_SIZE)(self._remap)

    def _remap(self, uid: str) -> str:
        if not uid or is_well_known(uid):
            return uid
        digest = self._key.digest("uid", uid)
        if self._root is None:
            return "2.25." + str(int.from_bytes(digest[:16], "big"))
        room = 64 - len(self._root) - 1
        number = str(int.from_bytes(digest, "big"))[:room].lstrip("0") or "1"
        return f"{self._root}.{number}"
