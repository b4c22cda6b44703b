"""``deid run --cluster``: the run's objects de-identified on a Dask cluster, with the same bytes,
records and resumability as a local run.  deid.cluster.client drives it (this process), deid.cluster.worker
runs on the workers, deid.staging releases in input order, deid.cluster.envelope seals what
crosses the cluster.  Needs the ``cluster`` extra (dask[distributed]); imported only with --cluster."""

from __future__ import annotations

import re

from deid.errors import UsageError

LOCAL = re.compile(r"^local:(\d+)$")  # --cluster local:N


def check_address(address: str) -> None:
    """Refuse a ``--cluster`` value that is neither ``local:N`` (N >= 1) nor a scheduler address."""
    match = LOCAL.match(address)
    if address.startswith("local") and (match is None or int(match.group(1)) < 1):
        raise UsageError(f"--cluster {address}: give local:N with N worker processes (N >= 1)")
