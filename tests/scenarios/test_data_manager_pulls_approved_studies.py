"""A research data manager pulls the studies of an approved accession list from the clinical PACS
(a real Orthanc holding studies of two patients) with `deid pull`: by C-MOVE and by C-GET exactly
the listed studies are released, an accession the PACS does not have is reported not found, and a
pull killed half-way (SIGKILL) and started again completes with nothing lost or doubled.  The
terminal and the report name requests only by reference, never by accession number."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from orthanc import Orthanc
from servenode import wait_until
from servers import free_port
from support import REPO, SIZE, deid, phi_found, run_args, tree

from deid.spool import read_stats
from deid.synthetic import later_study, make_patient, write_sample_study

OUR_AET = "DEID"
MISSING_ACCESSION = "NOSUCH0001"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The clinical PACS: three studies (two of patient 0, one of patient 1), which knows our AE
    (DicomModalities) on a port chosen now, so it can C-MOVE to the pull."""
    folder = tmp_path_factory.mktemp("pacs")
    port = free_port()
    first, second = make_patient(0), make_patient(1)
    studies = {"first": first, "later": later_study(first), "second": second}
    files: dict[str, list[Path]] = {}
    for name, patient in studies.items():
        files[name] = write_sample_study(folder / "files" / name, patient, slices=4, size=SIZE)
    with Orthanc(folder / "orthanc", aet="CLINICAL",
                 modalities={"deid": (OUR_AET, "127.0.0.1", port)}) as server:
        for paths in files.values():
            for path in paths:
                server.post("/instances", path.read_bytes())
        server.our_port = port  # type: ignore[attr-defined]
        yield server, studies, files


def _approved(tmp_path: Path, studies: dict) -> Path:
    """The approved list: the first patient's first study, the second patient's, and one the PACS
    does not hold (a CSV with a header row)."""
    path = tmp_path / "approved.csv"
    rows = [studies["first"].accession_number, studies["second"].accession_number,
            MISSING_ACCESSION]
    path.write_text("accession_number,approved_by\n" + "".join(f"{a},IRB-7\n" for a in rows))
    return path


def _pull_args(server: Orthanc, approved: Path, out: Path, key_file: Path, *extra: object) -> list:
    return ["pull", "--from", f"CLINICAL@127.0.0.1:{server.dicom_port}", "--accessions", approved,
            "--aet", OUR_AET, "--host", "127.0.0.1", "--port", server.our_port, "--out", out,  # type: ignore[attr-defined]
            "--profile", "vghtpe", "--key-file", key_file, *extra]


def _dicom_tree(folder: Path) -> dict[str, bytes]:
    return {name: data for name, data in tree(folder).items() if name.endswith(".dcm")}


def _released(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*.dcm")}


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory, pacs, key_file: Path) -> Path:
    """What `deid run` releases from the listed studies' own files: the paths a pull must give."""
    _server, _studies, files = pacs
    folder = tmp_path_factory.mktemp("expected")
    for name in ("first", "second"):
        for path in files[name]:
            target = folder / "listed" / name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    done = deid(*run_args(folder / "listed", folder / "reference", key_file))
    assert done.returncode == 0, done.stderr
    return folder / "reference"


def _no_accession_in_clear(text: str, studies: dict) -> None:
    for patient in studies.values():
        assert patient.accession_number not in text
        assert phi_found(text, patient) == []
    assert MISSING_ACCESSION not in text


@pytest.mark.parametrize("retrieve", ["move", "get"])
def test_a_pull_by_accession_releases_exactly_the_listed_studies(
    tmp_path: Path, pacs, expected: Path, key_file: Path, retrieve: str
) -> None:
    server, studies, _files = pacs
    out = tmp_path / "release"
    extra = ["--get"] if retrieve == "get" else []
    done = deid(*_pull_args(server, _approved(tmp_path, studies), out, key_file, *extra))
    assert done.returncode == 3, done.stderr  # one accession not found: not everything complete
    assert _dicom_tree(out) == _dicom_tree(expected)  # the same paths, the same bytes
    lines = done.stdout.splitlines()
    assert sum(" complete 17/17 released" in line for line in lines) == 2
    assert sum(line.endswith(" not-found") for line in lines) == 1
    _no_accession_in_clear(done.stdout + done.stderr, studies)
    report = json.loads((tmp_path / "release-pull" / "pull-report.json").read_text())
    assert report["totals"]["complete"] == 2 and report["totals"]["not-found"] == 1
    assert [r["code"] for r in report["requests"]] == [None, None, "pull-not-found"]
    _no_accession_in_clear(json.dumps(report), studies)
    # pulled again after a released file went missing: what is had is checked in the output
    # folder, not taken from the journal; only that one instance is fetched again
    sorted(out.rglob("*.dcm"))[7].unlink()
    again = deid(*_pull_args(server, _approved(tmp_path, studies), out, key_file, *extra))
    assert again.returncode == 3 and "; 1 fetched by this run" in again.stdout, again.stdout
    assert _dicom_tree(out) == _dicom_tree(expected)


def test_a_pull_killed_half_way_completes_when_started_again(
    tmp_path: Path, pacs, key_file: Path
) -> None:
    server, studies, files = pacs
    out = tmp_path / "release"
    approved = tmp_path / "approved.txt"  # a plain list, one accession a line
    approved.write_text(f"{studies['first'].accession_number}\n{studies['later'].accession_number}\n"
                        f"{studies['second'].accession_number}\n")
    env = {k: v for k, v in os.environ.items() if k != "DEID_KEY_FILE"}
    process = subprocess.Popen(
        [sys.executable, "-m", "deid", *map(str, _pull_args(server, approved, out, key_file))],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(_released(out)) >= 5, 60, "the first released objects")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    total = sum(len(paths) for paths in files.values())
    assert len(_released(out)) < total  # killed half-way
    done = deid(*_pull_args(server, approved, out, key_file))
    assert done.returncode == 0, done.stdout + done.stderr
    released = _released(out)
    assert len(released) == total  # nothing lost, nothing doubled
    stats = read_stats(tmp_path / "release-pull")  # over both runs: each instance received once
    assert (stats["received"], stats["forwarded"], stats["depth"]) == (total, total, 0)
    assert sum(" complete 17/17 released" in line for line in done.stdout.splitlines()) == 3
    fetched = int(done.stdout.split(" fetched by this run")[0].rsplit(" ", 1)[1])
    assert fetched < total  # only what was missing was fetched again
    _no_accession_in_clear(done.stdout + done.stderr, studies)


def test_a_pull_by_patient_with_dates_and_modalities_forwards_only_those_series(
    tmp_path: Path, pacs, key_file: Path
) -> None:
    """--patients with --study-date and --modality: only the CT series of the patient's later
    study, retrieved series by series and forwarded (no output folder) to a research node."""
    from pydicom import dcmread
    from servers import StoreSCP

    server, studies, _files = pacs
    first, later = studies["first"], studies["later"]
    patients = tmp_path / "ids.csv"
    patients.write_text(f"patient_id\n{first.patient_id}\n")
    with StoreSCP(tmp_path / "research") as research:
        done = deid("pull", "--from", f"CLINICAL@127.0.0.1:{server.dicom_port}",
                    "--patients", patients, "--study-date", f"{later.study_date}-",
                    "--modality", "CT", "--aet", OUR_AET, "--host", "127.0.0.1",
                    "--port", server.our_port, "--forward", f"DEST@127.0.0.1:{research.port}",
                    "--data", tmp_path / "data", "--key-file", key_file)
        received = [dcmread(path, stop_before_pixels=True) for path in research.received()]
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(received) == 16 and {ds.Modality for ds in received} == {"CT"}
    assert {ds.PatientIdentityRemoved for ds in received} == {"YES"}
    assert len({ds.StudyInstanceUID for ds in received}) == 1
    assert " complete 16/16 released" in done.stdout
    _no_accession_in_clear(done.stdout + done.stderr, studies)
    assert first.patient_id not in done.stdout + done.stderr


def test_a_study_the_pacs_moves_only_in_part_is_fetched_series_then_instance_wise(
    tmp_path: Path, key_file: Path
) -> None:
    """The PACS's study-level C-MOVE stops short (one of its stored files is gone: Orthanc ends the
    move there); the rest comes at series, then instance level, and the one it cannot send is
    reported: partial, with counts."""
    import sqlite3

    port = free_port()
    patient = make_patient(2)
    paths = write_sample_study(tmp_path / "files", patient, slices=4, size=SIZE)
    with Orthanc(tmp_path / "orthanc", aet="CLINICAL",
                 modalities={"deid": (OUR_AET, "127.0.0.1", port)},
                 settings={"MaximumStorageCacheSize": 0}) as server:
        stored = {path.name: server.post("/instances", path.read_bytes())["ID"] for path in paths}
        victim = stored["RTSS_P.dcm"]  # a series of its own: missing whole after the study level
        uuid = server.get(f"/instances/{victim}/attachments/dicom/info")["Uuid"]
        (tmp_path / "orthanc" / "storage" / uuid[:2] / uuid[2:4] / uuid).unlink()
        approved = tmp_path / "approved.txt"
        approved.write_text(patient.accession_number + "\n")
        server.our_port = port  # type: ignore[attr-defined]
        out = tmp_path / "release"
        done = deid(*_pull_args(server, approved, out, key_file))
    assert done.returncode == 3, done.stdout + done.stderr
    assert " partial 16/17 released (1 missing)" in done.stdout
    assert len(_released(out)) == 16
    report = json.loads((tmp_path / "release-pull" / "pull-report.json").read_text())
    (request,) = report["requests"]
    assert (request["status"], request["code"], request["missing"]) == ("partial", "pull-incomplete", 1)
    journal = sqlite3.connect(tmp_path / "release-pull" / "records" / "pull" / "journal.sqlite")
    levels = [row[0] for row in journal.execute("SELECT level FROM retrieves ORDER BY rowid")]
    journal.close()
    assert levels[0] == "STUDY" and "SERIES" in levels and levels[-1] == "IMAGE"
    _no_accession_in_clear(done.stdout + done.stderr, {"p": patient})


def test_a_pull_stows_exactly_the_listed_studies_to_a_dicomweb_archive(
    tmp_path: Path, pacs, expected: Path, key_file: Path
) -> None:
    """--stow: the listed studies go by STOW-RS to a research archive (a second real Orthanc, with
    its DICOMweb plugin and a password, given in a file), the same bytes `deid run` releases, the
    RTSS still pointing at its images; the password shows nowhere."""
    from io import BytesIO

    from pydicom import dcmread

    server, studies, _files = pacs
    password = "stow pull secret 15"
    secret = tmp_path / "archive.secret"
    secret.write_text(f"deid:{password}\n")
    secret.chmod(0o600)
    users = {"admin": "admin-pw", "deid": password}
    with Orthanc(tmp_path / "archive", dicomweb=True,
                 settings={"AuthenticationEnabled": True, "RegisteredUsers": users}) as archive:
        done = deid("pull", "--from", f"CLINICAL@127.0.0.1:{server.dicom_port}",
                    "--accessions", _approved(tmp_path, studies), "--aet", OUR_AET,
                    "--host", "127.0.0.1", "--port", server.our_port,  # type: ignore[attr-defined]
                    "--stow", archive.dicomweb_url, "--stow-basic-auth-file", secret,
                    "--data", tmp_path / "data", "--key-file", key_file)
        stored = {dcmread(BytesIO(data), stop_before_pixels=True).SOPInstanceUID: data
                  for data in map(archive.file, archive.instances())}
    assert done.returncode == 3, done.stdout + done.stderr  # one accession not found
    assert sum(" complete 17/17 released" in line for line in done.stdout.splitlines()) == 2
    reference = {dcmread(BytesIO(data), stop_before_pixels=True).SOPInstanceUID: data
                 for data in _dicom_tree(expected).values()}
    assert stored.keys() == reference.keys()  # exactly the listed studies' objects, released
    assert all(stored[uid] == reference[uid] for uid in stored)  # byte for byte as deid run
    headers = [dcmread(BytesIO(data)) for data in stored.values()]
    assert {ds.PatientIdentityRemoved for ds in headers} == {"YES"}
    for patient in studies.values():
        assert all(phi_found(data, patient) == [] for data in stored.values())
    images = {ds.SOPInstanceUID for ds in headers if ds.Modality == "CT"}
    rtss = [ds for ds in headers if ds.Modality == "RTSTRUCT"]
    assert len(rtss) == 2
    for structure_set in rtss:
        referenced = {image.ReferencedSOPInstanceUID
                      for roi in structure_set.ROIContourSequence
                      for contour in roi.ContourSequence
                      for image in contour.ContourImageSequence}
        assert referenced and referenced <= images
    _no_accession_in_clear(done.stdout + done.stderr, studies)
    assert password not in done.stdout + done.stderr
