"""Sealed envelopes: what crosses a Dask cluster for a run (file lists, outcomes), encrypted.

A task's argument (its source paths) and its result (outcomes, with the original identity the
re-identification map needs) travel as :class:`Sealed` bytes under AES-256-GCM with a sub-key of
the run's secret key, bound to the run id.  So the scheduler, the dashboard, Dask's logs (a failed
task's arguments are logged), a worker's spill files and a plain-TCP link only ever see ciphertext;
only the client and the workers, which hold the key in memory, can open them.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import types
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from deid.keys import SecretKey

PURPOSE = "dask-envelope"  # the sub-key's purpose (SecretKey.derive)
_NONCE = 12


@dataclass(frozen=True)
class Sealed:
    """Encrypted bytes; the repr says only their size (Dask logs and shows reprs)."""

    blob: bytes

    def __repr__(self) -> str:
        return f"Sealed({len(self.blob)} bytes)"


def _proxy(mapping: dict) -> types.MappingProxyType:
    return types.MappingProxyType(mapping)


def dumps(value: object) -> bytes:
    """Pickle ``value``; read-only mappings (a loaded profile's rules) as what they wrap."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = copyreg.dispatch_table.copy()
    pickler.dispatch_table[types.MappingProxyType] = lambda m: (_proxy, (dict(m),))
    pickler.dump(value)
    return buffer.getvalue()


def seal(key: SecretKey, run_id: str, value: object) -> Sealed:
    """``value`` pickled and encrypted for this run (a fresh nonce each time)."""
    nonce = os.urandom(_NONCE)
    return Sealed(nonce + AESGCM(key.derive(PURPOSE)).encrypt(nonce, dumps(value), run_id.encode()))


def unseal(key: SecretKey, run_id: str, sealed: Sealed) -> Any:
    """What :func:`seal` sealed for this run; ``InvalidTag`` when the key or run differ."""
    nonce, body = sealed.blob[:_NONCE], sealed.blob[_NONCE:]
    return pickle.loads(AESGCM(key.derive(PURPOSE)).decrypt(nonce, body, run_id.encode()))
