"""A real Orthanc (Debian's ``/usr/sbin/Orthanc``) for tests: temp config, free ports, REST helpers.

Orthanc 1.10 has no option to choose its listening address: its HTTP server refuses every
client but 127.0.0.1 (``RemoteAccessAllowed`` false) and both ports are free ones, open only
while the test runs. Storage, index and log live in the test's folder; no plugins are loaded but
Debian's DICOMweb plugin where ``dicomweb=True`` (``orthanc-dicomweb``: STOW-RS at
``/dicom-web``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from peers import require_tool
from servers import free_port, stop

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def _require_plugin(path: str) -> str:
    """The plugin's path; skip the test without it, or fail it in CI (as peers.require_tool)."""
    if not os.path.isfile(path):
        message = f"Orthanc plugin {path} is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def rtss_points_at_images(tags: dict[str, dict]) -> bool:
    """Whether the one RTSS among Orthanc's instance tags (instance -> its simplified tags)
    references images, and only CT images that are there."""
    images = {h["SOPInstanceUID"] for h in tags.values() if h["Modality"] == "CT"}
    (rtss,) = [h for h in tags.values() if h["Modality"] == "RTSTRUCT"]
    referenced = {
        image["ReferencedSOPInstanceUID"]
        for roi in rtss["ROIContourSequence"]
        for contour in roi["ContourSequence"]
        for image in contour["ContourImageSequence"]
    }
    return bool(referenced) and referenced <= images


class Orthanc:
    """One Orthanc process: DICOM AE ``aet`` on ``dicom_port``, REST API on ``http_port``.

    ``modalities`` are the DICOM nodes it knows (name -> (AE title, host, port)): the ones it may
    send to, and with ``allow_any_store=False`` the only ones it accepts C-STORE from.
    ``scp_timeout`` is how long it keeps an idle incoming association (``DicomScpTimeout``).
    ``settings`` are further configuration keys, applied last (ports, folders and the local-only
    HTTP server stay the harness's own; ``AuthenticationEnabled`` and ``RegisteredUsers`` may be
    given). ``dicomweb`` loads the DICOMweb plugin (its root: :attr:`dicomweb_url`).
    """

    def __init__(
        self,
        folder: Path,
        *,
        aet: str = "ORTHANC",
        modalities: Mapping[str, tuple[str, str, int]] | None = None,
        allow_any_store: bool = True,
        scp_timeout: int = 30,
        settings: Mapping[str, Any] | None = None,
        dicomweb: bool = False,
    ) -> None:
        self.folder = folder
        self.aet = aet
        self.modalities = dict(modalities or {})
        self.allow_any_store = allow_any_store
        self.scp_timeout = scp_timeout
        self.settings = dict(settings or {})
        self.dicomweb = dicomweb
        if "DicomAet" in self.settings:
            self.aet = str(self.settings["DicomAet"])
        self.http_port = 0
        self.dicom_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        """The DICOMweb root (STOW-RS: ``{dicomweb_url}/studies``)."""
        return f"{self.url}/dicom-web"

    def config(self) -> dict[str, Any]:
        """The Orthanc configuration this instance runs with."""
        return {**self.settings, **self._own()}

    def _own(self) -> dict[str, Any]:
        own = {
            "Name": f"deid-test-{self.aet}",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "StorageCompression": False,
            "Plugins": [_require_plugin(DICOMWEB_PLUGIN)] if self.dicomweb else [],
            "LuaScripts": [],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "SslEnabled": False,  # Debian's 1.10.1 crashes at its first HTTPS request: tlsrelay.py
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowStore": self.allow_any_store,
            "DicomAlwaysAllowEcho": True,
            "DicomCheckModalityHost": False,
            "DicomScpTimeout": self.scp_timeout,
            "DicomModalities": {name: list(node) for name, node in self.modalities.items()},
            "UnknownSopClassAccepted": False,
            "OverwriteInstances": True,  # deterministic UIDs: a re-send replaces, never adds
            "SaveJobs": False,
            "ConcurrentJobs": 1,
            "HttpThreadsCount": 8,
            "DicomThreadsCount": 4,
            "StableAge": 3600,
        }
        for key in ("DicomAet", "DicomCheckCalledAet", "DicomAlwaysAllowStore", "DicomModalities",
                    "DicomScpTimeout", "OverwriteInstances", "LuaScripts",
                    "AuthenticationEnabled"):
            if key in self.settings:
                own.pop(key)
        if self.dicomweb:
            own["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
        return own

    def start(self, timeout: float = 60) -> Orthanc:
        tool = require_tool(ORTHANC)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.http_port = self.http_port or free_port()
        self.dicom_port = self.dicom_port or free_port()
        config = self.folder / "orthanc.json"
        config.write_text(json.dumps(self.config(), indent=2))
        with (self.folder / "orthanc.log").open("ab") as log:
            self.process = subprocess.Popen(
                [tool, "--no-jobs", str(config)], stdout=log, stderr=subprocess.STDOUT,
                cwd=self.folder,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with code {self.process.returncode}; "
                                   f"see {self.folder / 'orthanc.log'}")
            try:
                self.get("/system")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer /system within {timeout} s")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def __enter__(self) -> Orthanc:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- REST ------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """The body of Orthanc's answer to ``method path`` (raises on an HTTP error)."""
        request = urllib.request.Request(self.url + path, data=body, method=method)
        users = self.settings.get("RegisteredUsers")
        if users and self.settings.get("AuthenticationEnabled"):  # as the first registered user
            user, password = next(iter(users.items()))
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def post(self, path: str, body: bytes) -> Any:
        return json.loads(self.request("POST", path, body))

    def get(self, path: str) -> Any:
        return json.loads(self.request("GET", path))

    def instances(self) -> list[str]:
        """Orthanc's identifiers of every stored instance."""
        return list(self.get("/instances"))

    def instance_count(self) -> int:
        return int(self.get("/statistics")["CountInstances"])

    def tags(self, instance: str) -> dict[str, Any]:
        """The instance's header as Orthanc reads it, keyword -> value (nested for sequences)."""
        return dict(self.get(f"/instances/{instance}/tags?simplify"))

    def file(self, instance: str) -> bytes:
        """The stored Part 10 file of the instance."""
        return self.request("GET", f"/instances/{instance}/file")

    def sop_instance_uids(self) -> set[str]:
        """The SOP Instance UID of every stored instance."""
        expanded = self.get("/instances?expand")
        return {item["MainDicomTags"]["SOPInstanceUID"] for item in expanded}

    def delete_all(self) -> None:
        """Delete every patient (and so every study, series and instance)."""
        for patient in self.get("/patients"):
            self.request("DELETE", f"/patients/{patient}")
