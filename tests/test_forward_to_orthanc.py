"""Forwarding released objects to a real Orthanc (Debian's), checked through its REST API."""

from __future__ import annotations

import json
import time
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from orthanc import Orthanc
from support import SLICES, deid, phi_found, run_args

from deid.audit.references import dangling, references
from deid.forward import DONE, RETRY, Destination, Forwarder
from deid.synthetic import SyntheticPatient

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, sample_study: Path, key_file: Path) -> list[Path]:
    """The sample study (four-phase CT + RTSS) as `deid run` releases it."""
    out = tmp_path_factory.mktemp("release") / "out"
    result = deid(*run_args(sample_study, out, key_file))
    assert result.returncode == 0, result.stderr
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == 4 * SLICES + 1
    return files


def _destination(orthanc: Orthanc, aet: str | None = None) -> Destination:
    return Destination(aet or orthanc.aet, "127.0.0.1", orthanc.dicom_port)


def test_a_released_study_arrives_de_identified_with_its_references_intact(
    orthanc: Orthanc, released: list[Path], patient: SyntheticPatient
) -> None:
    destination = _destination(orthanc)
    with Forwarder([destination]) as forwarder:
        results = [forwarder.send(destination, path) for path in released]
    assert [r.outcome for r in results] == [DONE] * len(released)
    assert orthanc.instance_count() == len(released)

    stored: dict[str, str] = {}  # SOP Instance UID -> SOP Class UID, as Orthanc holds them
    structure_sets = []
    for instance in orthanc.instances():
        tags, data = orthanc.tags(instance), orthanc.file(instance)
        assert phi_found(json.dumps(tags, ensure_ascii=False), patient) == [], instance
        assert phi_found(data, patient) == [], instance
        assert tags["PatientID"] != patient.patient_id
        stored[tags["SOPInstanceUID"]] = tags["SOPClassUID"]
        if tags["Modality"] == "RTSTRUCT":
            structure_sets.append(pydicom.dcmread(BytesIO(data)))
    assert set(stored) == {pydicom.dcmread(p).SOPInstanceUID for p in released}
    assert set(stored) == orthanc.sop_instance_uids()
    (structure_set,) = structure_sets
    refs = references(structure_set)
    contour_images = [r for r in refs if r.kind == "instance" and r.sop_class_uid == CT_IMAGE]
    assert len({r.uid for r in contour_images}) == SLICES  # the contoured phase's slices
    assert dangling(refs, stored) == []


def test_orthanc_closing_an_idle_association_costs_nothing(
    tmp_path: Path, released: list[Path]
) -> None:
    with Orthanc(tmp_path / "orthanc", scp_timeout=1) as orthanc:
        destination = _destination(orthanc)
        with Forwarder([destination]) as forwarder:
            assert forwarder.send(destination, released[0]).outcome == DONE
            time.sleep(2.5)  # Orthanc closes the association after 1 s idle
            assert forwarder.send(destination, released[1]).outcome == DONE
        assert orthanc.instance_count() == 2


def test_a_wrong_called_ae_title_is_rejected_and_retried(
    orthanc: Orthanc, released: list[Path]
) -> None:
    destination = _destination(orthanc, aet="NOT-ORTHANC")
    with Forwarder([destination], timeout=5) as forwarder:
        result = forwarder.send(destination, released[0])
    assert (result.outcome, result.status) == (RETRY, None)
    # Orthanc rejects the association; under load pynetdicom may see the socket close before it
    # reads the A-ASSOCIATE-RJ: either way nothing was stored and the object is retried
    assert "rejected" in result.detail or "failed or was aborted" in result.detail
    assert orthanc.instance_count() == 0
    assert orthanc.instance_count() == 0
