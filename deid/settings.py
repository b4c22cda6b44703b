"""Typed settings of the forwarding node (`deid serve`): YAML file < environment < flags.

Every problem is a :class:`~deid.errors.UsageError` that names the key (``port``,
``destinations[1].host``, ``DEID_SERVE_PORT``, ``--forward``), so a bad configuration is refused
at start (exit 2) with what to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from deid.errors import UsageError

ENV_PREFIX = "DEID_SERVE_"
# environment variable -> settings key (lists are comma-separated)
ENV_KEYS = {
    "DEID_SERVE_AE_TITLE": "ae_title",
    "DEID_SERVE_HOST": "host",
    "DEID_SERVE_PORT": "port",
    "DEID_SERVE_ALLOW": "allow",
    "DEID_SERVE_FORWARD": "destinations",
    "DEID_SERVE_MAX_ASSOCIATIONS": "max_associations",
    "DEID_SERVE_MAX_UNASSOCIATED": "max_unassociated",
    "DEID_SERVE_MAX_UNASSOCIATED_PER_ADDRESS": "max_unassociated_per_address",
    "DEID_SERVE_HANDSHAKE_TIMEOUT": "handshake_timeout",
    "DEID_SERVE_MAX_PDU_SIZE": "max_pdu_size",
    "DEID_SERVE_PROFILE": "profile",
    "DEID_SERVE_KEY_FILE": "key_file",
    "DEID_SERVE_DATA": "data",
    "DEID_SERVE_LOOKUP": "lookup",
    "DEID_SERVE_DENY_LIST": "deny_list",
    "DEID_SERVE_WORKERS": "workers",
    "DEID_SERVE_WORKER_NICE": "worker_nice",
    "DEID_SERVE_STATUS_HOST": "status_host",
    "DEID_SERVE_STATUS_PORT": "status_port",
    "DEID_SERVE_TLS_CERT": "tls.cert",
    "DEID_SERVE_TLS_KEY": "tls.key",
    "DEID_SERVE_TLS_CA": "tls.ca",
    "DEID_SERVE_RETRY_FIRST_DELAY": "retry.first_delay",
    "DEID_SERVE_RETRY_MAX_DELAY": "retry.max_delay",
    "DEID_SERVE_MIN_FREE_MB": "min_free_mb",
    "DEID_SERVE_FORWARD_TIMEOUT": "forward_timeout",
    "DEID_SERVE_DEBUG": "debug",
}
MAX_PDU_DEFAULT = 262144
MAX_PDU_RANGE = (4096, 16 * 1024 * 1024)
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # 16 printable characters, no backslash
_TOP_KEYS = {
    "debug",
    "ae_title",
    "host",
    "port",
    "allow",
    "destinations",
    "max_associations",
    "max_unassociated",
    "max_unassociated_per_address",
    "handshake_timeout",
    "max_pdu_size",
    "profile",
    "key_file",
    "data",
    "lookup",
    "deny_list",
    "workers",
    "worker_nice",
    "status_host",
    "status_port",
    "tls",
    "retry",
    "min_free_mb",
    "forward_timeout",
}


@dataclass(frozen=True)
class TlsFiles:
    """Certificate, private key and CA bundle (PEM files). With ``ca``, peers must present a
    certificate signed by it."""

    cert: Path
    key: Path
    ca: Path | None = None


@dataclass(frozen=True)
class AllowedCaller:
    """A calling AE title allowed to send; with ``host``, only from that address."""

    ae_title: str
    host: str | None = None


@dataclass(frozen=True)
class DestinationSettings:
    """A downstream node: its AE title, address, the calling AE title we use, optional TLS, and
    how many associations the node opens to it at once (shared by every worker: deid.sender)."""

    ae_title: str
    host: str
    port: int
    calling_ae_title: str = ""
    tls: TlsFiles | None = None
    max_associations: int = 1

    @property
    def name(self) -> str:
        """``AET@host:port``: names the destination in the spool and in the records."""
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class StowDestinationSettings:
    """A DICOMweb destination (STOW-RS): its root URL, optional TLS files (``ca`` signs its
    certificate; ``cert``/``key`` if it asks for ours), one credentials file (a bearer token or
    ``user:password``; the file's path is in the settings, never its content) and how many
    requests the node sends to it at once."""

    url: str
    tls: TlsFiles | None = None
    token_file: Path | None = None
    basic_auth_file: Path | None = None
    max_requests: int = 1

    @property
    def name(self) -> str:
        """The URL: names the destination in the spool and in the records."""
        return self.url

    @property
    def max_associations(self) -> int:
        """What the node's sender reads: that many sending threads (one request each)."""
        return self.max_requests


#: the name of an output folder destination in the spool and the records (a pull's journal too)
FOLDER_DESTINATION = "folder"


@dataclass(frozen=True)
class FolderDestinationSettings:
    """An output folder as a destination: each released object written there (atomically, on
    disk before it counts as delivered) at the path `deid run` gives it
    (``<PatientID>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm``, released values)."""

    path: Path

    @property
    def name(self) -> str:
        """``folder``: names the destination in the spool and in the records (one per node)."""
        return FOLDER_DESTINATION

    @property
    def max_associations(self) -> int:
        """What the node's sender reads: one writing thread."""
        return 1


Destination = DestinationSettings | StowDestinationSettings | FolderDestinationSettings


@dataclass(frozen=True)
class RetrySettings:
    """Backoff of forwarding retries: first delay, doubled per attempt up to the maximum (s)."""

    first_delay: float = 2.0
    max_delay: float = 300.0


@dataclass(frozen=True)
class ServeSettings:
    """Everything `deid serve` needs; built by :func:`load_settings`, validated on construction."""

    data: Path
    key_file: Path
    allow: tuple[AllowedCaller, ...]
    destinations: tuple[Destination, ...]
    ae_title: str = "DEID"
    host: str = "0.0.0.0"
    port: int = 11112
    max_associations: int = 10
    # connections that have not associated yet: from one address, and from unknown addresses in
    # all; each is cut after handshake_timeout seconds (deid.intake.guard)
    max_unassociated_per_address: int = 4
    max_unassociated: int = 16
    handshake_timeout: float = 5.0
    max_pdu_size: int = MAX_PDU_DEFAULT  # the largest PDU we receive (bytes; never unlimited)
    profile: str = "vghtpe"
    lookup: Path | None = None
    deny_list: Path | None = None  # names replaced in kept free text, added to the profile's own
    workers: int = 2
    # how far below the receiver the workers run (nice): a sending peer is answered first
    worker_nice: int = 10
    status_host: str = "127.0.0.1"
    status_port: int = 0  # 0: no HTTP status server
    tls: TlsFiles | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    min_free_mb: int = 256  # below this free space the receiver answers out-of-resources
    forward_timeout: float = 30.0
    debug: bool = False  # tracebacks of internal errors to records/debug/ (mode 0600), never the log

    def __post_init__(self) -> None:
        _check_ae_title("ae_title", self.ae_title)
        _check_port("port", self.port, allow_zero=True)
        _check_port("status_port", self.status_port, allow_zero=True)
        if not self.allow:
            raise UsageError(
                "allow: at least one calling AE title must be allowed to send "
                "(YAML 'allow', DEID_SERVE_ALLOW or --allow-aet)"
            )
        if not self.destinations:
            raise UsageError(
                "destinations: at least one destination is needed "
                "(YAML 'destinations', DEID_SERVE_FORWARD or --forward AET@HOST:PORT)"
            )
        names = [d.name for d in self.destinations]
        if names.count(FOLDER_DESTINATION) > 1:
            raise UsageError("destinations: one output folder per node")
        if len(set(names)) != len(names):
            raise UsageError("destinations: the same destination is listed twice")
        for destination in self.destinations:
            if isinstance(destination, FolderDestinationSettings):
                _check_apart(destination.path, self.data)
        for name, value, low in (
            ("max_associations", self.max_associations, 1),
            ("max_unassociated_per_address", self.max_unassociated_per_address, 1),
            ("max_unassociated", self.max_unassociated, 1),
            ("workers", self.workers, 1),
            ("min_free_mb", self.min_free_mb, 0),
        ):
            if value < low:
                raise UsageError(f"{name}: must be at least {low} (got {value})")
        if not 0 <= self.worker_nice <= 19:
            raise UsageError(
                "worker_nice: how far below the receiver the workers run, from 0 (as the "
                f"receiver) to 19 (got {self.worker_nice})"
            )
        if self.retry.first_delay <= 0 or self.retry.max_delay < self.retry.first_delay:
            raise UsageError("retry: first_delay must be > 0 and max_delay >= first_delay")
        if self.forward_timeout <= 0:
            raise UsageError("forward_timeout: must be > 0 seconds")
        if not 0 < self.handshake_timeout <= 60:
            raise UsageError(
                f"handshake_timeout: seconds from connecting to associating, more than 0 and at "
                f"most 60 (got {self.handshake_timeout})"
            )
        low, high = MAX_PDU_RANGE
        if not low <= self.max_pdu_size <= high:
            raise UsageError(
                f"max_pdu_size: bytes, from {low} to {high} (got {self.max_pdu_size}; "
                "0, unlimited, is not allowed)"
            )

    @property
    def spool(self) -> Path:
        return self.data / "spool"

    @property
    def outgoing(self) -> Path:
        return self.data / "outgoing"

    @property
    def quarantine(self) -> Path:
        return self.data / "quarantine"

    @property
    def records(self) -> Path:
        return self.data / "records"


# -- parsing -----------------------------------------------------------------------------------


def _check_ae_title(key: str, value: object) -> str:
    if not isinstance(value, str) or not _AE_TITLE.match(value) or not value.strip():
        raise UsageError(f"{key}: an AE title is 1 to 16 printable characters without a backslash")
    return value.strip()


def _check_port(key: str, value: object, *, allow_zero: bool = False) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (0 if allow_zero else 1) <= value <= 65535
    ):
        raise UsageError(
            f"{key}: a TCP port is a number from {0 if allow_zero else 1} to 65535 (got {value!r})"
        )
    return value


def _int(key: str, value: object) -> int:
    if isinstance(value, bool):
        raise UsageError(f"{key}: expected a whole number (got {value!r})")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise UsageError(f"{key}: expected a whole number (got {value!r})")


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in ("true", "yes", "1", "on", "false", "no", "0", "off", ""):
        return word in ("true", "yes", "1", "on")
    raise UsageError(f"{key}: expected true or false (got {value!r})")


def _float(key: str, value: object) -> float:
    if isinstance(value, bool):
        raise UsageError(f"{key}: expected a number of seconds (got {value!r})")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"{key}: expected a number of seconds (got {value!r})") from None


def _str(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{key}: expected a non-empty text value")
    return value.strip()


def _path(key: str, value: object, base: Path) -> Path:
    text = _str(key, value)
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path)


def parse_caller(key: str, value: object) -> AllowedCaller:
    """``AET`` or ``AET@HOST`` (text), or a mapping ``{ae_title, host}``."""
    if isinstance(value, Mapping):
        _only(key, value, {"ae_title", "host"})
        host = value.get("host")
        return AllowedCaller(
            _check_ae_title(f"{key}.ae_title", value.get("ae_title")),
            _str(f"{key}.host", host) if host is not None else None,
        )
    text = _str(key, value)
    title, _, host = text.partition("@")
    return AllowedCaller(_check_ae_title(key, title), host.strip() or None)


def _check_apart(folder: Path, data: Path) -> None:
    """The output folder and the data folder (spool, quarantine, records: a PHI zone) are
    neither the same nor inside one another."""
    one, other = folder.expanduser().resolve(), data.expanduser().resolve()
    if one == other or one.is_relative_to(other) or other.is_relative_to(one):
        raise UsageError(f"destinations: the output folder {folder} and the data folder {data} "
                         "must not be inside one another (the data folder holds the spool, the "
                         "quarantine and the records)")


def parse_destination(key: str, value: object, base: Path) -> Destination:
    """``AET@HOST:PORT`` or ``https://host/dicom-web`` (text), or a mapping ``{ae_title, host,
    port, calling_ae_title, tls, max_associations}``, ``{stow, tls, token_file,
    basic_auth_file, max_requests}`` or ``{folder}``."""
    if isinstance(value, Mapping) and "stow" in value:
        return parse_stow(key, value, base)
    if isinstance(value, Mapping) and "folder" in value:
        _only(key, value, {"folder"})
        path = _path(f"{key}.folder", value["folder"], base)
        if path.exists() and not path.is_dir():
            raise UsageError(f"{key}.folder: {path}: not a folder")
        return FolderDestinationSettings(path)
    if isinstance(value, str) and re.match(r"\s*https?://", value):
        return parse_stow(key, {"stow": value}, base)
    if isinstance(value, Mapping):
        _only(key, value, {"ae_title", "host", "port", "calling_ae_title", "tls", "max_associations"})
        for required in ("ae_title", "host", "port"):
            if required not in value:
                raise UsageError(f"{key}.{required}: missing")
        tls = _tls(f"{key}.tls", value["tls"], base, server=False) if value.get("tls") else None
        calling = value.get("calling_ae_title")
        associations = _int(f"{key}.max_associations", value.get("max_associations", 1))
        if not 1 <= associations <= 64:
            raise UsageError(f"{key}.max_associations: between 1 and 64 (got {associations})")
        return DestinationSettings(
            _check_ae_title(f"{key}.ae_title", value["ae_title"]),
            _str(f"{key}.host", value["host"]),
            _check_port(f"{key}.port", _int(f"{key}.port", value["port"])),
            _check_ae_title(f"{key}.calling_ae_title", calling) if calling is not None else "",
            tls,
            associations,
        )
    text = _str(key, value)
    match = re.fullmatch(r"([^@]+)@(.+):(\d+)", text)
    if not match:
        raise UsageError(f"{key}: a destination is written AET@HOST:PORT (got {text!r})")
    return DestinationSettings(
        _check_ae_title(key, match.group(1)), match.group(2), _check_port(key, int(match.group(3)))
    )


def parse_stow(key: str, value: Mapping[str, Any], base: Path) -> StowDestinationSettings:
    """A STOW-RS destination: ``stow`` is the DICOMweb root (http or https, no credentials or
    query in it); credentials come from ``token_file`` or ``basic_auth_file`` (owner-only files),
    and go only over https (or to this machine)."""
    from urllib.parse import urlsplit

    from deid.stow import may_send_credentials

    _only(key, value, {"stow", "tls", "token_file", "basic_auth_file", "max_requests"})
    url = _str(f"{key}.stow", value["stow"]).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{key}.stow: a DICOMweb root URL, http(s)://host[:port]/path")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UsageError(f"{key}.stow: the URL carries no user, password or query; put "
                         "credentials in token_file or basic_auth_file")
    if parts.path.rstrip("/").endswith("/studies"):
        raise UsageError(f"{key}.stow: give the DICOMweb root (without /studies): deid adds it")
    tls = _tls(f"{key}.tls", value["tls"], base, server=False) if value.get("tls") else None
    if tls is not None and parts.scheme != "https":
        raise UsageError(f"{key}.tls: TLS files go with an https URL")
    files = {}
    for name in ("token_file", "basic_auth_file"):
        if value.get(name) not in (None, ""):
            files[name] = _secret_file(f"{key}.{name}", _path(f"{key}.{name}", value[name], base))
    if len(files) > 1:
        raise UsageError(f"{key}: token_file and basic_auth_file: one or the other")
    if files and not may_send_credentials(url):
        raise UsageError(f"{key}.stow: credentials are sent only over https (or to this machine)")
    count = _int(f"{key}.max_requests", value.get("max_requests", 1))
    if not 1 <= count <= 64:
        raise UsageError(f"{key}.max_requests: between 1 and 64 (got {count})")
    return StowDestinationSettings(url, tls, files.get("token_file"), files.get("basic_auth_file"),
                                   count)


def _secret_file(key: str, path: Path) -> Path:
    """A credentials file: present, and readable by its owner only (as the key file)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        raise UsageError(f"{key}: {path}: no such file") from None
    if not path.is_file():
        raise UsageError(f"{key}: {path}: not a file")
    if mode & 0o077:
        raise UsageError(f"{key}: {path}: readable by others; chmod 600 it (it holds a secret)")
    return path


def _tls(key: str, value: object, base: Path, *, server: bool) -> TlsFiles:
    if not isinstance(value, Mapping):
        raise UsageError(f"{key}: expected a mapping with cert, key and (optionally) ca")
    _only(key, value, {"cert", "key", "ca"})
    given = {k: v for k, v in value.items() if v not in (None, "")}
    if not given:
        raise UsageError(f"{key}: empty")
    if server and ("cert" not in given or "key" not in given):
        raise UsageError(f"{key}: a TLS server needs both cert and key")
    if ("cert" in given) != ("key" in given):
        raise UsageError(f"{key}: cert and key go together")
    paths = {k: _path(f"{key}.{k}", v, base) for k, v in given.items()}
    for name, path in paths.items():
        if not path.is_file():
            raise UsageError(f"{key}.{name}: {path}: no such file")
    return TlsFiles(paths.get("cert"), paths.get("key"), paths.get("ca"))  # type: ignore[arg-type]


def _only(key: str, value: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        prefix = f"{key}." if key else ""
        raise UsageError(
            f"{prefix}{unknown[0]}: unknown setting (known: {', '.join(sorted(allowed))})"
        )


def _set(raw: dict[str, Any], dotted: str, value: object) -> None:
    head, _, tail = dotted.partition(".")
    if tail:
        sub = raw.get(head)
        if not isinstance(sub, dict):
            sub = raw[head] = {}
        sub[tail] = value
    else:
        raw[head] = value


def read_config_file(path: Path) -> dict[str, Any]:
    """The YAML mapping of a config file (empty when the file is empty)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--config: {path}: cannot be read ({exc.__class__.__name__})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"--config: {path}: not valid YAML{where}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UsageError(f"--config: {path}: the top level must be a mapping of settings")
    return raw


def environment_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from ``DEID_SERVE_*`` variables (and ``DEID_KEY_FILE``); unknown names refused."""
    raw: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        if name not in ENV_KEYS:
            raise UsageError(
                f"{name}: unknown environment setting (known: {', '.join(sorted(ENV_KEYS))})"
            )
        key = ENV_KEYS[name]
        if key.startswith("tls.") and value:
            _set(raw, key, str(Path(value).expanduser().resolve()))
        elif key in ("allow", "destinations"):
            _set(raw, key, [part.strip() for part in value.split(",") if part.strip()])
        else:
            _set(raw, key, value)
    if "key_file" not in raw and environ.get("DEID_KEY_FILE"):
        raw["key_file"] = environ["DEID_KEY_FILE"]
    return raw


def build_settings(raw: Mapping[str, Any], base: Path) -> ServeSettings:
    """Validate a merged raw mapping (relative paths are taken from ``base``)."""
    _only("", raw, _TOP_KEYS)
    for required in ("data", "key_file"):
        if raw.get(required) in (None, ""):
            flag = "--" + required.replace("_", "-")
            raise UsageError(
                f"{required}: missing (YAML '{required}', {ENV_PREFIX}{required.upper()} or {flag})"
            )
    allow = raw.get("allow") or []
    destinations = raw.get("destinations") or []
    if not isinstance(allow, list):
        raise UsageError("allow: expected a list of calling AE titles (AET or AET@HOST)")
    if not isinstance(destinations, list):
        raise UsageError("destinations: expected a list of destinations")
    retry = raw.get("retry") or {}
    if not isinstance(retry, Mapping):
        raise UsageError("retry: expected a mapping with first_delay and max_delay")
    _only("retry", retry, {"first_delay", "max_delay"})
    defaults = RetrySettings()
    values: dict[str, Any] = {
        "data": _path("data", raw["data"], base),
        "key_file": _path("key_file", raw["key_file"], base),
        "allow": tuple(parse_caller(f"allow[{i}]", v) for i, v in enumerate(allow)),
        "destinations": tuple(
            parse_destination(f"destinations[{i}]", v, base) for i, v in enumerate(destinations)
        ),
        "retry": RetrySettings(
            _float("retry.first_delay", retry.get("first_delay", defaults.first_delay)),
            _float("retry.max_delay", retry.get("max_delay", defaults.max_delay)),
        ),
    }
    if raw.get("ae_title") is not None:
        values["ae_title"] = _check_ae_title("ae_title", raw["ae_title"])
    for key in ("host", "profile", "status_host"):
        if raw.get(key) is not None:
            values[key] = _str(key, raw[key])
    for key in ("port", "status_port", "max_associations", "workers", "worker_nice",
                "min_free_mb", "max_unassociated", "max_unassociated_per_address", "max_pdu_size"):
        if raw.get(key) is not None:
            values[key] = _int(key, raw[key])
    if raw.get("debug") is not None:
        values["debug"] = _bool("debug", raw["debug"])
    for key in ("forward_timeout", "handshake_timeout"):
        if raw.get(key) is not None:
            values[key] = _float(key, raw[key])
    if raw.get("lookup"):
        values["lookup"] = _path("lookup", raw["lookup"], base)
    if raw.get("deny_list"):
        values["deny_list"] = _path("deny_list", raw["deny_list"], base)
    tls = raw.get("tls")
    if tls and any(
        v not in (None, "") for v in (tls.values() if isinstance(tls, Mapping) else [tls])
    ):
        values["tls"] = _tls("tls", tls, base, server=True)
    settings = ServeSettings(**values)
    # the calling AE title used towards destinations defaults to the node's own
    fixed = tuple(
        replace(d, calling_ae_title=settings.ae_title)
        if isinstance(d, DestinationSettings) and not d.calling_ae_title else d
        for d in settings.destinations
    )
    return replace(settings, destinations=fixed)


def load_settings(
    config: Path | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServeSettings:
    """Settings from the YAML file, then the environment, then command-line flags (last wins)."""
    raw: dict[str, Any] = {}
    base = Path.cwd()
    if config is not None:
        raw.update(read_config_file(config))
        base = config.resolve().parent
    env = environment_overrides(os.environ if environ is None else environ)
    for key, value in env.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    for key, value in (flags or {}).items():
        if value is None or value == []:
            continue
        if key.startswith("tls."):
            _set(raw, key, str(Path(str(value)).expanduser().resolve()))
        else:
            raw[key] = value
    # paths from the environment and flags are relative to the working folder, not the config file
    for key in ("data", "key_file", "lookup", "deny_list"):
        if key in env or (flags or {}).get(key) not in (None, []):
            if raw.get(key) not in (None, ""):
                raw[key] = str(Path(str(raw[key])).expanduser().resolve())
    return build_settings(raw, base)
