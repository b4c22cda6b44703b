"""A TLS terminator in front of a local HTTP server, as a reverse proxy puts one before an archive:
it decrypts on 127.0.0.1 and relays the bytes unchanged to the server's port and back.

Debian's Orthanc 1.10.1 crashes at its first HTTPS request (``SslEnabled``), so the HTTPS test of
STOW-RS talks TLS to this relay and HTTP behind it to the real Orthanc; every answer is Orthanc's.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

from servers import free_port


class TlsRelay:
    """Listens with TLS (``cert``/``key``) on a free port of 127.0.0.1; relays to ``backend``."""

    def __init__(self, backend: int, cert: Path, key: Path) -> None:
        self.backend = backend
        self.port = free_port()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(cert), str(key))
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TlsRelay:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            client.settimeout(30)
            secure = self.context.wrap_socket(client, server_side=True)
            backend = socket.create_connection(("127.0.0.1", self.backend), timeout=30)
        except (OSError, ssl.SSLError):
            client.close()  # a handshake the client gave up (an untrusted certificate)
            return
        threading.Thread(target=_pump, args=(backend, secure), daemon=True).start()
        _pump(secure, backend)


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy until either side closes, then close both."""
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for side in (source, target):
            try:
                side.close()
            except OSError:
                pass
