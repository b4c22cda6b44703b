"""Loaded at start-up by every Python process whose PYTHONPATH holds this folder (a node started by
a test, and the worker processes it spawns). With ``DEID_TEST_POISON=TEXT``: a process that
de-identifies an object whose bytes hold TEXT kills itself (SIGKILL), as a crash in a C decoder
would."""

from __future__ import annotations

import os

_POISON = os.environ.get("DEID_TEST_POISON", "").encode()

if _POISON:
    import signal

    from deid import pipeline

    _deidentify_bytes = pipeline.Pipeline.deidentify_bytes

    def _dies_on_the_poison(self: pipeline.Pipeline, data: bytes):  # type: ignore[no-untyped-def]
        if _POISON in data:
            os.kill(os.getpid(), signal.SIGKILL)
        return _deidentify_bytes(self, data)

    pipeline.Pipeline.deidentify_bytes = _dies_on_the_poison  # type: ignore[method-assign]
