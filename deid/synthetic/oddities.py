"""Awkward inputs for fail-closed tests; each function writes one file and returns its path."""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom import config, dcmread, dcmwrite
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from deid.synthetic import modules
from deid.synthetic.ct import ct_slice
from deid.synthetic.files import write_dataset
from deid.synthetic.identity import SyntheticPatient, make_patient
from deid.synthetic.private import PACS_CREATOR
from deid.synthetic.sc import secondary_capture_image
from deid.synthetic.uids import instance_uid

#: The made-up transfer syntax written by :func:`unknown_transfer_syntax`.
UNKNOWN_TRANSFER_SYNTAX = "1.2.3.4.5.6.7.8"


def _ct(
    patient: SyntheticPatient | None, label: str, transfer_syntax: str = ExplicitVRLittleEndian
) -> Dataset:
    p = patient or make_patient(0)
    return ct_slice(
        p,
        series_uid=p.series_uid(label),
        index=3,
        size=64,
        private_elements=20,
        transfer_syntax=transfer_syntax,
    )


def _folder(folder: str | Path) -> Path:
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def not_dicom(folder: str | Path) -> Path:
    """A text file with a ``.dcm`` name."""
    path = _folder(folder) / "not_dicom.dcm"
    path.write_text("This is a scanned referral letter, not a DICOM object.\n")
    return path


def truncated_dicom(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A valid CT file cut off in the middle of its header (long before Pixel Data)."""
    buffer = DicomBytesIO()
    dcmwrite(buffer, _ct(patient, "ODD-TRUNCATED"), enforce_file_format=True)
    data = buffer.getvalue()
    path = _folder(folder) / "truncated.dcm"
    path.write_bytes(data[: data.index(b"\xe0\x7f\x10\x00") // 2])
    return path


def unknown_vr(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT whose Modality element carries the VR bytes 'ZZ', which DICOM does not define (a
    corrupt file, as a damaged copy or a broken writer makes)."""
    buffer = DicomBytesIO()
    dcmwrite(buffer, _ct(patient, "ODD-UNKNOWN-VR"), enforce_file_format=True)
    data = buffer.getvalue()
    at = data.index(b"\x08\x00\x60\x00CS") + 4  # (0008,0060) Modality, explicit VR CS
    path = _folder(folder) / "unknown_vr.dcm"
    path.write_bytes(data[:at] + b"ZZ" + data[at + 2:])
    return path


def deeply_nested(folder: str | Path, patient: SyntheticPatient | None = None, depth: int = 600,
                  undefined: bool = False) -> Path:
    """A CT holding a Content Sequence nested ``depth`` levels deep (no real object nests more
    than a few dozen: a file made to exhaust a reader's stack); of undefined lengths (ended by
    delimiters) with ``undefined``, else of defined lengths."""
    buffer = DicomBytesIO()
    dcmwrite(buffer, _ct(patient, "ODD-NESTED"), enforce_file_format=True)
    data = buffer.getvalue()
    inner = struct.pack("<HH2sH", 0x0008, 0x0100, b"SH", 2) + b"1 "  # Code Value
    for _ in range(depth):
        if undefined:
            item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + inner + \
                struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
            inner = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + item + \
                struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
        else:
            item = struct.pack("<HHI", 0xFFFE, 0xE000, len(inner)) + inner
            inner = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, len(item)) + item
    at = _offset_of_first_after(data, 0x0040A730)  # in tag order
    name = "deeply_nested_undefined.dcm" if undefined else "deeply_nested.dcm"
    path = _folder(folder) / name
    path.write_bytes(data[:at] + inner + data[at:])
    return path


def _offset_of_first_after(data: bytes, tag: int) -> int:
    """Where the first top-level element with a tag above ``tag`` starts in ``data`` (a Part 10
    file in Explicit VR Little Endian)."""
    ds = dcmread(DicomBytesIO(data))
    for elem in ds.elements():
        if elem.tag > tag:
            header = 12 if elem.VR in EXPLICIT_VR_LENGTH_32 else 8
            return elem.value_tell - header
    return len(data)


def unknown_transfer_syntax(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT whose file meta names a made-up transfer syntax (body in explicit VR LE)."""
    ds = _ct(patient, "ODD-UNKNOWN-TS")
    ds.file_meta.TransferSyntaxUID = UID(UNKNOWN_TRANSFER_SYNTAX)
    path = _folder(folder) / "unknown_transfer_syntax.dcm"
    return write_dataset(ds, path, implicit_vr=False, little_endian=True)


def secondary_capture(
    folder: str | Path, patient: SyntheticPatient | None = None, burned_in: str | None = None
) -> Path:
    """An SC image whose Burned In Annotation is absent (None), ``'YES'`` or ``'NO'``."""
    ds = secondary_capture_image(patient or make_patient(0), burned_in=burned_in)
    name = f"sc_burned_in_{(burned_in or 'absent').lower()}.dcm"
    return write_dataset(ds, _folder(folder) / name)


def ct_rle(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT with encapsulated RLE Lossless pixel data (pydicom's own encoder)."""
    ds = _ct(patient, "ODD-RLE")
    ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    return write_dataset(ds, _folder(folder) / "ct_rle.dcm")


def ct_implicit_vr(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT in Implicit VR Little Endian."""
    ds = _ct(patient, "ODD-IMPLICIT", transfer_syntax=ImplicitVRLittleEndian)
    return write_dataset(ds, _folder(folder) / "ct_implicit_vr.dcm")


def ct_big_endian(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT in the retired Explicit VR Big Endian (OW values byte-swapped)."""
    ds = _ct(patient, "ODD-BIG-ENDIAN", transfer_syntax=ExplicitVRBigEndian)
    for tag in (0x7FE00010, 0x60003000, 0x50003000):
        raw = ds[tag].value
        ds[tag].value = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return write_dataset(ds, _folder(folder) / "ct_big_endian.dcm")


#: DT values written by :func:`ct_date_forms` (keyword -> value): with time and offset, partial.
DATE_FORMS: dict[str, str] = {
    "AcquisitionDateTime": "20170415083012.123456+0800",
    "StartAcquisitionDateTime": "201704",
    "EndAcquisitionDateTime": "2017",
    "FrameReferenceDateTime": "20170415083012-0500",
}


def ct_date_forms(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT whose DT attributes use the forms of :data:`DATE_FORMS`, and a two-valued DA
    (Date of Last Calibration ``<calibration date>\\<study date>``)."""
    p = patient or make_patient(0)
    ds = _ct(p, "ODD-DATES")
    for keyword, value in DATE_FORMS.items():
        setattr(ds, keyword, value)
    ds.DateOfLastCalibration = [p.calibration_date, p.study_date]
    ds.TimeOfLastCalibration = ["071502.000000", "071502.000000"]
    return write_dataset(ds, _folder(folder) / "ct_date_forms.dcm")


#: The Study Date written by :func:`ct_bad_date`: a date, but not a DA value.
BAD_DATE = "15/04/2017"


def ct_bad_date(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT whose Study Date is written the way a person would (``15/04/2017``), not as DA."""
    ds = _ct(patient, "ODD-BAD-DATE")
    ds.add(DataElement(0x00080020, "DA", BAD_DATE, validation_mode=config.IGNORE))
    return write_dataset(ds, _folder(folder) / "ct_bad_date.dcm")


def ct_deep_sequences(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT with identity planted two and three sequences deep inside Referenced Image Sequence.

    ``ReferencedImageSequence[0] > SourceImageSequence[0]`` holds the patient's name, ID, other
    names, institution, study date, a study UID reference and a private block naming the patient;
    one level further, ``ReferencedSeriesSequence[0]`` holds the accession number and a series UID.
    """
    p = patient or make_patient(0)
    ds = _ct(p, "ODD-DEEP")
    deepest = Dataset()
    deepest.SeriesInstanceUID = p.series_uid("P")
    deepest.AccessionNumber = p.accession_number
    deepest.ReferringPhysicianName = p.referring_physician
    depth2 = Dataset()
    depth2.ReferencedSOPClassUID = ds.SOPClassUID
    depth2.ReferencedSOPInstanceUID = p.study_instance_uid
    depth2.PatientName = p.name
    depth2.PatientID = p.patient_id
    depth2.OtherPatientNames = p.other_patient_name
    depth2.InstitutionName = p.institution
    depth2.StudyDate = p.study_date
    block = depth2.private_block(0x0011, PACS_CREATOR, create=True)
    block.add_new(0x01, "LO", f"{p.patient_id}^{p.display_name}")
    depth2.ReferencedSeriesSequence = Sequence([deepest])
    ds.ReferencedImageSequence[0].SourceImageSequence = Sequence([depth2])
    return write_dataset(ds, _folder(folder) / "ct_deep_sequences.dcm")


def ct_meta_mismatch(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT whose file meta names another SOP instance than its data set does (a receiver that
    checks answers 0xA900, data set does not match SOP class)."""
    p = patient or make_patient(0)
    ds = _ct(p, "ODD-META-MISMATCH")
    path = write_dataset(ds, _folder(folder) / "ct_meta_mismatch.dcm")
    written = dcmread(path)
    written.SOPInstanceUID = p.series_uid("ODD-META-MISMATCH-OTHER")  # the meta keeps the first
    dcmwrite(path, written)
    return path


def ct_without_sop_instance_uid(
    folder: str | Path, patient: SyntheticPatient | None = None
) -> Path:
    """A CT whose data set lacks SOP Instance UID; only its file meta names one (a receiver that
    checks answers 0xC000, cannot understand)."""
    ds = _ct(patient, "ODD-NO-SOP-INSTANCE")
    del ds.SOPInstanceUID
    return write_dataset(ds, _folder(folder) / "ct_without_sop_instance_uid.dcm")


# explicit VRs whose element header is 12 bytes (a 4-byte length), not 8
_LONG_HEADER_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)


def ct_cut_at(
    folder: str | Path, tag: int = 0x00280010, patient: SyntheticPatient | None = None
) -> Path:
    """A CT (explicit VR little endian) cut at the start of its top-level element ``tag``, an
    element boundary: it parses cleanly, but everything from ``tag`` on (by default Rows, Columns,
    the rest of the pixel description and Pixel Data) is gone, as after a copy that stopped."""
    buffer = DicomBytesIO()
    dcmwrite(buffer, _ct(patient, "ODD-CUT"), enforce_file_format=True)
    data = buffer.getvalue()
    element = dcmread(DicomBytesIO(data)).get_item(tag)
    if element is None:
        raise ValueError(f"the CT has no element {tag:08X} to cut at")
    start = element.value_tell - (12 if element.VR in _LONG_HEADER_VRS else 8)
    path = _folder(folder) / f"ct_cut_at_{tag:08x}.dcm"
    path.write_bytes(data[:start])
    return path


# -- damaged element headers (found by tools/fuzz_pipeline.py) ----------------------------------


def _ct_bytes(patient: SyntheticPatient | None, label: str,
              add: dict[int, object] | None = None, *, implicit: bool = False) -> bytes:
    """The Part 10 bytes (Explicit VR Little Endian, or Implicit) of a CT made by :func:`_ct`,
    with the attributes ``add`` (tag -> value, of its dictionary VR) added."""
    ds = _ct(patient, label, ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian)
    for tag, value in (add or {}).items():
        ds.add_new(tag, dictionary_VR(tag), value)
    buffer = DicomBytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _header_offset(data: bytes, tag: int) -> int:
    """Where the top-level element ``tag`` of ``data`` (Little Endian) starts."""
    read = dcmread(DicomBytesIO(data))
    element = read.get_item(tag)
    if element is None:
        raise ValueError(f"the CT has no element {tag:08X}")
    implicit = read.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    return element.value_tell - (12 if not implicit and element.VR in EXPLICIT_VR_LENGTH_32 else 8)


def damaged_tag(folder: str | Path, tag: int, new_tag: int,
                patient: SyntheticPatient | None = None, *, implicit: bool = False) -> Path:
    """A CT whose top-level element ``tag`` has the tag ``new_tag`` in its header (its VR, length
    and value unchanged), as a damaged copy makes: Patient's Name under (0010,0110), which the DICOM
    dictionary does not know, or Patient ID under the item delimiter tag (FFFE,E0DD).
    ``implicit``: in Implicit VR Little Endian, where no VR in the header betrays the move (a
    reader takes the new tag's VR)."""
    data = _ct_bytes(patient, f"ODD-TAG-{tag:08X}-{new_tag:08X}", implicit=implicit)
    at = _header_offset(data, tag)
    suffix = "_implicit" if implicit else ""
    path = _folder(folder) / f"damaged_tag_{tag:08x}_{new_tag:08x}{suffix}.dcm"
    header = struct.pack("<HH", new_tag >> 16, new_tag & 0xFFFF)
    path.write_bytes(data[:at] + header + data[at + 4:])
    return path


def damaged_vr(folder: str | Path, tag: int, vr: str,
               patient: SyntheticPatient | None = None, *, value: object = None) -> Path:
    """A CT whose top-level element ``tag`` (a VR with a 16-bit length) carries the VR bytes ``vr``
    (one with a 16-bit length too) over its own value: a text value under a number VR (SL, FD...)
    whose length is no multiple of the number's size, or a UID under OW.  ``value``: the value
    ``tag`` is given first (one the CT does not have, such as a Patient Identity Removed)."""
    data = _ct_bytes(patient, f"ODD-VR-{tag:08X}-{vr}", None if value is None else {tag: value})
    at = _header_offset(data, tag) + 4
    path = _folder(folder) / f"damaged_vr_{tag:08x}_{vr.lower()}.dcm"
    path.write_bytes(data[:at] + vr.encode() + data[at + 2:])
    return path


def sequence_without_delimiter(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT whose Referenced Image Sequence item holds a sequence of undefined length that no
    delimiter ends (the item's defined length ends first): pydicom reads the outer sequence only
    when a rule asks for it, and then finds no tag where the inner one should go on."""
    data = _ct_bytes(patient, "ODD-NO-DELIMITER")
    inner = struct.pack("<HH2sH", 0x0008, 0x0100, b"SH", 2) + b"1 "  # Code Value
    item = struct.pack("<HHI", 0xFFFE, 0xE000, len(inner)) + inner
    broken = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + item  # no E0DD
    outer_item = struct.pack("<HHI", 0xFFFE, 0xE000, len(broken)) + broken
    outer = struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, len(outer_item)) + outer_item
    start = _header_offset(data, 0x00081140)  # Referenced Image Sequence, replaced
    end = _offset_of_first_after(data, 0x00081140)
    path = _folder(folder) / "sequence_without_delimiter.dcm"
    path.write_bytes(data[:start] + outer + data[end:])
    return path


def swallowing_length(folder: str | Path, tag: int = 0x00080070, until: int = 0x00080090,
                      patient: SyntheticPatient | None = None) -> Path:
    """A CT whose top-level element ``tag`` (a text VR with a 16-bit length: Manufacturer) has a
    damaged length that runs its value over the elements after it, up to the end of ``until``
    (Referring Physician's Name): read as the file says, the name is no element any more, only
    bytes inside a kept value."""
    data = _ct_bytes(patient, f"ODD-SWALLOW-{tag:08X}-{until:08X}")
    at = _header_offset(data, tag)
    end = _offset_of_first_after(data, until)
    path = _folder(folder) / f"swallowing_length_{tag:08x}.dcm"
    path.write_bytes(data[:at + 6] + struct.pack("<H", end - at - 8) + data[at + 8:])
    return path


def directory_element(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A CT carrying a media directory's Referenced File ID (0004,1500), as a tool that copied a
    DICOMDIR record's elements into it leaves: a path whose first folder is the patient's ID."""
    patient = patient or make_patient(0)
    data = _ct_bytes(patient, "ODD-DIRECTORY",
                     {0x00041500: [patient.patient_id[:16].upper(), "CT1", "IM0001"]})
    path = _folder(folder) / "directory_element_00041500.dcm"
    path.write_bytes(data)
    return path


def damaged_content_item_vr(folder: str | Path, patient: SyntheticPatient | None = None) -> Path:
    """A TID 1500 SR (the demo's landmark report) whose first UID content item below a measurement
    group holds its UID under the VR bytes AT, as a damaged copy makes (a UID of 40 characters, so
    it reads as ten tags).  The profile removes content items before it, so the item's number in the
    released report is not the input's."""
    from deid.synthetic.ct import four_phase_ct
    from deid.synthetic.sr import landmark_sr

    patient = patient or make_patient(0)
    report = landmark_sr(patient, four_phase_ct(patient, slices=2, size=16)["P"])
    value = "2.25." + "1" * 35  # (40 characters: ten 4-byte tags)
    items = [inner for group in report.ContentSequence for item in group.get("ContentSequence", ())
             for inner in [item, *item.get("ContentSequence", ())] if "UID" in inner]
    if not items:
        raise ValueError("the report has no UID content item below a measurement group")
    items[0].UID = value
    buffer = DicomBytesIO()
    dcmwrite(buffer, report, enforce_file_format=True)
    data = buffer.getvalue()
    header = struct.pack("<HH2sH", 0x0040, 0xA124, b"UI", len(value)) + value.encode()
    at = data.index(header)
    path = _folder(folder) / "damaged_content_item_vr_0040a124_at.dcm"
    path.write_bytes(data[:at + 4] + b"AT" + data[at + 6:])
    return path


def item_element_past_its_end(folder: str | Path, tag: int = 0x00081150,
                              patient: SyntheticPatient | None = None) -> Path:
    """A CT whose Source Image Sequence (three items: the slices it was made from) holds, in its
    first item, ``tag`` (Referenced SOP Class or Instance UID) under the VR bytes UN instead of UI,
    as a damaged copy makes (tools/fuzz_pipeline.py found it in a real MR): UN's longer header
    takes the UID's first four characters as a 32-bit length, far past the end of the sequence,
    and a reader cuts the value there, so that it holds the other items' elements: their original
    SOP Instance UIDs."""
    p = patient or make_patient(0)
    label = f"ODD-PAST-END-{tag:08X}"
    sources = Sequence([modules.item(ReferencedSOPClassUID=CTImageStorage,
                                     ReferencedSOPInstanceUID=instance_uid(p.series_uid(label), n))
                        for n in (4, 5, 6)])
    data = _ct_bytes(p, label, {0x00082112: sources})  # Source Image Sequence
    sequence = _header_offset(data, 0x00082112)
    at = data.index(struct.pack("<HH", tag >> 16, tag & 0xFFFF) + b"UI", sequence)
    path = _folder(folder) / f"item_element_past_its_end_{tag:08x}.dcm"
    path.write_bytes(data[:at + 4] + b"UN" + data[at + 6:])
    return path
