"""Synthetic patients: every identifying value the builder plants, made from an index."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import random
from dataclasses import dataclass

from deid.synthetic.uids import derive_uid, series_uid

#: Phase letters of the four-phase liver CT, in acquisition order.
PHASES: tuple[str, ...] = ("N", "A", "P", "D")
#: Labels of the study's other series (see :meth:`SyntheticPatient.series_uid`).
SERIES_LABELS: tuple[str, ...] = ("RTSS", "SEG", "PT", "SC")

# (alphabetic, ideographic) surnames and (alphabetic, ideographic, sex) given names.
_CHINESE_SURNAMES = (
    ("CHEN", "陳"),
    ("LIN", "林"),
    ("HUANG", "黃"),
    ("CHANG", "張"),
    ("LI", "李"),
    ("WANG", "王"),
    ("WU", "吳"),
    ("LIU", "劉"),
    ("TSAI", "蔡"),
    ("YANG", "楊"),
)
_CHINESE_GIVEN = (
    ("MEI-LING", "美玲", "F"),
    ("CHIH-HAO", "志豪", "M"),
    ("SHU-FEN", "淑芬", "F"),
    ("CHUN-HUNG", "俊宏", "M"),
    ("YA-TING", "雅婷", "F"),
    ("CHIA-HAO", "家豪", "M"),
    ("HSIU-YING", "秀英", "F"),
    ("WEN-CHIEH", "文傑", "M"),
    ("PEI-SHAN", "佩珊", "F"),
    ("KUO-HUA", "國華", "M"),
)
_WESTERN_SURNAMES = (
    "SMITH",
    "MÜLLER",
    "GARCIA",
    "O'BRIEN",
    "NGUYEN",
    "ROSSI",
    "DUBOIS",
    "KOWALSKI",
    "JOHANSSON",
    "VAN DER BERG",
)
_WESTERN_GIVEN = (
    ("JOHN", "M"),
    ("ANNA", "F"),
    ("JÜRGEN", "M"),
    ("MARIA", "F"),
    ("PATRICK", "M"),
    ("SOPHIE", "F"),
    ("WILLIAM", "M"),
    ("ELENA", "F"),
    ("THOMAS", "M"),
    ("KATHERINE", "F"),
)
_DOCTORS = (
    "HSU^CHENG-YU",
    "KAO^WEI-MING",
    "CHOU^HSIN-YI",
    "LO^TSUNG-HAN",
    "CHIANG^YU-CHEN",
    "PAN^CHIA-JUNG",
    "SUNG^PO-WEI",
    "FANG^LI-HUA",
    "TENG^MING-TSE",
    "HO^SHU-CHEN",
    "KUO^YEN-TING",
    "SHIH^CHUN-YI",
)
_STREETS = (
    "Shipai Rd. Sec. 2",
    "Zhongshan N. Rd. Sec. 7",
    "Shilin Dist. Wenlin Rd.",
    "Beitou Dist. Guangming Rd.",
    "Tianmu W. Rd.",
    "Chengde Rd. Sec. 5",
)
_ID_LETTERS = "ABCDEFGHJKLMNPQRSTUVXYWZIO"  # Taiwan ID letter order: codes 10..35


@dataclass(frozen=True)
class SyntheticPatient:
    """One made-up patient and study; every identifying value planted in its objects."""

    index: int
    patient_id: str
    name: str
    ideographic_name: str
    birth_date: str
    sex: str
    age: str
    weight: str
    size: str
    accession_number: str
    study_instance_uid: str
    frame_of_reference_uid: str
    study_id: str
    study_date: str
    study_time: str
    admitting_date: str
    calibration_date: str
    structure_set_date: str
    institution: str
    institution_address: str
    department: str
    station_name: str
    ae_title: str
    network_id: str
    device_serial_number: str
    referring_physician: str
    reading_physician: str
    operator: str
    performing_physician: str
    requesting_physician: str
    requesting_service: str
    issuer_of_patient_id: str
    other_patient_id: str
    other_patient_id_issuer: str
    other_patient_name: str
    address: str
    telephone: str
    history: str
    insurance_plan: str
    requested_procedure_id: str
    scheduled_step_id: str
    performed_step_id: str

    @property
    def display_name(self) -> str:
        """The name as free text writes it: ``'CHEN MEI-LING'``."""
        return " ".join(part for part in self.name.split("^") if part)

    @property
    def dicom_name(self) -> str:
        """The Patient's Name value: alphabetic and, when known, ideographic groups."""
        if self.ideographic_name:
            return f"{self.name}={self.ideographic_name}"
        return self.name

    def series_uid(self, label: str) -> str:
        """Series Instance UID of a phase (``'N'``, ``'A'``, ``'P'``, ``'D'``) or another series
        (``'RTSS'``, ``'SEG'``, ``'PT'``, ``'SC'``)."""
        return series_uid(self.study_instance_uid, label)

    def phi_values(self) -> tuple[str, ...]:
        """Every planted identifying string, for leak checks by substring search.

        Files are written with Specific Character Set ``ISO_IR 192``: encode with UTF-8.
        Study-level dates are in :meth:`date_values`, since some profiles keep them.
        """
        values = [
            self.name,
            self.display_name,
            self.ideographic_name,
            self.other_patient_name,
            self.patient_id,
            self.other_patient_id,
            self.issuer_of_patient_id,
            self.other_patient_id_issuer,
            self.birth_date,
            self.accession_number,
            self.study_id,
            self.address,
            self.telephone,
            self.insurance_plan,
            self.institution,
            self.institution_address,
            self.department,
            self.station_name,
            self.ae_title,
            self.network_id,
            self.device_serial_number,
            self.referring_physician,
            self.reading_physician,
            self.operator,
            self.performing_physician,
            self.requesting_physician,
            self.requesting_service,
            self.requested_procedure_id,
            self.scheduled_step_id,
            self.performed_step_id,
            self.study_instance_uid,
            self.frame_of_reference_uid,
            *(self.series_uid(label) for label in (*PHASES, "RTSS")),
        ]
        return tuple(dict.fromkeys(v for v in values if v))

    def date_values(self) -> tuple[str, ...]:
        """The DA values planted besides the birth date (study, admission, calibration)."""
        return (
            self.study_date,
            self.admitting_date,
            self.calibration_date,
            self.structure_set_date,
        )


def _taiwan_id(letter: str, body: str) -> str:
    """A national ID with a valid check digit (``body`` is 8 digits)."""
    code = _ID_LETTERS.index(letter) + 10
    digits = [code // 10, code % 10, *(int(c) for c in body)]
    weights = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1)
    check = (10 - sum(d * w for d, w in zip(digits, weights)) % 10) % 10
    return f"{letter}{body}{check}"


def _name(index: int) -> tuple[str, str, str]:
    """(alphabetic PN, ideographic PN or '', sex); distinct for the first 2,600 indices."""
    k = index // 2
    middle = "" if k < 100 else "^" + chr(ord("A") + (k // 100 - 1) % 26)
    if index % 2 == 0:
        family, family_ideo = _CHINESE_SURNAMES[k % 10]
        given, given_ideo, sex = _CHINESE_GIVEN[(k // 10 + k) % 10]
        ideographic = "" if middle else f"{family_ideo}^{given_ideo}"
        return f"{family}^{given}{middle}", ideographic, sex
    family = _WESTERN_SURNAMES[k % 10]
    given, sex = _WESTERN_GIVEN[(k // 10 + k) % 10]
    return f"{family}^{given}{middle}", "", sex


def _alias(name: str) -> str:
    """Another spelling of the name, as an older system recorded it."""
    family, given = name.split("^")[:2]
    return f"{family}^{given.replace('-', '')}" if "-" in given else f"{family}^{given[0]}."


def _age(birth: str, on: str) -> str:
    years = int(on[:4]) - int(birth[:4]) - (on[4:] < birth[4:])
    return f"{years:03d}Y"


def make_patient(index: int = 0, **overrides: str) -> SyntheticPatient:
    """A deterministic patient: the same ``index`` always gives the same values.

    Index 0 is ``CHEN^MEI-LING``, ``A123456789``. ``overrides`` replace fields; values
    derived from an overridden one (age, alias, free text naming the patient, IDs built
    from the study date) follow it, and a new ``name`` drops the ideographic one.
    """
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index!r}")
    unknown = set(overrides) - {f.name for f in dataclasses.fields(SyntheticPatient)} | (
        {"index"} & set(overrides)
    )
    if unknown:
        raise TypeError(f"unknown SyntheticPatient field(s): {sorted(unknown)}")
    values = _primary(index)
    if "name" in overrides:
        values["ideographic_name"] = ""
    values.update(overrides)
    values.update(_derived(values))
    values.update(overrides)
    return SyntheticPatient(**values)  # type: ignore[arg-type]


def _primary(index: int) -> dict[str, object]:
    """The values drawn from the index; the rest follow from these."""
    rng = random.Random(f"deid.synthetic.patient:{index}")
    name, ideographic, sex = _name(index)
    letter = _ID_LETTERS[index % 26]
    body = f"{1 + index % 2}{(2345678 + index * 7654321) % 10**7:07d}"
    birth = f"{rng.randint(1935, 1985)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    year, month, day = rng.randint(2015, 2019), rng.randint(1, 12), rng.randint(1, 28)
    study_time = (
        f"{rng.randint(7, 18):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
        f".{rng.randint(0, 999):03d}000"
    )
    doctors = rng.sample(_DOCTORS, 5)
    seed = f"synthetic-{index}"
    return {
        "index": index,
        "patient_id": _taiwan_id(letter, body),
        "name": name,
        "ideographic_name": ideographic,
        "birth_date": birth,
        "sex": sex,
        "weight": f"{rng.randint(45, 95)}",
        "size": f"{rng.randint(150, 185) / 100:.2f}",
        "study_instance_uid": derive_uid(seed, "study"),
        "frame_of_reference_uid": derive_uid(seed, "frame-of-reference"),
        "study_id": f"ST{index:06d}",
        "study_date": f"{year}{month:02d}{day:02d}",
        "study_time": study_time,
        "admitting_date": f"{year}{month:02d}{max(1, day - rng.randint(1, 5)):02d}",
        "calibration_date": f"{year}{month:02d}{max(1, day - 1):02d}",
        "structure_set_date": (
            f"{year + rng.randint(1, 3)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        ),
        "institution": "Taipei Veterans General Hospital",
        "institution_address": "No. 201, Sec. 2, Shipai Rd., Beitou Dist., Taipei City 112201",
        "department": "VGH Radiology Dept",
        "station_name": "CT-VGH-ER-01",
        "ae_title": "VGHCT01",
        "network_id": "VGHPACSNET",
        "device_serial_number": "SN-38211-VGH",
        "referring_physician": doctors[0],
        "reading_physician": doctors[1],
        "operator": doctors[2],
        "performing_physician": doctors[3],
        "requesting_physician": doctors[4],
        "requesting_service": "VGH Hepatology Clinic",
        "issuer_of_patient_id": "TW-MOI-NID",
        "other_patient_id": f"MRN{(38211507 + index * 104729) % 10**8:08d}",
        "other_patient_id_issuer": "VGH-HIS-MRN",
        "address": f"No. {rng.randint(1, 300)}, {rng.choice(_STREETS)}, Taipei City",
        "telephone": f"09{rng.randint(10, 99)}-{rng.randint(100, 999)}-{rng.randint(100, 999)}",
    }


def _derived(v: dict[str, object]) -> dict[str, object]:
    """Values that repeat or combine primary ones (so overrides stay consistent)."""
    name, pid, phone = str(v["name"]), str(v["patient_id"]), str(v["telephone"])
    study_date, index = str(v["study_date"]), int(str(v["index"]))
    display = " ".join(part for part in name.split("^") if part)
    return {
        "age": _age(str(v["birth_date"]), study_date),
        "other_patient_name": _alias(name),
        "history": f"HBV carrier, prior TACE. Contact {display} at {phone}.",
        "insurance_plan": f"NHI-{pid}",
        "accession_number": f"CT{study_date[2:]}{index:05d}",
        "requested_procedure_id": f"RP{study_date[2:]}{index:04d}",
        "scheduled_step_id": f"SPS{study_date[2:]}{index:04d}",
        "performed_step_id": f"PPS{study_date[2:]}{index:04d}",
    }


def _days_after(date: str, days: int) -> str:
    """The DA value ``days`` after the DA value ``date``."""
    moved = _dt.datetime.strptime(date, "%Y%m%d").date() + _dt.timedelta(days=days)
    return moved.strftime("%Y%m%d")


def later_study(patient: SyntheticPatient, visit: int = 1) -> SyntheticPatient:
    """The same patient at a follow-up study ``visit`` (>= 1), about ``visit`` x 6 months later.

    Person values stay; the study's UIDs, ID, dates and the accession/procedure IDs built from
    the study date are new, so two studies of one patient can be released separately.
    """
    if visit < 1:
        raise ValueError(f"visit must be >= 1, got {visit!r}")
    shift = 183 * visit
    seed = f"synthetic-{patient.index}"
    values = dataclasses.asdict(patient)
    values.update(
        study_instance_uid=derive_uid(seed, "study", visit),
        frame_of_reference_uid=derive_uid(seed, "frame-of-reference", visit),
        study_id=f"ST{patient.index:06d}V{visit}",
        study_date=_days_after(patient.study_date, shift),
        admitting_date=_days_after(patient.study_date, shift - 2),
        calibration_date=_days_after(patient.study_date, shift - 1),
        structure_set_date=_days_after(patient.study_date, shift + 3),
    )
    values.update(_derived(values))
    values["other_patient_name"] = patient.other_patient_name
    values["history"] = patient.history
    values["insurance_plan"] = patient.insurance_plan
    return SyntheticPatient(**values)
