"""`deid pull --stow URL` and its files: checked as a YAML ``stow:`` destination is, with errors
that name the flag the user typed; the pull's node gets that destination as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from deid.cli import _parser, _stow_destination, main
from deid.errors import UsageError
from deid.pull.run import PullOptions
from deid.settings import (
    DestinationSettings,
    FolderDestinationSettings,
    StowDestinationSettings,
)

URL = "https://archive.example.org/dicom-web"


def _args(*extra: object):  # type: ignore[no-untyped-def]
    return _parser().parse_args(["pull", "--from", "PACS@127.0.0.1:104", "--accessions", "a.csv",
                                 *map(str, extra)])


def _secret(tmp_path: Path, name: str, mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text("deid:pw\n")
    path.chmod(mode)
    return path


def test_stow_with_a_ca_and_a_password_file_is_a_stow_destination(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    secret = _secret(tmp_path, "archive.secret")
    (destination,) = _stow_destination(
        _args("--stow", URL + "/", "--stow-ca", ca, "--stow-basic-auth-file", secret), tmp_path)
    assert destination == StowDestinationSettings(
        URL, tls=destination.tls, basic_auth_file=secret)
    assert destination.tls is not None and destination.tls.ca == ca
    assert destination.tls.cert is None and destination.token_file is None


@pytest.mark.parametrize("flags, message", [
    (["--out", "o", "--stow-token-file", "t"], "--stow-token-file: goes with --stow URL"),
    (["--stow", "ftp://host/x"], "--stow: a DICOMweb root URL"),
    (["--stow", URL + "/studies"], "--stow: give the DICOMweb root (without /studies)"),
    (["--stow", "https://u:p@host/dicom-web"], ("put credentials in --stow-token-file or "
     "--stow-basic-auth-file")),
    (["--stow", URL, "--stow-ca", "nosuch.pem"], "--stow-ca: "),
    (["--stow", URL, "--stow-cert", "nosuch.pem"],
     "--stow-ca/--stow-cert/--stow-key: cert and key"),
    (["--stow", "http://archive.example.org/dicom-web", "--stow-token-file", "OPEN"],
     "--stow-token-file: "),
    (["--stow", "http://archive.example.org/dicom-web", "--stow-token-file", "SECRET"],
     "--stow: credentials are sent only over https"),
])
def test_a_bad_stow_option_names_its_flag(tmp_path: Path, flags: list[str], message: str) -> None:
    files = {"OPEN": _secret(tmp_path, "open", 0o644), "SECRET": _secret(tmp_path, "secret")}
    flags = [str(files.get(flag, flag)) for flag in flags]
    with pytest.raises(UsageError) as refused:
        _stow_destination(_args(*flags), tmp_path)
    assert message in str(refused.value)
    assert "pw" not in str(refused.value)


def test_stow_excludes_out_and_one_credentials_file_only(capsys: pytest.CaptureFixture) -> None:
    for flags in (["--stow", URL, "--out", "o"], ["--stow", URL, "--forward", "A@h:1"],
                  ["--stow", URL, "--stow-token-file", "t", "--stow-basic-auth-file", "b"]):
        with pytest.raises(SystemExit) as exited:
            main(["pull", "--from", "PACS@127.0.0.1:104", "--accessions", "a.csv", *flags])
        assert exited.value.code == 2
        assert "not allowed with" in capsys.readouterr().err


def test_the_pull_node_sends_to_the_stow_destination_as_given(tmp_path: Path) -> None:
    stow = StowDestinationSettings(URL, token_file=tmp_path / "token")
    options = PullOptions(pacs=DestinationSettings("PACS", "127.0.0.1", 104),
                          requests=tmp_path / "a.csv", kind="accession", data=tmp_path / "data",
                          key_file=tmp_path / "key", aet="DEID",
                          forward=(stow, DestinationSettings("DEST", "127.0.0.1", 11113)))
    assert options.settings().destinations == (
        stow, DestinationSettings("DEST", "127.0.0.1", 11113, calling_ae_title="DEID"))


@pytest.mark.parametrize("out, forward", [(None, ()), (Path("o"), (StowDestinationSettings(URL),))])
def test_a_pull_goes_to_a_folder_or_to_destinations(out, forward, tmp_path: Path) -> None:
    """Never both, never neither."""
    with pytest.raises(UsageError, match="one or the other"):
        PullOptions(pacs=DestinationSettings("PACS", "127.0.0.1", 104), requests=tmp_path / "a.csv",
                    kind="accession", data=tmp_path / "data", key_file=tmp_path / "key", out=out,
                    forward=forward)


def test_the_pull_node_writes_out_as_its_one_destination(tmp_path: Path) -> None:
    """``--out`` is the node's folder destination, named ``folder`` in the records as before."""
    options = PullOptions(pacs=DestinationSettings("PACS", "127.0.0.1", 104),
                          requests=tmp_path / "a.csv", kind="accession", data=tmp_path / "data",
                          key_file=tmp_path / "key", out=tmp_path / "release")
    assert options.settings().destinations == (FolderDestinationSettings(tmp_path / "release"),)
    assert options.settings().destinations[0].name == "folder"


def test_an_output_folder_inside_the_data_folder_is_refused(tmp_path: Path) -> None:
    """The data folder (spool, quarantine, records) and the release never inside one another."""
    for out, data in ((tmp_path / "d" / "release", tmp_path / "d"),
                      (tmp_path / "release", tmp_path / "release" / "data")):
        options = PullOptions(pacs=DestinationSettings("PACS", "127.0.0.1", 104),
                              requests=tmp_path / "a.csv", kind="accession", data=data,
                              key_file=tmp_path / "key", out=out)
        with pytest.raises(UsageError, match="must not be inside one another"):
            options.settings()
