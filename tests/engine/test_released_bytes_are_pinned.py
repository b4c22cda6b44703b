"""The released bytes of a fixed corpus are pinned: the same input, profile and key give the same
UIDs, IDs, pseudonyms and bytes as the version before, so a patient released last year and again
today still links (issue 12, item 5), and a speed-up that changes a byte is caught here.

The corpus: deterministic synthetic objects (CT slices, one as the benchmark makes them, an RT
Structure Set, a SEG, a TID 1500 SR) and four of pydicom's test files, de-identified in-process
with the vghtpe profile and a fixed key.  The digest covers everything after the file meta group
(whose Implementation Class UID names the deid version); the released IDs are compared as values.
A digest that changes on purpose (a rule changed) is updated here in the same commit, saying why.
"""

from __future__ import annotations

import hashlib
import io
import struct
from functools import cache

import pytest
from pydicom import dcmwrite
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from deid.checks.complete import check_complete
from deid.checks.release import release_check
from deid.engine.deidentifier import Deidentifier
from deid.io.encoder import encode
from deid.io.reader import read_object
from deid.keys import SecretKey
from deid.profile.loader import load_profile
from deid.synthetic import ct_slice, landmark_sr, make_patient, rtss, segmentation

KEY = SecretKey(bytes(range(32)))
PYDICOM_FILES = (
    "CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "US1_J2KR.dcm",
    "rtdose_rle_1frame.dcm",  # explicit VR UN for SOP Class UID and Modality: written as UI, CS
)

# name -> (SHA-256 of the input, SHA-256 of the released bytes after the file meta group)
DIGESTS = {
    "ct0": ("f9bde34dfea5368c3a2c6302977a246775aa2ad4239aa9eb498ac321fcfccc21",
        "4477e1b567155e3d6135592557d753e514b4809560bfaa36d97f87aeb8df8bfb"),
    "ct1": ("4d968734f9d8c3afbf64e1dfe198c80267d8312fd015b029b84d3401489c2903",
        "daf88e1f43189c1d692671cc1db03fc0f8d0f0515382733601c818780da202f2"),
    "ct2": ("0f8a71e40e38064b3675ad263123428b66ebc69654805c12766ef2d6c895ef03",
        "4eb9d649a1661db9d98be7f3da7a0d47c9fb0be498b278e185d2ef1f01b57bd6"),
    "ct512": ("bf23212f09c7fe1e18455ef01d9d4aff41b8ca4ad20766bffe163dbbcf8f5091",
        "e145db9db68af60fd9975860f02c3acacd92a1ef8781de2212dd70a265733e7b"),
    "rtss": ("223c79239c845084d9d1d5c44b7c5103cabba2805dcd6cfb175aa1eee91edc7e",
        "13a6cea891c2a095e5efde54fa7c49dd0df1d1b4acf6525b08474472919504ef"),
    "seg": ("87d5980e354d6373ba5f34c11e1bf0b98cd813e3ea2eeb27964aca63cfabe168",
        "71d7f648c6727e0458b5291dec4e3ad87156531adc95c957352a0908a2b63a50"),
    "sr": ("d86f5306c5a0fbe8505d16db6e3393bafa633dad802281c12335453f1d5039cf",
        "04e170475a788b48d2c5e17008c0ce6021c1d106bfba07064d8637b843ccf2f5"),
    "CT_small.dcm": ("3dd31e5cc835b3f2cdd46c9da1982f59251e78518fefa8163d914631c66437d6",
        "2f6abe7ee704c67cebe953b6d6ec98f67b0fed6752e947a6f6ef82f311402431"),
    "MR_small.dcm": ("3f27d1c22f1a66e80d7bb7c911e8610fd0bb70325a76746a7adb1c0ddefcf2bb",
        "06c58b5b0f759bb02953414f6a99bc6bd73f8f19562b4454f60a567f7c7c615e"),
    "rtplan.dcm": ("18585dbbd6f7c5d1b7e749d6976d72251802ad89d65bccd31c03006f95aab89b",
        "f877f06e2b93026dc7821247565798a6bd292a28d50c22a9a4477f92d2560b5c"),
    "US1_J2KR.dcm": ("2427fdc82d90cd4ce8a69b5157eecb37549902dce138ac15c6456a7eae70b83d",
        "f7310329af93c754a0d2a3616062aff5f29de1a10f442519448638a4553a8923"),
    "rtdose_rle_1frame.dcm": (
        "f4e7a3b7aeb386ca1a2d7460b0c49771d923f6fd8abba08c1d4c7bc5c25cfc27",
        "145a4399075f9a10f892296a5a16b5303ce8c4a5306ef4fc52ce0367fab2ae84"),
}
# name -> (Patient ID, SOP Instance UID, released Patient's Name, released Accession Number)
RELEASED_IDS: dict[str, tuple[str, str, str, str]] = {
    "ct0": (
        "b105a79a2462fdc6658d177ee44c448d", "2.25.244272790022073434714914261153559542749",
        "7325202806", "8fd1792eedc7bb72"),
    "ct1": (
        "b105a79a2462fdc6658d177ee44c448d", "2.25.51010899413700741369757223229856405610",
        "7325202806", "8fd1792eedc7bb72"),
    "ct2": (
        "b105a79a2462fdc6658d177ee44c448d", "2.25.316606624775489608219062116699829103824",
        "7325202806", "8fd1792eedc7bb72"),
    "ct512": (
        "b105a79a2462fdc6658d177ee44c448d", "2.25.216916746667007921503294115857298164541",
        "7325202806", "8fd1792eedc7bb72"),
    "rtss": (
        "b105a79a2462fdc6658d177ee44c448d", "2.25.281675261791716342651459303692600594521",
        "7325202806", "8fd1792eedc7bb72"),
    "seg": (
        "b105a79a2462fdc6658d177ee44c448d", "2.25.1209232593452444183232113721128495831",
        "7325202806", "8fd1792eedc7bb72"),
    "sr": (
        "b105a79a2462fdc6658d177ee44c448d", "2.25.137284506078443070786946719960674671125",
        "7325202806", "8fd1792eedc7bb72"),
    "CT_small.dcm": (
        "0366413b7aa1c473cb58bbfd83923ec9", "2.25.8841937371043157846868083336263025437",
        "0682399661", ""),
    "MR_small.dcm": (
        "7089e55683127d20ba8b1f269b62117f", "2.25.190140882597175897517930650765005474519",
        "5685799176", ""),
    "rtplan.dcm": (
        "3396e578213a34251ea1322a627c5009", "2.25.174527014367076788004320856530188227257",
        "3495327305", ""),
    "US1_J2KR.dcm": (
        "3d9a2fd2800cfdbce2ed282a50b9923d", "2.25.314377094661259437967764726669836443593",
        "9087977647", ""),
    "rtdose_rle_1frame.dcm": (
        "9db76d29c4b2c092bd50cb0f5598a904", "2.25.208917076748702597318165258795724147252",
        "0905396091", ""),
}


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


@cache
def corpus() -> dict[str, bytes]:
    """The inputs, built the same way every time (checked by their own digests)."""
    patient = make_patient(0)
    series = patient.series_uid("P")
    cts = [ct_slice(patient, series_uid=series, index=i, size=64, private_elements=20)
           for i in range(3)]
    objects = {f"ct{i}": _bytes(ds) for i, ds in enumerate(cts)}
    bench_like = ct_slice(patient, series_uid=patient.series_uid("A"), index=7, phase="A")
    objects["ct512"] = _bytes(bench_like)  # as bench/bench_run.py makes them
    objects["rtss"] = _bytes(rtss(patient, cts))
    objects["seg"] = _bytes(segmentation(patient, cts))
    objects["sr"] = _bytes(landmark_sr(patient, cts))
    for name in PYDICOM_FILES:
        with open(get_testdata_file(name), "rb") as handle:
            objects[name] = handle.read()
    return objects


def after_file_meta(encoded: bytes) -> bytes:
    """The data set's bytes: what follows the preamble, 'DICM' and the file meta group."""
    assert encoded[128:132] == b"DICM" and encoded[132:136] == b"\x02\x00\x00\x00"
    (group_length,) = struct.unpack("<I", encoded[140:144])
    return encoded[144 + group_length:]


@cache
def deidentifier() -> Deidentifier:
    return Deidentifier(load_profile("vghtpe"), KEY)


@pytest.mark.parametrize("name", list(DIGESTS))
def test_released_bytes_and_ids_are_those_of_the_version_before(name: str) -> None:
    data = corpus()[name]
    source_digest, released_digest = DIGESTS[name]
    assert hashlib.sha256(data).hexdigest() == source_digest, "the input changed, not the release"
    ds = read_object(data)
    check_complete(ds)
    engine = deidentifier()
    result = engine.deidentify(ds)
    encoded = encode(result.dataset)
    release_check(engine.profile, data, result.dataset, result.sop_class_uid, encoded)
    ids = (result.patient_id, result.sop_uid, result.pseudonyms["patient_name"],
           result.pseudonyms["accession_number"])
    assert ids == RELEASED_IDS[name]
    assert hashlib.sha256(after_file_meta(encoded)).hexdigest() == released_digest
