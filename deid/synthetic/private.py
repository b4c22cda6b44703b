"""Vendor private blocks: filler like a scanner writes, and PHI hidden where rules miss it."""

from __future__ import annotations

from pydicom.datadict import get_private_entry
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from deid.synthetic.identity import SyntheticPatient
from deid.synthetic.uids import derive_uid

SIEMENS_COAD = "SIEMENS CT VA0  COAD"
SIEMENS_CSA = "SIEMENS CSA HEADER"
GE_IDENTITY = "GEMS_IDEN_01"
GE_PARAMETERS = "GEMS_PARM_01"
PACS_CREATOR = "VGH PACS INFO 1.0"

# Offsets used by the PHI-bearing elements in the filler blocks; filler avoids them.
_PHI_OFFSETS = {(0x0019, 0x30), (0x0019, 0x31)}
# Entries whose VR differs between pydicom's and dicom3tools' private dictionaries.
_DISPUTED = {(0x0043, 0x6D)}
_PHI_ELEMENTS = 9
_CREATORS = 5
MINIMUM_PRIVATE_ELEMENTS = _PHI_ELEMENTS + _CREATORS


def _filler_value(vr: str, vm: str, n: int) -> object:
    """A plausible value of ``vr`` with the smallest multiplicity ``vm`` allows."""
    count = int(vm.split("-")[0].rstrip("n") or 1)
    number = (n * 37) % 500
    values: list[object]
    if vr in ("DS", "IS"):
        values = [str(number) if vr == "IS" else f"{number / 10:.1f}"] * count
    elif vr in ("US", "UL"):
        values = [number] * count
    elif vr in ("SS", "SL"):
        values = [-number] * count
    elif vr in ("FL", "FD"):
        values = [number / 4] * count
    elif vr == "CS":
        values = ["NORMAL"] * count
    elif vr in ("SH", "LO"):
        values = [f"PARAM_{n:03d}"] * count
    elif vr in ("LT", "ST", "UT"):
        return f"Reconstruction note {n}"
    elif vr == "DA":
        return "20040305"
    elif vr == "TM":
        return "120000"
    elif vr == "UI":
        return derive_uid("private-filler", n)
    else:  # OB, UN, OW
        return bytes(range(n % 8, n % 8 + 8))
    return values[0] if count == 1 else values


def _dictionary_entry(group: int, creator: str, offset: int) -> tuple[str, str] | None:
    """(VR, VM) of a private element in pydicom's private dictionary, if it is there."""
    try:
        vr, vm, *_ = get_private_entry((group << 16) | 0x1000 | offset, creator)
    except KeyError:
        return None
    return vr, vm


def _filler_slots() -> list[tuple[int, str, int, str, str]]:
    """(group, creator, offset, VR, VM) for filler: dictionary entries first, then others."""
    known: list[tuple[int, str, int, str, str]] = []
    unknown: list[tuple[int, str, int, str, str]] = []
    for group, creator in ((0x0019, SIEMENS_COAD), (0x0043, GE_PARAMETERS)):
        for offset in range(0x100):
            if (group, offset) in _PHI_OFFSETS | _DISPUTED:
                continue
            entry = _dictionary_entry(group, creator, offset)
            if entry and entry[0] not in ("SQ", "UN") and " or " not in entry[0]:
                known.append((group, creator, offset, entry[0], entry[1]))
            else:
                unknown.append((group, creator, offset, "LO" if offset % 2 else "DS", "1"))
    return known + unknown


def _phi_block(ds: Dataset, p: SyntheticPatient) -> None:
    """Creators and the nine private elements that carry identifying values."""
    coad = ds.private_block(0x0019, SIEMENS_COAD, create=True)
    coad.add_new(0x30, "LO", p.name)
    coad.add_new(0x31, "LO", p.patient_id)
    csa = ds.private_block(0x0029, SIEMENS_CSA, create=True)
    csa.add_new(0x08, "CS", "IMAGE NUM 4")
    blob = b"SV10\4\3\2\1" + f"PatientName={p.name};PatientID={p.patient_id};".encode()
    csa.add_new(0x10, "OB", blob + b"\0" * (len(blob) % 2))
    ge = ds.private_block(0x0009, GE_IDENTITY, create=True)
    ge.add_new(0x01, "LO", "CT_LIGHTSPEED")
    ge.add_new(0x40, "LO", f"{p.display_name} {p.accession_number}")
    pacs = ds.private_block(0x0011, PACS_CREATOR, create=True)
    pacs.add_new(0x01, "LO", f"{p.patient_id}^{p.other_patient_id}")
    pacs.add_new(0x02, "DA", p.study_date)
    nested = Dataset()
    nested.PatientID = p.patient_id
    nested.StudyDate = p.study_date
    nested.PatientName = p.name
    nested_block = nested.private_block(0x0011, PACS_CREATOR, create=True)
    nested_block.add_new(0x03, "LO", f"received for {p.display_name}")
    pacs.add_new(0x10, "SQ", Sequence([nested]))
    ds.private_block(0x0043, GE_PARAMETERS, create=True)


def private_elements(ds: Dataset, p: SyntheticPatient, total: int) -> None:
    """Add exactly ``total`` top-level private elements (creators included); 0 adds none.

    Raises ValueError when ``0 < total < MINIMUM_PRIVATE_ELEMENTS`` or it does not fit.
    """
    if total == 0:
        return
    if total < MINIMUM_PRIVATE_ELEMENTS:
        raise ValueError(
            f"private_elements must be 0 or >= {MINIMUM_PRIVATE_ELEMENTS}, got {total}"
        )
    _phi_block(ds, p)
    free = _filler_slots()
    wanted = total - MINIMUM_PRIVATE_ELEMENTS
    if wanted > len(free):
        raise ValueError(f"private_elements must be <= {MINIMUM_PRIVATE_ELEMENTS + len(free)}")
    for n, (group, creator, offset, vr, vm) in enumerate(free[:wanted]):
        value = _filler_value(vr, vm, n)
        ds.private_block(group, creator).add_new(offset, vr, value)


#: a creator with rows in PS3.15 Table E.3.10-1 (0019,xx23/xx24/xx27 safe), and one without
SAFE_CREATOR = "GEMS_ACQU_01"
UNLISTED_CREATOR = "ACME HOSPITAL LINK 2"


def safe_and_unlisted_blocks(ds: Dataset, p: SyntheticPatient, *, safe_block: int = 0x10,
                             other_block: int = 0x11) -> None:
    """Two private blocks in group 0019: ``GEMS_ACQU_01`` (reserved at ``safe_block``) with three
    elements Table E.3.10-1 lists as safe and one it does not list (holding the patient's name),
    and ``ACME HOSPITAL LINK 2`` (at ``other_block``) using the same element bytes for identity,
    and one number a profile may list in its own safe_private (``(0019,xx25)``)."""
    safe = ds.private_block(0x0019, SAFE_CREATOR, create=True)  # takes the next free block
    other = ds.private_block(0x0019, UNLISTED_CREATOR, create=True)
    if (safe.block_start >> 8, other.block_start >> 8) != (safe_block, other_block):
        del ds[safe.block_start >> 8 | 0x00190000], ds[other.block_start >> 8 | 0x00190000]
        ds.add_new(0x00190000 | safe_block, "LO", SAFE_CREATOR)
        ds.add_new(0x00190000 | other_block, "LO", UNLISTED_CREATOR)
        safe = ds.private_block(0x0019, SAFE_CREATOR)
        other = ds.private_block(0x0019, UNLISTED_CREATOR)
    safe.add_new(0x23, "DS", "39.375")  # Table Speed [mm/rotation]
    safe.add_new(0x24, "DS", "4.2")  # Mid Scan Time [sec]
    safe.add_new(0x27, "DS", "0.5")  # Rotation Speed (Gantry Period)
    safe.add_new(0x30, "LO", p.name)  # not in the table
    other.add_new(0x23, "LO", p.patient_id)  # the safe element byte, under another creator
    other.add_new(0x24, "LO", p.name)
    other.add_new(0x25, "DS", "1.5")  # safe only where a profile's own safe_private lists it
