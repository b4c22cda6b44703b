"""The clinical PACS (a real Orthanc) sends a study to the node, which forwards it to the research
PACS (another Orthanc): checked through Orthanc's REST API - instance count, de-identified
headers, the RTSS still referencing its images."""

from __future__ import annotations

import json
from pathlib import Path

from orthanc import Orthanc, rtss_points_at_images
from servenode import NODE, Node, wait_until
from support import SLICES, phi_found

from deid.spool import read_stats


def test_a_study_from_one_orthanc_arrives_de_identified_in_another(
    tmp_path: Path, sample_study: Path, key_file: Path, patient
) -> None:
    files = sorted(sample_study.rglob("*.dcm"))
    with Orthanc(tmp_path / "downstream", aet="RESEARCH") as downstream:
        node = Node(
            tmp_path / "data",
            key_file,
            [f"RESEARCH@127.0.0.1:{downstream.dicom_port}"],
            "--allow-aet",
            "CLINICAL",
        )
        with (
            node,
            Orthanc(
                tmp_path / "upstream",
                aet="CLINICAL",
                modalities={"deid": (NODE, "127.0.0.1", node.port)},
            ) as upstream,
        ):
            for path in files:
                upstream.post("/instances", path.read_bytes())
            (study,) = upstream.get("/studies")
            upstream.post(
                "/modalities/deid/store",
                json.dumps({"Resources": [study], "Synchronous": True}).encode(),
            )
            wait_until(
                lambda: downstream.instance_count() == len(files), 60, "the study downstream"
            )
            wait_until(lambda: read_stats(node.data)["depth"] == 0, 30, "the spool to empty")
            assert node.terminate() == 0
        assert downstream.instance_count() == len(files) == 4 * SLICES + 1
        tags = {instance: downstream.tags(instance) for instance in downstream.instances()}
        for instance, header in tags.items():
            assert header["PatientIdentityRemoved"] == "YES"
            assert (
                header["PatientID"] != patient.patient_id and header["PatientName"] != patient.name
            )
            assert phi_found(downstream.file(instance), patient) == []
        assert rtss_points_at_images(tags)  # the RTSS still references its images
