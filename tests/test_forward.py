"""Forwarding to downstream nodes: one reused association, files sent as they are, DIMSE statuses
mapped to done / retry / failed. The peer is DCMTK storescp wherever it can answer the case."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
from pynetdicom import AE, evt
from pynetdicom.presentation import StoragePresentationContexts
from servers import StoreSCP, free_port
from support import phi_found

from deid.forward import DONE, FAILED, RETRY, Destination, Forwarder, TlsSettings, classify
from deid.synthetic import SyntheticPatient, oddities
from deid.synthetic.certificates import write_tls_material

TIMEOUT = 5


def _study_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.dcm"))


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[StoreSCP]:
    with StoreSCP(tmp_path / "received", "-v") as scp:
        yield scp


def _destination(scp: StoreSCP, **kwargs: object) -> Destination:
    return Destination(scp.aet, "127.0.0.1", scp.port, **kwargs)  # type: ignore[arg-type]


def _same_object(sent: Path, received: Path) -> None:
    """Same elements and byte-identical Pixel Data, whatever the transfer syntax on the way."""
    a, b = pydicom.dcmread(sent), pydicom.dcmread(received)
    assert a.SOPInstanceUID == b.SOPInstanceUID
    assert a.get("PixelData") == b.get("PixelData")
    assert {e.tag for e in a} == {e.tag for e in b}


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (0x0000, DONE), (0xB000, DONE), (0xB006, DONE), (0xB007, DONE), (0x0001, DONE),
        (None, RETRY), (0xA700, RETRY), (0xA7FF, RETRY), (0xA750, RETRY), (0x0213, RETRY),
        (0x0110, RETRY), (0xFE00, RETRY),
        (0xA900, FAILED), (0xA9FF, FAILED), (0xC000, FAILED), (0xCFFF, FAILED),
        (0x0122, FAILED), (0x0117, FAILED), (0x0124, FAILED), (0x0211, FAILED),
        (0x0212, FAILED), (0xA800, FAILED), (0xD000, FAILED),
    ],
)
def test_classify_maps_dimse_statuses(status: int | None, outcome: str) -> None:
    assert classify(status) == outcome


def test_a_study_goes_out_over_few_associations_and_arrives_unchanged(
    storescp: StoreSCP, sample_study: Path, patient: SyntheticPatient
) -> None:
    files = _study_files(sample_study)
    destination = _destination(storescp)
    with Forwarder([destination], timeout=TIMEOUT) as forwarder:
        results = [forwarder.send(destination, path) for path in files]
    assert [r.outcome for r in results] == [DONE] * len(files)
    assert {r.status for r in results} == {0x0000}
    assert not any(phi_found(r.detail, patient) for r in results)
    received = {pydicom.dcmread(p).SOPInstanceUID: p for p in storescp.received()}
    assert len(received) == len(files)
    for path in files:
        _same_object(path, received[pydicom.dcmread(path).SOPInstanceUID])
    # CT slices share one association; the RTSS's SOP class asks for one more at most.
    assert storescp.associations() <= 2


def test_reconnects_after_the_peer_drops_an_idle_association(
    tmp_path: Path, sample_study: Path
) -> None:
    first, second = _study_files(sample_study)[:2]
    with StoreSCP(tmp_path / "received", "-v", "--socket-timeout", "1") as scp:
        destination = _destination(scp)
        with Forwarder([destination], timeout=TIMEOUT) as forwarder:
            assert forwarder.send(destination, first).outcome == DONE
            time.sleep(2)  # storescp gives up on the idle association after 1 s
            assert forwarder.send(destination, second).outcome == DONE
        assert scp.associations() == 2
        assert len(scp.received()) == 2


def test_a_destination_that_is_down_means_retry_and_flows_when_it_is_back(
    tmp_path: Path, sample_study: Path
) -> None:
    files = _study_files(sample_study)[:3]
    scp = StoreSCP(tmp_path / "received", "-v", port=free_port())
    destination = _destination(scp)
    with Forwarder([destination], timeout=TIMEOUT) as forwarder:
        down = forwarder.send(destination, files[0])
        assert down.outcome == RETRY and down.status is None
        assert "connect" in down.detail
        with scp:
            assert forwarder.send(destination, files[0]).outcome == DONE
        stopped = forwarder.send(destination, files[1])  # went away under an open association
        assert stopped.outcome == RETRY and stopped.status is None
        with scp:
            assert [forwarder.send(destination, p).outcome for p in files[1:]] == [DONE, DONE]
    assert len(scp.received()) == 3


def test_a_refused_association_means_retry(tmp_path: Path, sample_study: Path) -> None:
    with StoreSCP(tmp_path / "received", "--refuse") as scp:
        destination = _destination(scp)
        with Forwarder([destination], timeout=TIMEOUT) as forwarder:
            result = forwarder.send(destination, _study_files(sample_study)[0])
    assert result.outcome == RETRY and result.status is None
    # storescp sends A-ASSOCIATE-RJ and closes at once: under load the close can be seen first
    assert "rejected" in result.detail or "aborted" in result.detail


def test_a_destination_that_does_not_answer_in_time_means_retry(
    tmp_path: Path, sample_study: Path
) -> None:
    with StoreSCP(tmp_path / "received", "--sleep-during", "3") as scp:  # answers 3 s late
        destination = _destination(scp)
        with Forwarder([destination], timeout=1) as forwarder:
            started = time.monotonic()
            result = forwarder.send(destination, _study_files(sample_study)[0])
            waited = time.monotonic() - started
    assert result == (RETRY, None, "no response from destination (timeout or connection lost)")
    assert waited < 2.9


def test_compressed_data_the_peer_refuses_is_a_permanent_failure_never_decoded(
    tmp_path: Path, storescp: StoreSCP, patient: SyntheticPatient
) -> None:
    """storescp accepts only uncompressed syntaxes by default: an RLE object cannot go there."""
    rle = oddities.ct_rle(tmp_path / "odd", patient)
    destination = _destination(storescp)
    with Forwarder([destination], timeout=TIMEOUT) as forwarder:
        result = forwarder.send(destination, rle)
    assert result.outcome == FAILED and result.status is None
    assert "RLE Lossless" in result.detail and "never decoded" in result.detail
    assert storescp.received() == []


def test_an_object_in_a_transfer_syntax_nobody_knows_is_offered_only_as_it_is(
    tmp_path: Path, storescp: StoreSCP, patient: SyntheticPatient
) -> None:
    odd = oddities.unknown_transfer_syntax(tmp_path / "odd", patient)
    destination = _destination(storescp)
    with Forwarder([destination], timeout=TIMEOUT) as forwarder:
        result = forwarder.send(destination, odd)
    assert result.outcome == FAILED and result.status is None
    assert "an unlisted transfer syntax" in result.detail
    assert storescp.received() == []


def test_compressed_data_goes_out_in_its_own_syntax(
    tmp_path: Path, patient: SyntheticPatient
) -> None:
    rle = oddities.ct_rle(tmp_path / "odd", patient)
    with StoreSCP(tmp_path / "received", "+xa") as scp:  # accept all supported syntaxes
        destination = _destination(scp)
        with Forwarder([destination], timeout=TIMEOUT) as forwarder:
            assert forwarder.send(destination, rle).outcome == DONE
        (received,) = scp.received()
    assert pydicom.dcmread(received).file_meta.TransferSyntaxUID == RLELossless
    _same_object(rle, received)


def test_an_uncompressed_object_is_re_encoded_for_a_peer_that_takes_only_implicit_vr(
    tmp_path: Path, sample_study: Path
) -> None:
    path = _study_files(sample_study)[0]
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    with StoreSCP(tmp_path / "received", "+xi") as scp:  # implicit VR little endian only
        destination = _destination(scp)
        with Forwarder([destination], timeout=TIMEOUT) as forwarder:
            assert forwarder.send(destination, path).outcome == DONE
        (received,) = scp.received()
    assert pydicom.dcmread(received).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    _same_object(path, received)


def test_a_peer_out_of_disk_space_means_retry(
    storescp: StoreSCP, sample_study: Path
) -> None:
    """storescp answers 0xA700 when it cannot write the file (its folder is gone)."""
    destination = _destination(storescp)
    shutil.rmtree(storescp.folder)
    with Forwarder([destination], timeout=TIMEOUT) as forwarder:
        result = forwarder.send(destination, _study_files(sample_study)[0])
    assert result == (RETRY, 0xA700, "destination out of resources (0xA700)")


def test_objects_the_peer_cannot_take_fail_permanently(
    tmp_path: Path, storescp: StoreSCP, patient: SyntheticPatient
) -> None:
    """storescp checks the data set against the request: mismatch 0xA900, no SOP UID 0xC000."""
    mismatch = oddities.ct_meta_mismatch(tmp_path / "odd", patient)
    no_uid = oddities.ct_without_sop_instance_uid(tmp_path / "odd", patient)
    destination = _destination(storescp)
    with Forwarder([destination], timeout=TIMEOUT) as forwarder:
        first = forwarder.send(destination, mismatch)
        second = forwarder.send(destination, no_uid)
    assert (first.outcome, first.status) == (FAILED, 0xA900)
    assert "does not match" in first.detail
    assert (second.outcome, second.status) == (FAILED, 0xC000)
    assert "cannot understand" in second.detail


def test_files_that_are_not_part_10_fail_without_a_connection(
    tmp_path: Path, patient: SyntheticPatient
) -> None:
    not_dicom = oddities.not_dicom(tmp_path / "odd")
    destination = Destination("NOBODY", "127.0.0.1", free_port())
    with Forwarder([destination], timeout=TIMEOUT) as forwarder:
        unreadable = forwarder.send(destination, not_dicom)
        missing = forwarder.send(destination, tmp_path / patient.patient_id / "gone.dcm")
    assert unreadable == (FAILED, None, "file is not a readable DICOM Part 10 file")
    assert missing == (FAILED, None, "file to send does not exist")


def test_tls_with_a_client_certificate(tmp_path: Path, sample_study: Path) -> None:
    pki = write_tls_material(tmp_path / "pki")
    other = write_tls_material(tmp_path / "other")
    path = _study_files(sample_study)[0]
    tls_options = ("+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca))
    with StoreSCP(tmp_path / "received", *tls_options) as scp:
        good = _destination(scp, tls=TlsSettings(pki.client_cert, pki.client_key, pki.ca))
        no_client_cert = _destination(scp, tls=TlsSettings(ca=pki.ca))
        wrong_ca = _destination(scp, tls=TlsSettings(pki.client_cert, pki.client_key, other.ca))
        plain = _destination(scp)
        with Forwarder([good, no_client_cert, wrong_ca, plain], timeout=TIMEOUT) as forwarder:
            assert forwarder.send(good, path).outcome == DONE
            for refused in (no_client_cert, wrong_ca, plain):
                result = forwarder.send(refused, path)
                assert result.outcome == RETRY and result.status is None
        assert len(scp.received()) == 1


class _StatusSCP:
    """A pynetdicom Storage SCP answering each C-STORE with the next status of a list.

    Only for statuses a real peer cannot be made to answer on purpose (warnings, 0x0122,
    0xA7xx other than 0xA700, resource limitation, Cxxx other than 0xC000).
    """

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.lock = threading.Lock()
        self.ae = AE(ae_title="STATUS")
        self.ae.supported_contexts = StoragePresentationContexts
        self.port = free_port()
        self.server = self.ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self.handle)]
        )

    def handle(self, event: evt.Event) -> int:
        with self.lock:
            return self.statuses.pop(0)

    def close(self) -> None:
        self.server.shutdown()


def test_statuses_only_a_scp_of_our_own_can_answer(sample_study: Path) -> None:
    """A pynetdicom SCP of the test's own: storescp cannot be made to answer these statuses."""
    statuses = [0xB007, 0x0122, 0xA702, 0x0213, 0xC001, 0x0000]
    scp = _StatusSCP(statuses)
    try:
        destination = Destination("STATUS", "127.0.0.1", scp.port)
        path = _study_files(sample_study)[0]
        with Forwarder([destination], timeout=TIMEOUT) as forwarder:
            results = [forwarder.send(destination, path) for _ in statuses]
    finally:
        scp.close()
    assert [(r.outcome, r.status) for r in results] == [
        (DONE, 0xB007), (FAILED, 0x0122), (RETRY, 0xA702), (RETRY, 0x0213), (FAILED, 0xC001),
        (DONE, 0x0000),
    ]
    assert results[1].detail == "destination does not support the SOP class (0x0122)"
