"""The C-STORE receiver with real DCMTK peers: echo, allow list, durable-before-success, out of
resources, compressed syntaxes accepted as they are, TLS."""

from __future__ import annotations

from pathlib import Path

import pytest
from servenode import SENDER, echoscu, spooled, start_receiver, storescu

from deid.intake.receiver import caller_allowed
from deid.settings import AllowedCaller
from deid.synthetic import make_patient, write_sample_study
from deid.synthetic.certificates import write_tls_material
from deid.synthetic.oddities import ct_rle


_receiver = start_receiver


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return write_sample_study(tmp_path / "in", make_patient(1), slices=1, size=16)


def test_echo_and_store_put_every_object_on_the_spool(tmp_path: Path, files: list[Path]) -> None:
    receiver, spool = _receiver(tmp_path)
    try:
        assert echoscu(receiver.settings.port).returncode == 0
        result = storescu(receiver.settings.port, files, "-v")
        assert result.stderr.count("Received Store Response (Success)") == len(files)
        stats = spool.stats()
        assert stats["received"] == len(files) == stats["queued"]
        originals = spooled(tmp_path / "data")
        assert all(data[128:].startswith(b"DICM") for data in originals)
        # the body arrives byte for byte (only the file meta is rebuilt from the association)
        bodies = {p.read_bytes()[-2000:] for p in files}
        assert {data[-2000:] for data in originals} == bodies
    finally:
        receiver.abort_all()


def test_unknown_calling_ae_title_or_host_is_rejected(tmp_path: Path, files: list[Path]) -> None:
    receiver, spool = _receiver(tmp_path, "SENDER@10.9.9.9", "OTHER")
    try:
        port = receiver.settings.port
        assert echoscu(port, aet="INTRUDER").returncode != 0
        assert echoscu(port, aet=SENDER).returncode != 0  # allowed only from another host
        assert echoscu(port, aet="OTHER").returncode == 0
        result = storescu(port, files, aet="INTRUDER", check=False)
        assert result.returncode != 0 and "Rejected" in result.stderr
        assert spool.stats()["received"] == 0
    finally:
        receiver.abort_all()
    assert caller_allowed([AllowedCaller("A", None)], "A   ", "1.2.3.4")


def test_spool_failure_answers_out_of_resources_never_success(
    tmp_path: Path, files: list[Path]
) -> None:
    receiver, spool = _receiver(tmp_path, min_free_bytes=1 << 60)  # "disk full"
    try:
        result = storescu(receiver.settings.port, files[:1], "-v", check=False)
        assert "Refused: OutOfResources" in result.stderr or "0xa700" in result.stderr.lower()
        assert "Success" not in result.stderr
        assert spool.stats()["received"] == 0
    finally:
        receiver.abort_all()


def test_compressed_object_is_accepted_in_its_own_syntax(tmp_path: Path) -> None:
    path = ct_rle(tmp_path / "in")
    receiver, spool = _receiver(tmp_path)
    try:
        storescu(
            receiver.settings.port, [path], "-xr"
        )  # storescu proposes RLE (the file's own syntax)
        (original,) = spooled(tmp_path / "data")
        from io import BytesIO

        from pydicom import dcmread

        assert (
            dcmread(BytesIO(original)).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5"
        )  # RLE, not decoded
        assert dcmread(BytesIO(original)).PixelData == dcmread(path).PixelData
    finally:
        receiver.abort_all()


def test_tls_with_client_certificates(tmp_path: Path, files: list[Path]) -> None:
    tls = write_tls_material(tmp_path / "tls")
    receiver, spool = _receiver(
        tmp_path,
        **{"tls.cert": str(tls.server_cert), "tls.key": str(tls.server_key), "tls.ca": str(tls.ca)},
    )
    try:
        port = receiver.settings.port
        with_client = ["+tls", str(tls.client_key), str(tls.client_cert), "+cf", str(tls.ca)]
        assert echoscu(port, *with_client).returncode == 0
        storescu(port, files, *with_client)
        assert spool.stats()["received"] == len(files)
        assert echoscu(port).returncode != 0  # plain TCP refused
        anonymous = ["+tla", "+cf", str(tls.ca)]  # no client certificate
        assert echoscu(port, *anonymous).returncode != 0
    finally:
        receiver.abort_all()


def test_associations_beyond_the_maximum_are_rejected(tmp_path: Path) -> None:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    receiver, _spool = _receiver(tmp_path, max_associations=1)
    try:
        client = AE(ae_title=SENDER)
        client.add_requested_context(Verification)
        held = client.associate("127.0.0.1", receiver.settings.port, ae_title="DEID")
        assert held.is_established
        assert echoscu(receiver.settings.port).returncode != 0  # a second one at once: rejected
        held.release()
        assert echoscu(receiver.settings.port).returncode == 0
    finally:
        receiver.abort_all()
