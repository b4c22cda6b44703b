"""STOW-RS destinations: settings, credentials files and the outcome of an answer (the live
behaviour against Orthanc: tests/scenarios/test_forwarding_node_stows_to_a_dicomweb_archive.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from deid.errors import UsageError
from deid.forward import DONE, FAILED, RETRY
from deid.settings import StowDestinationSettings, load_settings
from deid.stow import (CredentialsError, StowDestination, classify, may_send_credentials,
                       read_credentials)

BASE = {"allow": ["SENDER"], "key_file": "K", "data": "DIR"}


def _secret(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def _settings(tmp_path: Path, destination: object) -> StowDestinationSettings:
    config = tmp_path / "node.yaml"
    import yaml

    config.write_text(yaml.safe_dump({**BASE, "destinations": [destination]}))
    (dest,) = load_settings(config, environ={}).destinations
    assert isinstance(dest, StowDestinationSettings)
    return dest


def test_a_destination_may_be_a_dicomweb_root(tmp_path: Path) -> None:
    secret = _secret(tmp_path / "archive.secret", "deid:pw\n")
    dest = _settings(tmp_path, {"stow": "https://archive.example.org/dicom-web/",
                                "basic_auth_file": "archive.secret", "max_requests": 3})
    assert (dest.name, dest.basic_auth_file, dest.max_associations) == (
        "https://archive.example.org/dicom-web", secret, 3)
    assert _settings(tmp_path, "http://127.0.0.1:8042/dicom-web").url == "http://127.0.0.1:8042/dicom-web"


@pytest.mark.parametrize(("destination", "message"), [
    ({"stow": "https://user:pw@archive/dicom-web"}, "no user, password or query"),
    ({"stow": "https://archive/dicom-web?token=x"}, "no user, password or query"),
    ({"stow": "https://archive/dicom-web/studies"}, "without /studies"),
    ({"stow": "ftp://archive/dicom-web"}, "DICOMweb root URL"),
    ({"stow": "http://archive.example.org/dicom-web", "token_file": "token"}, "only over https"),
    ({"stow": "https://archive/dicom-web", "token_file": "open"}, "chmod 600"),
    ({"stow": "https://archive/dicom-web", "token_file": "missing"}, "no such file"),
    ({"stow": "https://archive/dicom-web", "token_file": "token", "basic_auth_file": "token"},
     "one or the other"),
    ({"stow": "https://archive/dicom-web", "password": "x"}, "unknown setting"),
])
def test_a_bad_stow_destination_is_refused_naming_the_key(tmp_path: Path, destination, message) -> None:
    _secret(tmp_path / "token", "abc\n")
    _secret(tmp_path / "open", "abc\n", 0o644)
    with pytest.raises(UsageError, match=message) as error:
        _settings(tmp_path, destination)
    assert "destinations[0]" in str(error.value)
    assert "pw" not in str(error.value).replace("password", "")


def test_credentials_come_from_the_file_and_never_show(tmp_path: Path) -> None:
    token = StowDestination("https://a/dicom-web", token_file=_secret(tmp_path / "t", "s3cr3t-token\n"))
    auth = read_credentials(token)
    prepared = auth(requests.Request("POST", "https://a/dicom-web/studies").prepare())
    assert prepared.headers["Authorization"] == "Bearer s3cr3t-token"
    assert "s3cr3t" not in repr(auth)
    basic = StowDestination("https://a/dicom-web", basic_auth_file=_secret(tmp_path / "b", "deid:pw:x\n"))
    assert (read_credentials(basic).username, read_credentials(basic).password) == ("deid", "pw:x")
    with pytest.raises(CredentialsError, match="no user:password"):
        read_credentials(StowDestination("https://a", basic_auth_file=_secret(tmp_path / "c", "pw\n")))
    assert read_credentials(StowDestination("https://a")) is None


def test_credentials_go_over_https_or_to_this_machine() -> None:
    assert may_send_credentials("https://archive.example.org/dicom-web")
    assert may_send_credentials("http://127.0.0.1:8042/dicom-web")
    assert may_send_credentials("http://localhost:8042/dicom-web")
    assert not may_send_credentials("http://10.0.0.5:8042/dicom-web")


@pytest.mark.parametrize(("status", "reason", "outcome"), [
    (200, None, DONE), (202, None, DONE),
    (202, 0xC000, FAILED), (409, 0x0110, FAILED), (409, None, FAILED), (400, None, FAILED),
    (413, None, FAILED), (415, None, FAILED),
    (409, 0xA700, RETRY), (400, 0xA700, RETRY),  # out of resources, as a C-STORE status
    (None, None, RETRY), (500, None, RETRY), (503, None, RETRY), (504, None, RETRY),
    (408, None, RETRY), (429, None, RETRY), (401, None, RETRY), (403, None, RETRY),
    (404, None, RETRY),
])
def test_an_answer_maps_to_the_forwarders_outcomes(status, reason, outcome) -> None:
    assert classify(status, reason) == outcome
