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
