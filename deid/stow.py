"""STOW-RS of released Part 10 objects (bytes in memory) to DICOMweb destinations.

The counterpart of :mod:`deid.forward` for a destination written ``stow: https://host/dicom-web``:
each object goes in its own request (``POST {url}/studies``, one ``application/dicom`` part, its
bytes as released), with dicomweb-client's multipart encoding and answer parsing over one
``requests`` session per destination (kept alive, re-made after a refusal of the credentials).
The answer maps to the forwarder's three outcomes (:func:`classify`):

* done: 200 or 202 whose Referenced SOP Sequence lists the object (or that has no body at all);
* retry: no answer (connection refused or lost, timeouts, TLS failures), 5xx, 408, 429; 401, 403,
  404 and 405 too (the node's URL or credentials are wrong, not the object); and a failure reason
  0xA7xx (out of resources) whatever the status;
* failed: 409 and every other 4xx (the server refused this object: quarantine
  ``forward-rejected``), and a success answer that does not list the object as stored.

Credentials are read from files (a bearer token, or ``user:password`` for basic auth), never from
the node's YAML values, and are sent only over HTTPS (or to this machine). Nothing here logs a
URL, a header or an answer's body: details are fixed text with status codes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from deid.forward import DONE, FAILED, RETRY, SendResult
from deid.logs import get_logger

if TYPE_CHECKING:
    import requests

#: Slowest transfer rate (bytes/s) a large object is given time for, on top of the timeout.
_SLOWEST_RATE = 1_000_000
#: HTTP statuses that say "not now" or "not this node's request as configured": retry.
_RETRY_STATUSES = frozenset({401, 403, 404, 405, 407, 408, 421, 425, 429})
_FAILED_SOP_SEQUENCE = 0x00081198
_REFERENCED_SOP_SEQUENCE = 0x00081199

_log = get_logger("deid.stow")


@dataclass(frozen=True)
class StowDestination:
    """A DICOMweb service: its root ``url`` (STOW-RS at ``{url}/studies``), the CA bundle that
    signs its certificate (default: the system's trust store), our client certificate and key
    if it asks for one, and one credentials file: ``token_file`` (a bearer token) or
    ``basic_auth_file`` (``user:password``)."""

    url: str
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    token_file: Path | None = None
    basic_auth_file: Path | None = None

    def __str__(self) -> str:
        return self.url


def stow_destination(setting: Any) -> StowDestination:
    """The forwarder's view of a configured STOW-RS destination (deid.settings)."""
    tls = setting.tls
    return StowDestination(
        setting.url,
        ca=tls.ca if tls is not None else None,
        cert=tls.cert if tls is not None else None,
        key=tls.key if tls is not None else None,
        token_file=setting.token_file,
        basic_auth_file=setting.basic_auth_file,
    )


class CredentialsError(Exception):
    """A credentials file that cannot be used (the message names the file's role, no content)."""


def read_credentials(destination: StowDestination) -> Any:
    """The ``requests`` auth of ``destination`` from its credentials file (None without one)."""
    import requests

    for role, path in (("token_file", destination.token_file),
                       ("basic_auth_file", destination.basic_auth_file)):
        if path is None:
            continue
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            raise CredentialsError(f"{role} cannot be read") from None
        line = text.splitlines()[0].strip() if text else ""
        if role == "token_file":
            if not line:
                raise CredentialsError("token_file is empty")
            return _Bearer(line)
        user, colon, password = line.partition(":")
        if not colon or not user:
            raise CredentialsError("basic_auth_file holds no user:password line")
        return requests.auth.HTTPBasicAuth(user, password)
    return None


class _Bearer:
    """``Authorization: Bearer <token>`` on every request (a requests auth callable)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:  # never the token
        return "_Bearer(...)"


def may_send_credentials(url: str) -> bool:
    """Credentials go over HTTPS, or over plain HTTP only to this machine (loopback)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def classify(status: int | None, failure_reason: int | None = None) -> str:
    """The outcome of a STOW-RS answer: HTTP ``status`` (None: no answer) and the object's
    Failure Reason (0008,1197) when the answer lists it as failed."""
    if status is None:
        return RETRY
    if failure_reason is not None and 0xA700 <= failure_reason <= 0xA7FF:
        return RETRY  # out of resources: the same statuses as C-STORE
    if status in (200, 202):
        return FAILED if failure_reason is not None else DONE
    if status >= 500 or status in _RETRY_STATUSES:
        return RETRY
    return FAILED


class StowForwarder:
    """Sends released objects to DICOMweb destinations by STOW-RS, one object per request.

    ``timeout`` bounds connecting and the wait for the answer (a large object gets one more
    second per MB). One ``requests`` session per destination, kept alive between sends and made
    again after a refusal of the credentials (so a renewed token file is read); a session is not
    shared between threads: make one forwarder per sending thread (deid.sender does).
    """

    def __init__(self, destinations: list[StowDestination], *, timeout: float = 30) -> None:
        self._timeout = timeout
        self._sessions: dict[StowDestination, requests.Session] = {}
        self.destinations = list(destinations)

    def send_bytes(self, destination: StowDestination, data: bytes) -> SendResult:
        """POST one released Part 10 object (its bytes, unchanged) to ``{url}/studies``."""
        import requests
        from pydicom import dcmread
        from pydicom.errors import InvalidDicomError

        try:  # the file meta only (the data set stops at its first element)
            meta = dcmread(BytesIO(data), stop_before_pixels=True, specific_tags=[0x00080016]).file_meta
            sop_instance = str(meta.MediaStorageSOPInstanceUID).strip()
        except (InvalidDicomError, AttributeError, ValueError, TypeError, EOFError, OSError):
            return SendResult(FAILED, None, "file is not a readable DICOM Part 10 file")
        try:
            client = self._client(destination, len(data))
        except CredentialsError as error:
            return SendResult(RETRY, None, f"credentials cannot be used ({error})")
        except (OSError, ValueError) as error:
            return SendResult(RETRY, None, f"STOW-RS client cannot be set up ({type(error).__name__})")
        from dicomweb_client.web import _Transaction

        status: int | None = 200
        try:
            answer = client._http_post_multipart_application_dicom(  # bytes as released
                client._get_studies_url(_Transaction.STORE), [data])
        except requests.HTTPError as error:
            response = error.response
            status = response.status_code if response is not None else None
            answer = _answer(response)
            if status in (401, 403):
                self._forget(destination)  # the credentials file is read again at the next send
        except requests.exceptions.SSLError:
            return SendResult(RETRY, None, "TLS handshake with destination failed (check its CA file)")
        except requests.Timeout:
            return SendResult(RETRY, None, "no answer from destination within the timeout")
        except requests.ConnectionError:
            return SendResult(RETRY, None, "cannot connect to destination (or the connection was lost)")
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return SendResult(RETRY, None, "destination's answer cannot be read")
        return _result(status, answer, sop_instance)

    def close(self) -> None:
        """Close every session (their kept-alive connections)."""
        for destination in list(self._sessions):
            self._forget(destination)

    def _forget(self, destination: StowDestination) -> None:
        session = self._sessions.pop(destination, None)
        if session is not None:
            session.close()

    def __enter__(self) -> StowForwarder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _client(self, destination: StowDestination, size: int) -> Any:
        """A DICOMweb client over the session to ``destination`` (made on first use)."""
        import requests
        from dicomweb_client import DICOMwebClient
        from dicomweb_client.session_utils import add_certs_to_session, create_session_from_auth

        session = self._sessions.get(destination)
        if session is None:
            auth = read_credentials(destination)
            if auth is not None and not may_send_credentials(destination.url):
                raise CredentialsError("credentials go only over https")
            session = create_session_from_auth(auth) if auth is not None else _plain_session()
            if destination.ca is not None:
                add_certs_to_session(session, ca_bundle=str(destination.ca))
                # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's CA file:
                # not ours (the proxies of the environment still apply)
                session.trust_env = False
                session.proxies.update(requests.utils.get_environ_proxies(destination.url))
            if destination.cert is not None:
                session.cert = (str(destination.cert), str(destination.key)) if destination.key \
                    else str(destination.cert)
            session.headers["Accept"] = "application/dicom+json"
            self._sessions[destination] = session
        read = self._timeout + size / _SLOWEST_RATE
        # one request per object, the body whole (Content-Length, no chunked transfer encoding)
        client = DICOMwebClient(destination.url, session=session, timeout=(self._timeout, read),
                                chunk_size=max(size + (1 << 20), 1 << 20))
        client.set_http_retry_params(retry=False)  # the spool retries, with its backoff
        return client


def _plain_session() -> Any:
    from dicomweb_client.session_utils import create_session

    return create_session()


def _answer(response: Any) -> Any:
    """The Store Instances Response in an answer (DICOM JSON), or None."""
    if response is None or not response.content:
        return None
    from pydicom import Dataset

    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
    if kind not in ("application/dicom+json", "application/json", ""):  # Orthanc's 409: none
        return None
    try:
        body = response.json()
        if isinstance(body, list):
            body = body[0] if body else {}
        return Dataset.from_json(body)
    except (ValueError, TypeError, KeyError, IndexError):
        return None


def _listed(answer: Any, sequence: int, sop_instance: str) -> Any:
    """The item of ``sequence`` in ``answer`` that names ``sop_instance``, or None."""
    element = answer.get(sequence) if answer is not None else None
    for item in (element.value if element is not None and element.value else ()):
        if str(item.get("ReferencedSOPInstanceUID", "")).strip() == sop_instance:
            return item
    return None


def result_of(status: int | None, response: Any, sop_instance: str) -> SendResult:
    """The outcome of a STOW-RS ``response`` (a requests Response, None when none came) for the
    object whose SOP Instance UID is ``sop_instance``."""
    return _result(status, _answer(response), sop_instance)


def _result(status: int | None, answer: Any, sop_instance: str) -> SendResult:
    """The send's outcome from the HTTP status and the answer's entry for our object."""
    failed = _listed(answer, _FAILED_SOP_SEQUENCE, sop_instance)
    reason = failed.get("FailureReason") if failed is not None else None
    reason = int(reason) if reason is not None else None
    outcome = classify(status, reason)
    code = f"HTTP {status}" + (f", failure reason 0x{reason:04X}" if reason is not None else "")
    if outcome == DONE:
        has_body = answer is not None and (_REFERENCED_SOP_SEQUENCE in answer
                                           or _FAILED_SOP_SEQUENCE in answer)
        if has_body and _listed(answer, _REFERENCED_SOP_SEQUENCE, sop_instance) is None:
            detail = f"destination answered {code} without listing the object as stored"
            _log.warning("stow.unconfirmed", status=status, outcome=detail)
            return SendResult(FAILED, reason, detail)
        return SendResult(DONE, reason, f"stored ({code})")
    if outcome == RETRY:
        detail = f"destination failed for now ({code})"
        _log.warning("stow.deferred", status=status, outcome=detail)
        return SendResult(RETRY, reason, detail)
    detail = f"destination refused the object ({code})"
    _log.warning("stow.refused", status=status, outcome=detail)
    return SendResult(FAILED, reason, detail)


__all__ = [
    "CredentialsError",
    "StowDestination",
    "StowForwarder",
    "classify",
    "may_send_credentials",
    "read_credentials",
    "result_of",
    "stow_destination",
]
