"""pynetdicom associations that wait for events instead of polling.

pynetdicom 3.0 (pinned) polls: an association's DUL thread sleeps 1 ms whenever a loop of its
found nothing to do (data to read, a primitive to send), and its association thread, after each
1 ms sleep, only glances at the queue of complete messages.  On a link where every object waits
for the answer to the one before (``storescu`` to the receiver, the forwarder to a PACS) each of
these naps is paid once per object, and an idle association still wakes 2,000 times a second.
pynetdicom also reads a PDU 4 KiB per ``recv``, and its standard logging handlers, bound to every
association, copy each received data set to say that one is present.

:func:`wait_for_events` changes an association so, and nothing else:

- its DUL thread waits in ``select`` on the connection and on a wake-up socket that every
  primitive queued for it (a release, an abort, pynetdicom's own messages) pokes, for at most
  ``WAIT`` seconds, then loops as pynetdicom's does (:class:`WaitingSocket`);
- its association thread, finding no message, waits up to ``WAIT`` seconds for one, or for
  anything the DUL hands up to it (a release or abort request), or for pynetdicom's own sending
  to pause it, instead of returning at once;
- a PDU is read with as few ``recv_into`` calls as the network allows;
- pynetdicom's standard logging handlers are unbound (they log nothing deid shows, and their text
  quotes UIDs).

Timers, states and every decision stay pynetdicom's: only waits and copies are shorter.  What
nothing wakes (the ARTIM timer, a kill from another thread) is seen within ``WAIT`` seconds.
With a pynetdicom other than 3.0 nothing is changed (``SUPPORTED``): slower, not wrong.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import pynetdicom
from pynetdicom import evt
from pynetdicom._handlers import (
    standard_dimse_recv_handler,
    standard_dimse_sent_handler,
    standard_pdu_recv_handler,
    standard_pdu_sent_handler,
)
from pynetdicom.transport import AssociationSocket

#: the pynetdicom whose internals this module was written against (tested); others are left alone
SUPPORTED = pynetdicom.__version__.startswith("3.0.")
#: the longest a thread waits before it looks again at what nothing wakes it for (seconds)
WAIT = 0.05
#: the DUL's pause before it picks up a primitive it was woken for, and pynetdicom's own
LOOP_DELAY, PYNETDICOM_LOOP_DELAY = 0.0001, 0.001

_STANDARD_HANDLERS = (
    (evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
    (evt.EVT_DIMSE_SENT, standard_dimse_sent_handler),
    (evt.EVT_PDU_RECV, standard_pdu_recv_handler),
    (evt.EVT_PDU_SENT, standard_pdu_sent_handler),
)


def wait_for_events(association: Any) -> bool:
    """Make ``association`` (new, or established: its threads may run) wait for events rather
    than poll (module docstring); False, changing nothing, under another pynetdicom."""
    if not SUPPORTED:
        return False
    dul, dimse = association.dul, association.dimse
    for event, handler in _STANDARD_HANDLERS:
        association.unbind(event, handler)
    arrived = threading.Event()  # "something for the association thread"
    _after_put(dimse.msg_queue, arrived.set)
    _after_put(dul.to_user_queue, arrived.set)
    # pynetdicom's own send_*() and release() pause the association thread at the top of its
    # loop (clear this checkpoint, then wait until the thread is there): it must not be waiting
    checkpoint = association._reactor_checkpoint
    pause = checkpoint.clear

    def pause_now() -> None:
        pause()
        arrived.set()

    checkpoint.clear = pause_now
    WaitingSocket.adopt(dul.socket)
    _after_put(dul.to_provider_queue, dul.socket.poke)
    dul._run_loop_delay = LOOP_DELAY
    get_msg = dimse.get_msg  # pynetdicom's, or deid.cstore.keep_responses'

    def waiting_get_msg(block: bool = False) -> Any:
        """The association thread's look for a message: waits (up to ``WAIT``) when none."""
        if block:
            return get_msg(block=True)
        found = get_msg(block=False)
        if found[1] is not None:
            return found
        arrived.wait(WAIT)
        arrived.clear()  # (the caller looks at every queue again after this)
        return get_msg(block=False)

    dimse.get_msg = waiting_get_msg
    kill = association.kill  # how every association ends (released, aborted, rejected, timed out)

    def kill_then_close() -> None:
        kill()
        if not dul.is_alive():
            dul.socket.close_wake()  # (its DUL, the only one waiting on them, has stopped)

    association.kill = kill_then_close
    return True


def _after_put(queue: Any, then: Callable[[], None]) -> None:
    """Call ``then`` after each item put on ``queue`` (its own ``put``, wrapped)."""
    put = queue.put

    def put_then(item: Any, block: bool = True, timeout: float | None = None) -> None:
        put(item, block, timeout)
        then()

    queue.put = put_then


class WaitingSocket(AssociationSocket):
    """pynetdicom's association socket, whose ``ready`` waits for data or a poke, and whose
    ``recv`` reads into one buffer."""

    _wake: socket.socket
    _waker: socket.socket

    @classmethod
    def adopt(cls, sock: AssociationSocket) -> None:
        """Make ``sock`` (pynetdicom's, perhaps in use) one of these."""
        sock._wake, sock._waker = socket.socketpair()  # (before the class: ready uses them)
        for end in (sock._wake, sock._waker):
            end.setblocking(False)
        sock.__class__ = cls

    def poke(self) -> None:
        """Wake the DUL thread (a primitive was queued for it)."""
        try:
            self._waker.send(b"\x00")
        except OSError:
            pass  # already poked (buffer full), or closed with the association

    @property
    def ready(self) -> bool:
        """True when data has arrived; otherwise waits up to ``WAIT`` for data or a poke (not
        when a primitive is already queued, nor in Sta13, where pynetdicom closes the
        connection once nothing more comes)."""
        sock = self.socket
        if sock is None or self._is_connected is False:
            time.sleep(PYNETDICOM_LOOP_DELAY)  # closed: the DUL loops until it is stopped, as slowly
            return False  # as pynetdicom's
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # (TLS holds decrypted data that select cannot see)
        dul = self.assoc.dul
        busy = dul.to_provider_queue.qsize() or dul.state_machine.current_state == "Sta13"
        try:
            readable, _, _ = select.select([sock, self._wake], [], [], 0 if busy else WAIT)
        except (OSError, TimeoutError, ValueError):
            self.event_queue.put("Evt17")  # as pynetdicom: the transport connection closed
            return False
        if self._wake in readable:
            try:
                self._wake.recv(4096)
            except OSError:
                pass
        return sock in readable

    def recv(self, nr_bytes: int) -> bytearray:
        """``nr_bytes`` from the connection (fewer only when it closed first), as pynetdicom's
        ``recv`` but read into one buffer."""
        buffer = bytearray(nr_bytes)
        view = memoryview(buffer)
        got = 0
        assert self.socket is not None
        while got < nr_bytes:
            count = self.socket.recv_into(view[got:])
            if not count:
                break
            got += count
        view.release()
        if got < nr_bytes:
            del buffer[got:]
        return buffer

    def close(self) -> None:
        super().close()
        self.close_wake()

    def close_wake(self) -> None:
        """Close the wake-up socket pair (again: nothing)."""
        for end in (self._wake, self._waker):
            end.close()
