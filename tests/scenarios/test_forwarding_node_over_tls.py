"""A modality sends over TLS with a client certificate; the node (TLS server, CA check) relays
the objects; a sender without a certificate is refused. Status is readable over HTTP."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from servenode import Node, Storescp, echoscu, free_port, storescu, wait_until

from deid.spool import read_stats
from deid.synthetic import make_patient, write_sample_study
from deid.synthetic.certificates import write_tls_material


def test_tls_sender_is_relayed_and_status_is_served(tmp_path: Path, key_file: Path) -> None:
    tls = write_tls_material(tmp_path / "tls")
    files = write_sample_study(tmp_path / "in", make_patient(4), slices=1, size=16)
    status_port = free_port()
    with (
        Storescp(tmp_path / "destination") as destination,
        Node(
            tmp_path / "data",
            key_file,
            [f"DEST@127.0.0.1:{destination.port}"],
            "--tls-cert",
            str(tls.server_cert),
            "--tls-key",
            str(tls.server_key),
            "--tls-ca",
            str(tls.ca),
            "--status-port",
            str(status_port),
        ) as node,
    ):
        client = ["+tls", str(tls.client_key), str(tls.client_cert), "+cf", str(tls.ca)]
        assert (
            echoscu(node.port, "+tla", "+cf", str(tls.ca)).returncode != 0
        )  # no client certificate
        assert echoscu(node.port).returncode != 0  # not TLS
        storescu(node.port, files, *client)
        wait_until(
            lambda: read_stats(node.data)["forwarded"] == len(files), 60, "the objects forwarded"
        )
        with urllib.request.urlopen(
            f"http://127.0.0.1:{status_port}/healthz", timeout=10
        ) as answer:
            health = json.loads(answer.read())
        with urllib.request.urlopen(
            f"http://127.0.0.1:{status_port}/metrics", timeout=10
        ) as answer:
            metrics = answer.read().decode()
        assert node.terminate() == 0
    assert len(destination.instances()) == len(files)
    assert health["status"] == "ok" and health["forwarded"] == len(files) and health["depth"] == 0
    assert "deid_up 1" in metrics and f"deid_forwarded_total {len(files)}" in metrics
    assert (
        "deid_oldest_age_seconds 0" in metrics and "# TYPE deid_received_total counter" in metrics
    )
