"""An operator points Prometheus at a forwarding node with two destinations, one of them down: the
scrape parses as Prometheus parses it, counts what the separate worker processes did (read from the
spool at each scrape), says per destination how much waits for it, carries the node process's own
figures, and HEAD is answered as GET is."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from servenode import Node, Storescp, free_port, storescu, wait_until

from deid.synthetic.many import write_many_ct_slices

OBJECTS = 6


def _request(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as answer:
        return answer.status, answer.headers["Content-Type"], answer.read()


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = _request(url)[2].decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict:
    root = tmp_path_factory.mktemp("metrics")
    files = write_many_ct_slices(root / "in", OBJECTS, size=16)
    down, status_port = free_port(), free_port()
    with Storescp(root / "up") as up:
        up_name, down_name = f"DEST@127.0.0.1:{up.port}", f"DEST@127.0.0.1:{down}"
        with Node(root / "data", key_file, [up_name, down_name],
                  "--status-port", str(status_port)) as node:
            storescu(node.port, files)
            url = f"http://127.0.0.1:{status_port}"
            wait_until(lambda: len(up.instances()) == OBJECTS, 60, "the first destination")
            wait_until(
                lambda: _samples(url + "/metrics")[("deid_processed_total", ())] == OBJECTS,
                60,
                "every object de-identified",
            )
            answers = {
                "samples": _samples(url + "/metrics"),
                "get": _request(url + "/metrics"),
                "head": _request(url + "/metrics", "HEAD"),
                "head_health": _request(url + "/healthz", "HEAD"),
            }
            assert node.terminate() == 0
    return {**answers, "up": up_name, "down": down_name}


def test_the_spool_figures_come_from_the_workers(scrape: dict) -> None:
    samples = scrape["samples"]
    assert samples[("deid_received_total", ())] == OBJECTS
    assert samples[("deid_processed_total", ())] == OBJECTS
    assert samples[("deid_forwarded_total", ())] == 0  # not yet delivered everywhere
    assert samples[("deid_depth", ())] == OBJECTS and samples[("deid_up", ())] == 1


def test_each_destination_says_how_much_waits_for_it(scrape: dict) -> None:
    samples = scrape["samples"]
    assert samples[("deid_destination_waiting", (("destination", scrape["up"]),))] == 0
    assert samples[("deid_destination_waiting", (("destination", scrape["down"]),))] == OBJECTS


def test_the_node_process_figures_are_there(scrape: dict) -> None:
    samples = scrape["samples"]
    assert samples[("process_resident_memory_bytes", ())] > 0
    assert samples[("process_open_fds", ())] > 0
    assert any(name == "python_info" for name, _ in samples)


def test_head_answers_like_get(scrape: dict) -> None:
    code, kind, body = scrape["head"]
    assert code == 200 and body == b"" and kind == scrape["get"][1]
    assert scrape["head_health"][0] == 200 and scrape["head_health"][2] == b""


def test_each_send_is_timed_per_destination(scrape: dict) -> None:
    samples = scrape["samples"]
    done = (("destination", scrape["up"]), ("outcome", "done"))
    retry = (("destination", scrape["down"]), ("outcome", "retry"))
    assert samples[("deid_send_seconds_count", done)] == OBJECTS
    assert samples[("deid_send_seconds_count", retry)] >= 1  # later ones wait without a try
