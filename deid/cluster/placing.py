"""The client's half of a cluster run: each staged object, in input order, released as a local run
releases it (:class:`deid.staging.Placer`, shared with ``deid run --workers N``)."""

from __future__ import annotations

from deid.staging import Placer

__all__ = ["Placer"]
