"""structlog set-up: JSON lines when not on a terminal, and a PHI allow-list as the last processor.

Only keys named in ``ALLOWED_KEYS`` reach the output; anything else is dropped, so a value passed
to a log call by mistake never reaches a log file.  Messages themselves are fixed strings.  Lines
are written through ``tqdm.write``: a progress bar on the terminal is cleared and drawn again
below them, never broken.  :class:`FirstOfEach` lets a repeated warning through a few times per
code and counts the rest.

structlog is imported with the first line logged at or above the level (~30 ms of start-up, most
of it asyncio, which structlog imports): a ``deid -q`` command that has nothing to say never pays
it; :func:`configure` is applied then.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from collections import Counter
from typing import Any, MutableMapping

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


_BAR: Any = None  # the progress bar this process shows (deid run), while it is up
_WRITING = threading.Lock()


def show_above(bar: Any) -> None:
    """Write log lines above ``bar`` (a tqdm bar) from now on; ``None`` when it is closed."""
    global _BAR
    _BAR = bar


class TerminalLogger:
    """Writes each line to ``sys.stderr`` as it is at the call, not as it was at configuration (a
    stream replaced since, e.g. closed by a test harness, must not break the caller).  While a bar
    is up (:func:`show_above`), through ``tqdm.write``: the bar is cleared first and drawn again
    after, never broken.  Otherwise tqdm is not touched (its lock is shared with forked processes,
    and one killed while holding it must not stop the others' logging)."""

    def msg(self, message: str) -> None:
        bar = _BAR
        if bar is not None and not bar.disable:
            from tqdm import tqdm  # imported already: the bar is one

            tqdm.write(message, file=sys.stderr)
            return
        with _WRITING:
            print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg




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
    """Configure logging for the process (CLI and workers call this once); ``level`` defaults
    to ``DEID_LOG_LEVEL``'s (info).  A forked worker shows no bar: the one it inherited is a stale
    copy of its parent's.  structlog is configured now if loaded, else with the first line."""
    global _SETTINGS
    if level is None:
        level = level_from_environment()
    if json is None:
        json = not sys.stderr.isatty()
    show_above(None)
    warnings.showwarning = _warning_to_log
    _SETTINGS = (json, level)
    if "structlog" in sys.modules:
        _configure_structlog()


_SETTINGS: tuple[bool, int] | None = None  # configure()'s: JSON lines or not, the level
_APPLIED: tuple[bool, int] | None = None  # the settings structlog was configured with


def _configure_structlog() -> None:
    global _APPLIED
    import structlog

    assert _SETTINGS is not None
    json, level = _APPLIED = _SETTINGS
    renderer: Any = (structlog.processors.JSONRenderer() if json
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            allow_list,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_args: TerminalLogger(),
        cache_logger_on_first_use=False,
    )


class Logger:
    """A named logger: a line under the configured level is dropped at once; the first one at or
    above it imports and configures structlog, which writes it (and every later one)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _log(self, level: str, event: str, **fields: Any) -> Any:
        settings = _SETTINGS
        if settings is not None:
            if LEVELS[level] < settings[1]:
                return None
            if _APPLIED != settings:
                _configure_structlog()
        import structlog

        return getattr(structlog.get_logger(self.name), level)(event, **fields)

    def debug(self, event: str, **fields: Any) -> Any:
        return self._log("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> Any:
        return self._log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> Any:
        return self._log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> Any:
        return self._log("error", event, **fields)


def get_logger(name: str = "deid") -> Logger:
    return Logger(name)


def _warning_to_log(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    file: Any = None, line: str | None = None) -> None:
    """A library's warning (e.g. pydicom's on an odd element) is logged at debug level by its
    category only: its text may quote a value, and printed it would break the progress bar."""
    get_logger("deid.warnings").debug("library warning", error_type=category.__name__)


#: how many warnings of one code :class:`FirstOfEach` lets through (all of them at debug level)
FIRST_OF_EACH = 5


class FirstOfEach:
    """The first ``limit`` warnings of each code go to the log; the rest are counted, and
    :meth:`held_back` gives one count per code for a line at the end (a run over a folder of
    broken files logs a few lines per reason, not one per file)."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is None:
            limit = FIRST_OF_EACH if level_from_environment() > logging.DEBUG else sys.maxsize
        self.limit = limit
        self.seen: Counter[str] = Counter()

    def first(self, code: str) -> bool:
        """Count one warning of ``code``; whether it is among the first ``limit``."""
        self.seen[code] += 1
        return self.seen[code] <= self.limit

    def held_back(self) -> dict[str, int]:
        """Code -> how many of its warnings were not logged one by one."""
        return {code: n - self.limit for code, n in sorted(self.seen.items()) if n > self.limit}
