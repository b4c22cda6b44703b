"""A hospital sends a four-phase CT and its RTSS to the forwarding node; the research PACS (DCMTK
storescp) receives them de-identified, references intact; the node drains on SIGTERM."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from servenode import Node, Storescp, echoscu, storescu, wait_until
from support import SLICES, deid, phi_found

from deid.spool import read_stats


@pytest.fixture(scope="module")
def relayed(tmp_path_factory: pytest.TempPathFactory, sample_study: Path, key_file: Path):
    base = tmp_path_factory.mktemp("relay")
    files = sorted(sample_study.rglob("*.dcm"))
    with (
        Storescp(base / "destination") as destination,
        Node(base / "data", key_file, [f"DEST@127.0.0.1:{destination.port}"]) as node,
    ):
        echo = echoscu(node.port)
        sent = storescu(node.port, files, "-v")
        wait_until(
            lambda: read_stats(node.data)["forwarded"] == len(files), 60, "every object forwarded"
        )
        received = destination.instances()
        stats = read_stats(node.data)
        exit_code = node.terminate()
        return {
            "echo": echo,
            "sent": sent,
            "files": files,
            "received": received,
            "stats": stats,
            "exit": exit_code,
            "data": node.data,
            "log": node.log.read_text(),
        }


def test_echo_and_every_store_answered_success(relayed) -> None:
    assert relayed["echo"].returncode == 0
    assert (
        relayed["sent"].stderr.count("Received Store Response (Success)")
        == len(relayed["files"])
        == 4 * SLICES + 1
    )


def test_the_destination_gets_every_object_de_identified(relayed, patient) -> None:
    received = relayed["received"]
    assert len(received) == len(relayed["files"])
    originals = {
        pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in relayed["files"]
    }
    for path in received:
        data = path.read_bytes()
        assert phi_found(data, patient) == [], path.name
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert (
            ds.SOPInstanceUID not in originals and ds.StudyInstanceUID != patient.study_instance_uid
        )
        assert "PatientIdentityRemoved" in ds and ds.PatientName != patient.name


def test_the_rtss_still_references_its_images(relayed) -> None:
    datasets = [pydicom.dcmread(p) for p in relayed["received"]]
    images = {ds.SOPInstanceUID for ds in datasets if ds.Modality == "CT"}
    (rtss,) = [ds for ds in datasets if ds.Modality == "RTSTRUCT"]
    contour_refs = {
        item.ReferencedSOPInstanceUID
        for roi in rtss.ROIContourSequence
        for contour in roi.ContourSequence
        for item in contour.ContourImageSequence
    }
    assert contour_refs and contour_refs <= images


def test_status_counts_and_originals_released(relayed) -> None:
    n = len(relayed["files"])
    stats = relayed["stats"]
    assert (stats["received"], stats["processed"], stats["forwarded"]) == (n, n, n)
    assert (stats["quarantined"], stats["depth"], stats["retrying"]) == (0, 0, 0)
    assert list((relayed["data"] / "spool" / "incoming").iterdir()) == []


def test_each_outcome_is_in_the_audit_records_without_phi(relayed, patient) -> None:
    import json

    lines = [
        json.loads(line)
        for path in sorted((relayed["data"] / "records" / "audit").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    events = [line["outcome"] for line in lines]
    n = len(relayed["files"])
    assert events.count("written") == n and events.count("forwarded") == n
    assert {line["source"] for line in lines} == {"serve"}
    released = {
        pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in relayed["received"]
    }
    assert {line["sop_uid"] for line in lines if line["outcome"] == "forwarded"} == released
    for path in (relayed["data"] / "records").rglob("*"):
        if path.is_file():
            assert phi_found(path.read_bytes(), patient) == [], path.name
    assert phi_found(relayed["log"], patient) == []


def test_deid_status_prints_the_counts(relayed) -> None:
    result = deid("status", "--data", relayed["data"])
    assert result.returncode == 0, result.stderr
    lines = dict(line.split() for line in result.stdout.splitlines())
    n = str(len(relayed["files"]))
    assert (lines["received"], lines["processed"], lines["forwarded"]) == (n, n, n)
    assert (
        lines["quarantined"],
        lines["retrying"],
        lines["depth"],
        lines["oldest_age_seconds"],
    ) == ("0", "0", "0", "0.0")
    assert deid("status", "--data", relayed["data"] / "nowhere").returncode == 2


def test_sigterm_drains_and_exits_0(relayed) -> None:
    assert relayed["exit"] == 0
    assert '"draining"' in relayed["log"] and '"stopped"' in relayed["log"]
