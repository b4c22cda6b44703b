"""`/metrics` through prometheus_client: the spool's figures read at each scrape, per-destination
labels, send latency histograms written by other processes, process metrics, HEAD answered."""

from __future__ import annotations

import multiprocessing
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deid.metrics import LATENCY_BUCKETS, NodeCollector, SendLatency, node_registry, render
from deid.settings import DestinationSettings
from deid.spool import Spool
from deid.status import start_status_server

A = DestinationSettings("PACS_A", "127.0.0.1", 11112)
B = DestinationSettings("PACS_B", "127.0.0.1", 11113)


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels (parsed as Prometheus does)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def _observe_in_a_worker(latency: SendLatency) -> None:
    latency.observe(A.name, "done", 0.02)
    latency.observe(A.name, "done", 0.3)
    latency.observe(B.name, "retry", 120.0)  # beyond the last bucket: +Inf only
    latency.observe("OTHER@h:1", "done", 1.0)  # not a destination of this node: ignored


def test_latency_observed_in_a_worker_process_is_served_by_the_main_one() -> None:
    context = multiprocessing.get_context("spawn")  # as the node starts its workers
    latency = SendLatency(context, [A.name, B.name])
    worker = context.Process(target=_observe_in_a_worker, args=(latency,))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0

    samples = _samples(render(node_registry(NodeCollector(lambda: ({}, True), latency=latency))))
    a_done = (("destination", A.name), ("outcome", "done"))
    assert samples[("deid_send_seconds_count", a_done)] == 2
    assert samples[("deid_send_seconds_sum", a_done)] == pytest.approx(0.32)
    assert samples[("deid_send_seconds_bucket", (*a_done[:1], ("le", "0.01"), a_done[1]))] == 0
    assert samples[("deid_send_seconds_bucket", (*a_done[:1], ("le", "0.025"), a_done[1]))] == 1
    assert samples[("deid_send_seconds_bucket", (*a_done[:1], ("le", "0.5"), a_done[1]))] == 2
    b_retry = (("destination", B.name), ("le", str(LATENCY_BUCKETS[-1])), ("outcome", "retry"))
    assert samples[("deid_send_seconds_bucket", b_retry)] == 0
    b_inf = (("destination", B.name), ("le", "+Inf"), ("outcome", "retry"))
    assert samples[("deid_send_seconds_bucket", b_inf)] == 1
    assert samples[("deid_send_seconds_count", (("destination", B.name), ("outcome", "done")))] == 0
    assert not any(dict(labels).get("destination") == "OTHER@h:1" for _, labels in samples)


def test_the_figures_are_read_at_each_scrape_with_process_metrics() -> None:
    figures: dict[str, Any] = {"received": 3, "depth": 1, "disk_free_bytes": 5 * 2**30}
    up = [True]
    registry = node_registry(NodeCollector(lambda: (figures, up[0])))
    first = _samples(render(registry))
    figures["received"], up[0] = 4, False
    second = _samples(render(registry))

    assert first[("deid_received_total", ())] == 3 and second[("deid_received_total", ())] == 4
    assert first[("deid_up", ())] == 1 and second[("deid_up", ())] == 0
    assert first[("deid_disk_free_bytes", ())] == 5 * 2**30
    assert first[("deid_lost_total", ())] == 0  # a figure the source lacks is 0
    names = {name for name, _ in first}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total"} <= names
    assert "python_info" in names


class _Node:
    """The node's side of the status server: its problems and its storage figures."""

    def __init__(self, latency: SendLatency | None = None) -> None:
        self.send_latency = latency

    def problems(self) -> list[str]:
        return []

    def figures(self) -> dict[str, Any]:
        return {"workers_waiting": 0, "storage_refusals": 2}


@pytest.fixture
def server(tmp_path: Path) -> Any:
    spool = Spool(tmp_path / "spool", min_free_bytes=0)
    for _ in range(3):
        spool.put(b"not read here")
    item = spool.claim("w0")
    assert item is not None
    spool.mark_sent(item, A.name)  # A has one of the three, B none
    settings = SimpleNamespace(status_host="127.0.0.1", status_port=0, destinations=[A, B])
    latency = SendLatency(multiprocessing.get_context("spawn"), [A.name, B.name])
    latency.observe(B.name, "done", 0.2)
    status = start_status_server(settings, spool, _Node(latency))
    yield f"http://127.0.0.1:{status.server_address[1]}"
    status.shutdown()
    spool.close()


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as answer:
        return answer.status, dict(answer.headers), answer.read()


def test_metrics_carry_the_spool_per_destination_and_latency(server: str) -> None:
    code, headers, body = _get(server + "/metrics")
    samples = _samples(body)
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=")
    assert samples[("deid_received_total", ())] == 3
    assert samples[("deid_depth", ())] == 3 and samples[("deid_in_progress", ())] == 1
    assert samples[("deid_storage_refusals_total", ())] == 2
    assert samples[("deid_destination_waiting", (("destination", A.name),))] == 2
    assert samples[("deid_destination_waiting", (("destination", B.name),))] == 3
    assert samples[("deid_send_seconds_count", (("destination", B.name), ("outcome", "done")))] == 1
    assert ("process_open_fds", ()) in samples


@pytest.mark.parametrize("path", ["/metrics", "/healthz"])
def test_head_is_answered_like_get_without_a_body(server: str, path: str) -> None:
    code, headers, body = _get(server + path, "HEAD")
    assert code == 200 and body == b""
    assert int(headers["Content-Length"]) > 0
    assert headers["Content-Type"] == _get(server + path)[1]["Content-Type"]
