"""The research archive takes STOW-RS, not C-STORE: the node's destination is a DICOMweb URL
(a real Orthanc with Debian's DICOMweb plugin, on 127.0.0.1).  A study arrives de-identified with
its RTSS still referencing its images; an object the archive refuses is quarantined
forward-rejected; while the archive is down objects wait and flow when it is back; the archive's
password comes from a file and never shows in the node's log; HTTPS is checked with a CA file."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pydicom
import requests
from orthanc import Orthanc, rtss_points_at_images
from servenode import Node, storescu, wait_until
from support import SLICES, phi_found
from tlsrelay import TlsRelay

from deid.forward import DONE, FAILED, RETRY
from deid.spool import read_stats
from deid.stow import StowDestination, StowForwarder, result_of
from deid.synthetic.certificates import write_tls_material

#: refuses RT Structure Sets as some archives' import rules do (the Lua callback fails)
REFUSE_RTSS = """function ReceivedInstanceFilter(dicom, origin, info)
  if dicom.Modality == "RTSTRUCT" then error("RT objects are not accepted here") end
  return true
end
"""
PASSWORD = "correct horse battery staple 7"


def _study(sample_study: Path) -> list[Path]:
    return sorted(sample_study.rglob("*.dcm"))


def _config(folder: Path, destination: dict[str, object]) -> Path:
    config = folder / "node.yaml"
    config.write_text(json.dumps({"destinations": [destination]}))  # JSON is YAML
    return config


def test_a_study_arrives_de_identified_by_stow(
    tmp_path: Path, sample_study: Path, key_file: Path, patient
) -> None:
    files = _study(sample_study)
    originals = {pydicom.dcmread(p).PixelData for p in files if "PixelData" in pydicom.dcmread(p)}
    with Orthanc(tmp_path / "archive", dicomweb=True) as archive:
        with Node(tmp_path / "data", key_file, [archive.dicomweb_url]) as node:
            storescu(node.port, files)
            wait_until(lambda: archive.instance_count() == len(files), 120, "the study stored")
            wait_until(lambda: read_stats(node.data)["depth"] == 0, 30, "the spool to empty")
            assert node.terminate() == 0
        stats = read_stats(node.data)
        assert (stats["forwarded"], stats["quarantined"]) == (len(files), 0)
        assert archive.instance_count() == len(files) == 4 * SLICES + 1
        tags = {instance: archive.tags(instance) for instance in archive.instances()}
        stored = {instance: archive.file(instance) for instance in tags}
    for instance, header in tags.items():
        assert header["PatientIdentityRemoved"] == "YES"
        assert header["PatientID"] != patient.patient_id and header["PatientName"] != patient.name
        assert phi_found(stored[instance], patient) == []
    # pixel data travels byte for byte
    assert {pydicom.dcmread(BytesIO(b)).PixelData for b in stored.values()
            if "PixelData" in pydicom.dcmread(BytesIO(b))} == originals
    assert rtss_points_at_images(tags)  # the RTSS still references its images


def test_an_object_the_archive_refuses_is_quarantined_forward_rejected(
    tmp_path: Path, sample_study: Path, key_file: Path
) -> None:
    files = _study(sample_study)
    script = tmp_path / "refuse-rtss.lua"
    script.write_text(REFUSE_RTSS)
    with Orthanc(tmp_path / "archive", dicomweb=True, settings={"LuaScripts": [str(script)]}) as archive:
        with Node(tmp_path / "data", key_file, [archive.dicomweb_url]) as node:
            storescu(node.port, files)
            wait_until(lambda: read_stats(node.data)["depth"] == 0, 120, "every object settled")
            assert node.terminate() == 0
        assert archive.instance_count() == len(files) - 1
    stats = read_stats(node.data)
    assert (stats["forwarded"], stats["quarantined"]) == (len(files) - 1, 1)
    (reason,) = [json.loads(p.read_text()) for p in (node.data / "quarantine").rglob("reason.json")]
    assert reason["code"] == "forward-rejected"
    assert "without listing the object as stored" in reason["message"]


def test_a_409_of_the_archive_is_a_refusal_and_its_absence_a_retry(
    tmp_path: Path, sample_study: Path
) -> None:
    """Orthanc answers 409 Conflict (failure reason 0x0110 for the object) to an object posted to
    another study's STOW-RS resource: deid reads that real answer as a permanent refusal."""
    data = _study(sample_study)[0].read_bytes()
    sop = str(pydicom.dcmread(BytesIO(data)).SOPInstanceUID)
    with Orthanc(tmp_path / "archive", dicomweb=True) as archive:
        boundary = "deid-test-boundary"
        body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data
                + f"\r\n--{boundary}--\r\n".encode())
        response = requests.post(
            f"{archive.dicomweb_url}/studies/1.2.3.4", data=body, timeout=30,
            headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                     "Accept": "application/dicom+json"})
        assert response.status_code == 409
        conflict = result_of(response.status_code, response, sop)
        assert (conflict.outcome, conflict.status) == (FAILED, 0x0110)
        destination = StowDestination(archive.dicomweb_url)
        with StowForwarder([destination], timeout=10) as forwarder:
            assert forwarder.send_bytes(destination, data).outcome == DONE
            archive.stop()
            down = forwarder.send_bytes(destination, data)
    assert (down.outcome, down.status) == (RETRY, None)


def test_objects_wait_while_the_archive_is_down_then_flow(
    tmp_path: Path, sample_study: Path, key_file: Path
) -> None:
    files = _study(sample_study)
    archive = Orthanc(tmp_path / "archive", dicomweb=True).start()
    try:
        archive.stop()  # its port is known now, and nothing answers there
        with Node(tmp_path / "data", key_file, [archive.dicomweb_url]) as node:
            storescu(node.port, files)
            wait_until(lambda: read_stats(node.data)["retried"] >= len(files), 120,
                       "every object retried")
            assert read_stats(node.data)["forwarded"] == 0
            archive.start()
            wait_until(lambda: read_stats(node.data)["forwarded"] == len(files), 120,
                       "the queue to flow")
            assert node.terminate() == 0
        assert archive.instance_count() == len(files)
        assert read_stats(node.data)["quarantined"] == 0
    finally:
        archive.stop()


def test_the_password_comes_from_a_file_and_stays_out_of_the_log(
    tmp_path: Path, sample_study: Path, key_file: Path
) -> None:
    files = _study(sample_study)[:3]
    secret = tmp_path / "archive.secret"
    secret.write_text(f"deid:{PASSWORD}\n")
    secret.chmod(0o600)
    users = {"admin": "admin-pw", "deid": PASSWORD}
    with Orthanc(tmp_path / "archive", dicomweb=True,
                 settings={"AuthenticationEnabled": True, "RegisteredUsers": users}) as archive:
        config = _config(tmp_path, {"stow": archive.dicomweb_url, "basic_auth_file": str(secret)})
        with Node(tmp_path / "data", key_file, [], "--config", config) as node:
            storescu(node.port, files)
            wait_until(lambda: read_stats(node.data)["forwarded"] == len(files), 120, "the objects stored")
            # a wrong password: the objects wait (the node's credentials, not the objects, are wrong)
            secret.write_text("deid:not-the-password\n")
            assert node.terminate() == 0
            node.start()
            more = _study(sample_study)[3:5]
            storescu(node.port, more)
            wait_until(lambda: read_stats(node.data)["retried"] >= len(more), 120, "a retry")
            assert read_stats(node.data)["quarantined"] == 0
            secret.write_text(f"deid:{PASSWORD}\n")  # put right: read again at the next attempt
            wait_until(lambda: read_stats(node.data)["forwarded"] == len(files) + len(more), 120,
                       "the waiting objects stored")
            assert node.terminate() == 0
        assert archive.instance_count() == len(files) + len(more)
    log = node.log.read_text()
    assert PASSWORD not in log and "not-the-password" not in log


def test_https_with_a_ca_file(tmp_path: Path, sample_study: Path, key_file: Path) -> None:
    """HTTPS to the archive (a TLS terminator in front of it, tlsrelay.py), trusted by a CA file."""
    tls = write_tls_material(tmp_path / "tls")
    files = _study(sample_study)[:2]
    with (Orthanc(tmp_path / "archive", dicomweb=True) as archive,
          TlsRelay(archive.http_port, tls.server_cert, tls.server_key) as relay):
        url = f"https://127.0.0.1:{relay.port}/dicom-web"
        config = _config(tmp_path, {"stow": url, "tls": {"ca": str(tls.ca)}})
        with Node(tmp_path / "data", key_file, [], "--config", config) as node:
            storescu(node.port, files)
            wait_until(lambda: read_stats(node.data)["forwarded"] == len(files), 120, "stored over TLS")
            assert node.terminate() == 0
        assert archive.instance_count() == len(files)
        # without the CA the archive's certificate is not trusted: a retry, never a refusal
        destination = StowDestination(url)
        with StowForwarder([destination], timeout=10) as forwarder:
            untrusted = forwarder.send_bytes(destination, files[0].read_bytes())
    assert untrusted.outcome == RETRY and "TLS" in untrusted.detail
