"""The deployment files in deploy/: compose, Dockerfile, systemd unit and the Orthanc configs they
ship (the Orthanc ones run for real, on 127.0.0.1)."""

from __future__ import annotations

import configparser
import json
import re
import time
from pathlib import Path

import pydicom
import pytest
import yaml
from orthanc import Orthanc
from servers import StoreSCP
from support import REPO

from deid.forward import DONE, RETRY, Destination, Forwarder

DEPLOY = REPO / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_runs_upstream_orthanc_then_deid_then_downstream_orthanc(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"upstream", "deid", "downstream"}
    assert "deid" in services["upstream"]["depends_on"]
    assert "downstream" in services["deid"]["depends_on"]
    for name in ("upstream", "downstream"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), volume
        for port in services[name].get("ports", []):
            assert port.startswith("127.0.0.1:"), port  # the demo publishes on loopback only


def test_compose_mounts_the_key_read_only_and_runs_deid_unprivileged(compose: dict) -> None:
    deid = compose["services"]["deid"]
    assert deid["build"]["dockerfile"] == "deploy/Dockerfile"
    assert deid["secrets"] == [{"source": "deid_key", "target": "deid.key"}]
    assert compose["secrets"]["deid_key"]["file"].startswith("./secrets/")
    assert deid["environment"]["DEID_SERVE_KEY_FILE"] == "/run/secrets/deid.key"
    assert deid["read_only"] is True and deid["user"] != "0" and not deid["user"].startswith("0:")
    assert deid["stop_signal"] == "SIGTERM" and deid["stop_grace_period"]
    config_mount = next(v for v in deid["volumes"] if v.endswith(":/etc/deid/deid-serve.yaml:ro"))
    assert (DEPLOY / config_mount.split(":")[0]).is_file()


def test_the_compose_nodes_know_each_other(compose: dict) -> None:
    deid = yaml.safe_load((DEPLOY / "compose" / "deid.yaml").read_text())
    upstream = json.loads((DEPLOY / "compose" / "upstream.json").read_text())
    downstream = json.loads((DEPLOY / "compose" / "downstream.json").read_text())
    assert deid["allow"] == [upstream["DicomAet"]]
    (destination,) = deid["destinations"]
    assert destination == {"ae_title": downstream["DicomAet"], "host": "downstream",
                           "port": downstream["DicomPort"]}
    node = [deid["ae_title"], "deid", deid["port"]]
    assert upstream["DicomModalities"]["deid"] == node
    assert downstream["DicomModalities"]["deid"] == node
    assert downstream["DicomAlwaysAllowStore"] is False  # accepts C-STORE from deid only
    assert deid["key_file"] == "/run/secrets/deid.key"


def test_the_dockerfile_keeps_the_key_out_and_runs_as_a_dedicated_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in text.splitlines()
                    if line.strip() and not line.startswith((" ", "#"))]
    assert instructions[0] == "FROM" and re.search(r"^FROM python:3\.\d+-slim$", text, re.MULTILINE)
    copies = re.findall(r"^COPY (.+)$", text, re.MULTILINE)
    assert copies == ["pyproject.toml README.md ./", "deid ./deid"]
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0"))
    assert instructions.index("USER") > max(i for i, word in enumerate(instructions) if word == "RUN")
    assert "key" not in " ".join(copies).lower()
    assert re.search(r'^ENTRYPOINT \["deid"\]$', text, re.MULTILINE)
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignored[next(i for i, line in enumerate(ignored) if not line.startswith("#"))] == "**"
    assert {"**/*.key", "**/*.pem"} <= set(ignored)


def test_the_systemd_unit_drains_restarts_and_hands_over_the_key_as_a_credential() -> None:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "deid-serve.service").read_text())
    service = unit["Service"]
    assert service["User"] == "deid" and service["Group"] == "deid"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 30
    credential, source = service["LoadCredential"].split(":", 1)
    assert "--key-file ${CREDENTIALS_DIRECTORY}/" + credential in service["ExecStart"]
    assert source.startswith("/etc/deid/")
    assert service["UMask"] == "0077" and service["StateDirectoryMode"] == "0700"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def _orthanc_settings(name: str) -> dict:
    return json.loads((DEPLOY / "compose" / name).read_text())


def test_the_upstream_orthanc_config_sends_what_it_receives_on_to_deid(
    tmp_path: Path, sample_study: Path
) -> None:
    """The shipped upstream.json and autoforward.lua in a real Orthanc; storescp stands in for
    deid at the address of its "deid" modality."""
    settings = _orthanc_settings("upstream.json")
    settings["LuaScripts"] = [str(DEPLOY / "compose" / "autoforward.lua")]
    path = next(sample_study.rglob("*.dcm"))
    with StoreSCP(tmp_path / "deid", aet=settings["DicomModalities"]["deid"][0]) as deid:
        settings["DicomModalities"]["deid"][1:] = ["127.0.0.1", deid.port]
        with Orthanc(tmp_path / "upstream", settings=settings) as upstream:
            upstream.post("/instances", path.read_bytes())
            for _ in range(100):
                if deid.received():
                    break
                time.sleep(0.1)
        (received,) = deid.received()
    assert pydicom.dcmread(received).SOPInstanceUID == pydicom.dcmread(path).SOPInstanceUID


def test_the_downstream_orthanc_config_takes_objects_from_deid_only(
    tmp_path: Path, sample_study: Path
) -> None:
    settings = _orthanc_settings("downstream.json")
    node = settings["DicomModalities"]["deid"][0]
    path = next(sample_study.rglob("*.dcm"))
    with Orthanc(tmp_path / "downstream", settings=settings) as downstream:
        from_deid = Destination(downstream.aet, "127.0.0.1", downstream.dicom_port, called_by=node)
        stranger = Destination(downstream.aet, "127.0.0.1", downstream.dicom_port, called_by="OTHER")
        with Forwarder([from_deid, stranger], timeout=5) as forwarder:
            assert forwarder.send(stranger, path).outcome == RETRY
            assert downstream.instance_count() == 0
            assert forwarder.send(from_deid, path).outcome == DONE
        assert downstream.instance_count() == 1


@pytest.mark.parametrize("name", ["deid-serve.example.yaml", "compose/deid.yaml"])
def test_the_shipped_settings_load_as_deid_serve_reads_them(name: str) -> None:
    from deid.settings import load_settings

    settings = load_settings(DEPLOY / name, environ={})
    assert settings.ae_title == "DEID" and settings.destinations and settings.allow
    assert settings.status_port == 9102  # the image's HEALTHCHECK asks this port
