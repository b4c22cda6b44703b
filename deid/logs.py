"""structlog set-up: JSON lines when not on a terminal, and a PHI allow-list as the last processor.

Only keys named in ``ALLOWED_KEYS`` reach the output; anything else is dropped, so a value passed
to a log call by mistake never reaches a log file.  Messages themselves are fixed strings.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, MutableMapping

import structlog

ALLOWED_KEYS = frozenset(
    {
        "event", "level", "timestamp", "logger",
        "run_id", "outcome", "code", "stage", "path", "count", "written", "skipped",
        "quarantined", "failed", "total", "workers", "seconds", "rate", "profile",
        "profile_version", "sop_class", "modality", "output", "quarantine", "records",
        "error_type", "key_fingerprint", "files", "aet", "port", "status", "attempt", "peer",
    }
)


def allow_list(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Drop every key that is not known to be free of patient identity."""
    for key in [k for k in event_dict if k not in ALLOWED_KEYS]:
        del event_dict[key]
    return event_dict


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    """A logger writing to ``sys.stderr`` as it is at the call, not as it was at configuration
    (a stream replaced since, e.g. closed by a test harness, must not break the caller)."""
    return structlog.PrintLogger(file=sys.stderr)


#: The log level (debug, info, warning, error) of a process and of the workers it starts (they
#: inherit the environment): set by `deid -q/-v` (:func:`set_level`), or by the user.
ENV_LEVEL = "DEID_LOG_LEVEL"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}


def level_from_environment() -> int:
    """The level ``DEID_LOG_LEVEL`` names (info when unset or unknown)."""
    return LEVELS.get(os.environ.get(ENV_LEVEL, "").strip().lower(), logging.INFO)


def set_level(name: str) -> None:
    """Log at ``name`` (a key of :data:`LEVELS`) here and in every worker process started after."""
    if name not in LEVELS:
        raise ValueError(f"log level is one of {', '.join(LEVELS)}")
    os.environ[ENV_LEVEL] = name


def configure(*, json: bool | None = None, level: int | None = None) -> None:
    """Configure structlog for the process (CLI and workers call this once); ``level`` defaults
    to ``DEID_LOG_LEVEL``'s (info)."""
    if level is None:
        level = level_from_environment()
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            allow_list,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "deid") -> Any:
    return structlog.get_logger(name)
