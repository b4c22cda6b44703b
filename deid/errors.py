"""One root error for deid; subclasses carry a reason code, a stage and an element path.

Messages are written by us, never copied from an element's value, so they can be logged and
shown to a person without carrying patient identity.
"""

from __future__ import annotations


class DeidError(Exception):
    """Root of every error deid raises on purpose."""


class UsageError(DeidError):
    """Bad command-line usage, profile, key or configuration (exit code 2)."""


class ProfileError(UsageError):
    """A profile that cannot be loaded; the message names the file, the key and the rule."""


class KeyFileError(UsageError):
    """The secret key file is missing, unreadable, malformed or readable by others."""


class ObjectError(DeidError):
    """One object cannot be de-identified: it goes to quarantine with this reason.

    ``code`` is a stable machine-readable reason, ``stage`` where it happened (read, rules,
    check, write), ``path`` the element path (tags only, e.g. ``(0040,0275)[0].(0010,0020)``).
    """

    def __init__(self, code: str, message: str, *, stage: str, path: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.stage = stage
        self.path = path
        self.message = message

    def as_reason(self) -> dict[str, str]:
        """The quarantine reason: code, stage, element path and our own message (no values)."""
        return {"code": self.code, "stage": self.stage, "path": self.path, "message": self.message}


#: the attribute an unexpected exception carries the element path in (set where it is known)
PATH_ATTRIBUTE = "deid_element_path"


def attach_path(exc: BaseException, path: str) -> None:
    """Name the element an unexpected exception was raised at; the innermost path set wins."""
    if path and not getattr(exc, PATH_ATTRIBUTE, ""):
        try:
            setattr(exc, PATH_ATTRIBUTE, path)
        except AttributeError:  # an exception type without a __dict__
            pass


def internal_error_reason(exc: BaseException, stage: str, path: str = "",
                          debug_file: str = "") -> dict[str, str]:
    """The quarantine reason of a bug: the exception's type, where it was raised (the last deid
    frame and the innermost frame, as file:line), the stage and the element path.  Only names of
    types, files and functions: a message of a foreign exception can hold a value, so none is
    copied.  ``debug_file``: where the full traceback was written (relative to the records)."""
    frames = _frames(exc)
    ours = [frame for frame in frames if _in_deid(frame.filename)]
    reason = {
        "code": "internal-error",
        "stage": stage,
        "path": path or getattr(exc, PATH_ATTRIBUTE, "") or "",
        "exception": _type_name(exc),
        "raised_in": f"{_short(ours[-1].filename)}:{ours[-1].lineno}" if ours else "",
        "innermost": (f"{_short(frames[-1].filename)}:{frames[-1].lineno} {frames[-1].name}"
                      if frames else ""),
        "message": f"unexpected {exc.__class__.__name__} in deid during {stage}; report it to the "
                   "deid maintainers with this reason.json (it holds no values)",
    }
    if debug_file:
        reason["debug"] = debug_file
    return reason


def _frames(exc: BaseException) -> list:
    import traceback

    return list(traceback.extract_tb(exc.__traceback__)) if exc.__traceback__ is not None else []


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    if module in ("builtins", "__main__"):
        return kind.__qualname__
    return f"{module}.{kind.__qualname__}"


def _in_deid(filename: str) -> bool:
    from pathlib import Path

    return Path(__file__).resolve().parent in Path(filename).resolve().parents


def _short(filename: str) -> str:
    """A source file as 'deid/io/encoder.py' or 'pydicom/filewriter.py': no folder of this
    machine (it can name a user)."""
    from pathlib import Path

    path = Path(filename)
    package = Path(__file__).resolve().parent
    resolved = path.resolve()
    if package in resolved.parents:
        return str(Path(package.name) / resolved.relative_to(package))
    parts = path.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(marker):])
    return "/".join(parts[-2:])
