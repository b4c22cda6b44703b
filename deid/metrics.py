"""The forwarding node's Prometheus figures (``GET /metrics``), made by ``prometheus_client``.

The node's workers are separate processes, so nothing here counts in the process that serves the
page: at each scrape :class:`NodeCollector` reads the figures where they are kept (the spool's
database, the node's shared memory) and :class:`SendLatency` keeps its per-destination histograms
in shared memory that the workers write and the main process reads.  The main process's own
figures come from prometheus_client's process, platform and GC collectors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

CONTENT_TYPE = CONTENT_TYPE_LATEST
# seconds one C-STORE of one object takes (association reuse makes most sends short)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SEND_OUTCOMES = ("done", "retry", "failed")  # deid.forward.SendResult.outcome

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


class SendLatency:
    """How long each send to each destination took, as histograms in shared memory: made in the
    node's main process before the workers start (``context`` is its multiprocessing context),
    handed to each worker, which calls :meth:`observe` after every send; read by the status
    server's :meth:`family`.  Counts per (destination, outcome, bucket) are not cumulative
    (the last bucket is +Inf); one sum per (destination, outcome)."""

    def __init__(
        self,
        context: Any,
        destinations: Sequence[str],
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        self.destinations = tuple(destinations)
        self.buckets = tuple(buckets)
        rows = len(self.destinations) * len(SEND_OUTCOMES)
        self.counts = context.Array("q", rows * (len(self.buckets) + 1))
        self.sums = context.Array("d", rows)

    def observe(self, destination: str, outcome: str, seconds: float) -> None:
        """Count one send to ``destination`` (its name, ``AET@host:port``) that ended ``outcome``
        (``done``, ``retry`` or ``failed``) after ``seconds``; an unknown name is ignored."""
        if destination not in self.destinations or outcome not in SEND_OUTCOMES:
            return
        row = self.destinations.index(destination) * len(SEND_OUTCOMES)
        row += SEND_OUTCOMES.index(outcome)
        bucket = next(
            (i for i, bound in enumerate(self.buckets) if seconds <= bound), len(self.buckets)
        )
        with self.counts.get_lock():
            self.counts[row * (len(self.buckets) + 1) + bucket] += 1
        with self.sums.get_lock():
            self.sums[row] += seconds

    def family(self) -> HistogramMetricFamily:
        """``deid_send_seconds`` with ``destination`` and ``outcome`` labels."""
        family = HistogramMetricFamily(
            "deid_send_seconds",
            "time one send (C-STORE of one object) to a destination took, by its outcome",
            labels=("destination", "outcome"),
        )
        width = len(self.buckets) + 1
        with self.counts.get_lock():
            counts = list(self.counts[:])
        with self.sums.get_lock():
            sums = list(self.sums[:])
        for d, destination in enumerate(self.destinations):
            for o, outcome in enumerate(SEND_OUTCOMES):
                row = d * len(SEND_OUTCOMES) + o
                running, buckets = 0, []
                for bound, count in zip(
                    [*map(str, self.buckets), "+Inf"], counts[row * width : (row + 1) * width]
                ):
                    running += count
                    buckets.append((bound, running))
                family.add_metric([destination, outcome], buckets, sums[row])
        return family


class NodeCollector:
    """The node's figures at each scrape: ``read()`` gives the figures (the spool's counters and
    gauges, the storage figures, the workers') and whether the node is up; ``waiting()`` gives,
    per destination, how many unfinished objects it has not yet received."""

    def __init__(
        self,
        read: Callable[[], tuple[Mapping[str, Any], bool]],
        *,
        waiting: Callable[[], Mapping[str, int]] | None = None,
        latency: SendLatency | None = None,
    ) -> None:
        self.read = read
        self.waiting = waiting
        self.latency = latency

    def collect(self) -> Iterator[Metric]:
        stats, up = self.read()
        yield GaugeMetricFamily(
            "deid_up",
            "1 when the node is receiving, its workers run and its disk takes writes",
            value=1 if up else 0,
        )
        for name, (kind, text) in HELP.items():
            value = float(stats.get(name, 0) or 0)
            if kind == "counter":
                yield CounterMetricFamily(f"deid_{name}", text, value=value)
            else:
                yield GaugeMetricFamily(f"deid_{name}", text, value=value)
        if self.waiting is not None:
            family = GaugeMetricFamily(
                "deid_destination_waiting",
                "unfinished objects in the spool that this destination has not yet received",
                labels=("destination",),
            )
            for destination, count in sorted(self.waiting().items()):
                family.add_metric([destination], count)
            yield family
        if self.latency is not None:
            yield self.latency.family()


def node_registry(collector: NodeCollector) -> CollectorRegistry:
    """A registry of the node's figures and the serving process's own (CPU, memory, open files,
    Python version, garbage collection): prometheus_client's default one is not used."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry`` (content type :data:`CONTENT_TYPE`)."""
    return generate_latest(registry)
