"""What a node is doing: counts, spool depth and whether its disk takes writes, as text
(`deid status`), JSON, or HTTP (`/healthz` and Prometheus `/metrics` on a local port; the
latter made by :mod:`deid.metrics`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from deid.metrics import CONTENT_TYPE, HELP, NodeCollector, node_registry, render
from deid.spool import OPEN_STATES, connect

NODE_ONLY = ("workers_waiting", "storage_refusals")  # known to the running node, not to its folder


def format_status(stats: Mapping[str, Any]) -> str:
    """``name value`` lines in a fixed order (what `deid status` prints), then ``storage`` with
    ``ok`` or what is wrong with the disk."""
    names = [n for n in HELP if n not in NODE_ONLY or n in stats]
    width = max(len(name) for name in names)
    lines = "".join(f"{name:<{width}}  {stats.get(name, 0)}\n" for name in names)
    return lines + (f"{'storage':<{width}}  {stats['storage']}\n" if "storage" in stats else "")


def destinations_waiting(db_path: Path, destinations: Sequence[str]) -> dict[str, int]:
    """Per destination name: the unfinished objects in the spool it has not yet received (read
    from the spool's database with a reader's connection of its own)."""
    conn = connect(db_path, reader=True)
    try:
        rows = conn.execute(
            f"SELECT sent FROM items WHERE state IN ({', '.join('?' * len(OPEN_STATES))})",
            OPEN_STATES,
        ).fetchall()
    finally:
        conn.close()
    sent = [set(json.loads(row[0] or "[]")) for row in rows]
    return {name: sum(name not in done for done in sent) for name in destinations}


def start_status_server(settings: Any, spool: Any, node: Any) -> ThreadingHTTPServer:
    """Serve ``/healthz`` (200, or 503 with ``reason``: what is wrong, e.g. "spool disk full: 12
    MiB free, needs 64 MiB"; JSON) and ``/metrics`` (Prometheus text) on status_host:status_port,
    to GET and HEAD.  The send latency histograms are the node's ``send_latency`` (a
    :class:`deid.metrics.SendLatency` its workers observe into), when it has one."""

    def read() -> tuple[dict[str, Any], list[str]]:
        problems = list(node.problems())
        try:
            stats: dict[str, Any] = dict(spool.stats())
        except Exception:  # noqa: BLE001  (the figures are missing; the answer still comes)
            stats = {}
            problems.append("spool database unreadable")
        stats.update(node.figures())
        return stats, problems

    def waiting() -> dict[str, int]:
        names = [destination.name for destination in settings.destinations]
        try:
            return destinations_waiting(spool.db_path, names)
        except Exception:  # noqa: BLE001  (deid_up says the database is unreadable)
            return {}

    def read_for_metrics() -> tuple[dict[str, Any], bool]:
        stats, problems = read()
        return stats, not problems

    registry = node_registry(
        NodeCollector(
            read_for_metrics, waiting=waiting, latency=getattr(node, "send_latency", None)
        )
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(*self._route())

        def do_HEAD(self) -> None:
            self._answer(*self._route(), head=True)

        def _route(self) -> tuple[int, str, bytes]:
            path = self.path.split("?")[0]
            if path == "/healthz":
                stats, problems = read()
                health = (
                    {"status": "ok"}
                    if not problems
                    else {"status": "unavailable", "reason": "; ".join(problems)}
                )
                body = json.dumps({**health, **stats}).encode()
                return (503 if problems else 200), "application/json", body
            if path == "/metrics":
                return 200, CONTENT_TYPE, render(registry)
            return 404, "text/plain", b"not found: try /healthz or /metrics\n"

        def _answer(self, code: int, kind: str, body: bytes, *, head: bool = False) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(
            self, *_args: Any
        ) -> None:  # no access log (keeps stderr for deid's own logs)
            return

    server = ThreadingHTTPServer((settings.status_host, settings.status_port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="deid-status", daemon=True).start()
    return server
