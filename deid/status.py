"""What a node is doing: counts, spool depth and whether its disk takes writes, as text
(`deid status`), JSON, or HTTP (`/healthz` and Prometheus `/metrics` on a local port)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HELP = {
    "received": ("counter", "objects received and answered success (durable in the spool)"),
    "processed": ("counter", "objects de-identified"),
    "forwarded": ("counter", "objects delivered to every destination"),
    "quarantined": ("counter", "objects put in the quarantine (not released)"),
    "retried": ("counter", "forwarding attempts deferred for a retry"),
    "lost": ("counter", "queued objects whose spool file was missing at start-up"),
    "depth": ("gauge", "objects in the spool not yet finished"),
    "queued": ("gauge", "objects waiting for a worker"),
    "in_progress": ("gauge", "objects a worker is handling"),
    "retrying": ("gauge", "objects waiting for a retry"),
    "oldest_age_seconds": ("gauge", "age of the oldest unfinished object, seconds"),
    "disk_free_bytes": ("gauge", "free space on the spool's file system, bytes"),
    "disk_min_free_bytes": ("gauge", "below this free space the node refuses objects"),
    "storage_unavailable": (
        "gauge",
        "1 while the data folder's disk is full (below min_free_mb), read-only or refuses writes",
    ),
    "workers_waiting": ("gauge", "workers waiting for the data folder to take writes again"),
    "storage_refusals": ("counter", "writes the file system refused to a worker (each then waits)"),
}
NODE_ONLY = ("workers_waiting", "storage_refusals")  # known to the running node, not to its folder


def format_status(stats: Mapping[str, Any]) -> str:
    """``name value`` lines in a fixed order (what `deid status` prints), then ``storage`` with
    ``ok`` or what is wrong with the disk."""
    names = [n for n in HELP if n not in NODE_ONLY or n in stats]
    width = max(len(name) for name in names)
    lines = "".join(f"{name:<{width}}  {stats.get(name, 0)}\n" for name in names)
    return lines + (f"{'storage':<{width}}  {stats['storage']}\n" if "storage" in stats else "")


def metrics_text(stats: Mapping[str, Any], *, up: bool) -> str:
    """The Prometheus text exposition of the node's figures."""
    lines = [
        "# HELP deid_up 1 when the node is receiving, its workers run and its disk takes writes",
        "# TYPE deid_up gauge",
        f"deid_up {1 if up else 0}",
    ]
    for name, (kind, text) in HELP.items():
        metric = f"deid_{name}_total" if kind == "counter" else f"deid_{name}"
        lines += [
            f"# HELP {metric} {text}",
            f"# TYPE {metric} {kind}",
            f"{metric} {stats.get(name, 0)}",
        ]
    return "\n".join(lines) + "\n"


def start_status_server(settings: Any, spool: Any, node: Any) -> ThreadingHTTPServer:
    """Serve ``/healthz`` (200, or 503 with ``reason``: what is wrong, e.g. "spool disk full: 12
    MiB free, needs 64 MiB"; JSON) and ``/metrics`` on status_host:status_port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            problems = list(node.problems())
            try:
                stats: dict[str, Any] = dict(spool.stats())
            except Exception:  # noqa: BLE001  (the figures are missing; the answer still comes)
                stats = {}
                problems.append("spool database unreadable")
            stats.update(node.figures())
            up = not problems
            if self.path.split("?")[0] == "/healthz":
                health = (
                    {"status": "ok"}
                    if up
                    else {"status": "unavailable", "reason": "; ".join(problems)}
                )
                body = json.dumps({**health, **stats}).encode()
                self._answer(200 if up else 503, "application/json", body)
            elif self.path.split("?")[0] == "/metrics":
                self._answer(200, "text/plain; version=0.0.4", metrics_text(stats, up=up).encode())
            else:
                self._answer(404, "text/plain", b"not found: try /healthz or /metrics\n")

        def _answer(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(
            self, *_args: Any
        ) -> None:  # no access log (keeps stderr for deid's own logs)
            return

    server = ThreadingHTTPServer((settings.status_host, settings.status_port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="deid-status", daemon=True).start()
    return server
