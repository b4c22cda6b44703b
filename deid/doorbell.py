"""The node's doorbell: the receiver rings it when it queues an object, and an idle worker that
waits on it wakes at once, not at its next look at the spool.

A node's workers look for new items every ``POLL_SECONDS`` (deid.service) when they have none.
Each object that arrives while they wait so waited up to that long: the first objects of every
study a modality sends (a worker of an idle node starts on them up to 50 ms late), and every
object of a slow sender.  The doorbell is a pipe: the receiver writes a byte per object queued
(never blocking: a full pipe already wakes whoever waits), each waiting worker wakes when one is
there, empties the pipe and looks at the spool.  Emptied before the look, a ring after the look
wakes the next wait.  Nothing waits on the doorbell alone: a wait still ends after its timeout
(items whose retry is due, a stop), and a killed worker or receiver leaves nothing wedged.
"""

from __future__ import annotations

import os
import select
from typing import Any


class Doorbell:
    """One pipe shared by the node's main process (which rings) and its workers (which wait)."""

    def __init__(self, context: Any) -> None:
        """``context``: the multiprocessing context the workers are started with (the pipe's ends
        go to them as their start arguments)."""
        self._waits, self._rings = context.Pipe(duplex=False)
        os.set_blocking(self._rings.fileno(), False)

    def ring(self) -> None:
        """An object was queued: wake a waiting worker (never blocks, never raises)."""
        try:
            os.write(self._rings.fileno(), b"\x01")
        except OSError:  # full (a worker will wake anyway), or closed (the node is stopping)
            pass

    def wait(self, timeout: float) -> bool:
        """Wait until the doorbell rings or ``timeout`` seconds pass; whether it rang.  Rings
        heard are emptied out: the caller looks at the spool next."""
        fd = self._waits.fileno()
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
        except (OSError, ValueError):  # closed: as a timeout
            return False
        if not ready:
            return False
        os.set_blocking(fd, False)  # (another worker may empty it first)
        try:
            while len(os.read(fd, 4096)) == 4096:
                pass
        except OSError:  # emptied by another worker (BlockingIOError), or closed
            pass
        return True
