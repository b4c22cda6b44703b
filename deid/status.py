"""What a node is doing: counts and spool depth, as text (`deid status`), JSON, or HTTP
(`/healthz` and Prometheus `/metrics` on a local port)."""

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
}


def format_status(stats: Mapping[str, float | int]) -> str:
    """``name value`` lines in a fixed order (what `deid status` prints)."""
    width = max(len(name) for name in HELP)
    return "".join(f"{name:<{width}}  {stats.get(name, 0)}\n" for name in HELP)


def metrics_text(stats: Mapping[str, float | int], *, up: bool) -> str:
    """The Prometheus text exposition of the node's figures."""
    lines = [
        "# HELP deid_up 1 when the node is receiving and its workers are running",
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
    """Serve ``/healthz`` (200 or 503, JSON) and ``/metrics`` on status_host:status_port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stats = spool.stats()
            up = node.healthy()
            if self.path.split("?")[0] == "/healthz":
                body = json.dumps({"status": "ok" if up else "unavailable", **stats}).encode()
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
