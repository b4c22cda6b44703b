"""What becomes of a claimed spool item: one of a closed set, never a string.

A node worker ends every item it claims with exactly one of these, through one
``Worker.settle`` that keeps the fail-closed order: the object's records (audit line, map entry)
are made durable, then the spool lets the original go (forwarded, quarantined) or keeps it for a
later attempt (retry).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Forwarded:
    """Every destination has the released object: the original goes."""


@dataclass(frozen=True)
class Quarantined:
    """The original went to the quarantine (``entry``) for the reason ``code`` (deid.audit.reasons)
    found at ``stage`` (and element ``path``, tags only)."""

    code: str
    stage: str = ""
    path: str = ""
    entry: str | None = None


@dataclass(frozen=True)
class Retry:
    """The original stays in the spool for a later attempt; ``reason`` says why (a code)."""

    reason: str


Settlement = Forwarded | Quarantined | Retry
