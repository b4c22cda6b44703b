"""The secret key: created owner-only, loaded with a mode check, used only through HMAC helpers.

The key is never printed, logged or put in an exception message.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from deid.errors import KeyFileError

KEY_BYTES = 32
ENV_KEY_FILE = "DEID_KEY_FILE"


@dataclass(frozen=True)
class SecretKey:
    """A loaded secret. ``repr`` hides it; ``digest`` is the only way to use it."""

    _material: bytes = field(repr=False)

    def digest(self, domain: str, value: str | bytes) -> bytes:
        """HMAC-SHA256 of ``value`` in a named domain (domains keep uses apart)."""
        data = value.encode("utf-8") if isinstance(value, str) else value
        return hmac.new(self._material, domain.encode("ascii") + b"\x00" + data, hashlib.sha256).digest()

    def hexdigest(self, domain: str, value: str | bytes) -> str:
        return self.digest(domain, value).hex()

    def derive(self, purpose: str) -> bytes:
        """A sub-key for another purpose (e.g. encrypting the re-identification map)."""
        return self.digest("derive", purpose)

    @property
    def fingerprint(self) -> str:
        """A short public identifier of the key (safe to record; reveals nothing of it)."""
        return hashlib.sha256(b"deid-key-fingerprint\x00" + self._material).hexdigest()[:12]


def generate_key_file(path: Path) -> None:
    """Write a new random key, mode 0600; refuse to overwrite an existing file."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path}: a file is already there; refusing to overwrite a key") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o600)


def load_key_file(path: Path | str | None) -> SecretKey:
    """Load a key written by ``deid keygen`` (or any file of 64+ hex characters)."""
    if path is None or str(path) == "":
        env = os.environ.get(ENV_KEY_FILE)
        if not env:
            raise KeyFileError(
                "no key: pass --key-file PATH or set DEID_KEY_FILE (make one with: deid keygen PATH)"
            )
        path = env
    path = Path(path).expanduser()
    try:
        info = path.stat()
    except OSError:
        raise KeyFileError(f"{path}: key file not found (make one with: deid keygen {path})") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: key file is readable by others; run: chmod 600 {path}")
    try:
        text = path.read_text(encoding="ascii").strip()
        material = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError):
        raise KeyFileError(f"{path}: not a deid key file (expected hex text from deid keygen)") from None
    if len(material) < 16:
        raise KeyFileError(f"{path}: key too short (need at least 16 bytes of hex)")
    return SecretKey(material)
