"""dciodvfy (dicom3tools) per object kind: de-identification adds no error that the input did not
have; DCMTK's dcmdump reads every released kind.  One line per kind in KINDS; the before/after error counts are printed (run with -s) and
recorded as test properties (--junitxml) for the release note."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import peers
import pytest
from pydicom.dataset import Dataset
from support import SIZE, SLICES, release, to_bytes

from deid.synthetic import SyntheticPatient, four_phase_ct, pet_series, rtss, segmentation

Maker = Callable[[SyntheticPatient, dict[str, list[Dataset]]], Dataset]

#: Object kind -> (IOD dciodvfy names, builder of one object from the patient and its CT phases).
KINDS: dict[str, tuple[str, Maker]] = {
    "CT": ("CTImage", lambda p, ct: ct["P"][1]),
    "PET": ("PETImage", lambda p, ct: pet_series(p, slices=SLICES, size=SIZE // 2,
                                                 ct_series_uid=ct["N"][0].SeriesInstanceUID)[1]),
    "RTSS": ("RTStructureSet", lambda p, ct: rtss(p, ct["P"])),
    "SEG": ("Segmentation", lambda p, ct: segmentation(p, ct["P"])),
}
PROFILES = ("vghtpe", "ps3.15-basic")


@pytest.fixture(scope="module")
def phases(patient: SyntheticPatient) -> dict[str, list[Dataset]]:
    return four_phase_ct(patient, slices=SLICES, size=SIZE)


@pytest.mark.parametrize("profile_name", PROFILES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_dciodvfy_reports_no_new_error(tmp_path: Path, kind: str, profile_name: str, patient,
                                       phases, key, vghtpe, basic, record_property) -> None:
    peers.require_tool("dciodvfy")
    iod, make = KINDS[kind]
    source = tmp_path / "source.dcm"
    source.write_bytes(to_bytes(make(patient, phases)))
    profile = {"vghtpe": vghtpe, "ps3.15-basic": basic}[profile_name]
    _, encoded = release(source, profile, key)
    output = tmp_path / "released.dcm"
    output.write_bytes(encoded)

    assert iod in peers.dciodvfy_lines(source) and iod in peers.dciodvfy_lines(output)
    before, after = peers.dciodvfy_errors(source), peers.dciodvfy_errors(output)
    record_property("dciodvfy_errors_before", len(before))
    record_property("dciodvfy_errors_after", len(after))
    print(f"dciodvfy {kind} {profile_name}: {len(before)} errors before, {len(after)} after")
    assert [line for line in after if line not in before] == []


@pytest.mark.parametrize("kind", list(KINDS))
def test_dcmdump_reads_the_released_object(tmp_path: Path, kind: str, patient, phases, key,
                                           vghtpe) -> None:
    peers.require_tool("dcmdump")
    output = tmp_path / "released.dcm"
    output.write_bytes(release(KINDS[kind][1](patient, phases), vghtpe, key)[1])
    assert peers.dcmdump_ok(output)
