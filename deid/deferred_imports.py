"""Modules a run on this machine never uses, loaded only when something does use them.

pydicom imports ``requests``, ``tqdm`` and ``urllib.request`` when it is imported (for its own
downloads of test files, which deid never asks for): ~40 ms of every ``deid run``'s start, a tenth
of a small run.  :func:`defer` has such a module's import make a module object that is loaded the
first time an attribute of it is read (``importlib.util.LazyLoader``): the progress bar's ``tqdm``
is loaded when a bar is shown, as before; the others stay unloaded.  Only the deid command's
``run`` on this machine defers them (single-threaded where they would load; Python before 3.12
does not load a lazy module safely from two threads at once).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

#: imported by pydicom, never used by a run on this machine (tqdm: only for a bar shown)
UNUSED_BY_RUN = frozenset({"requests", "tqdm", "urllib.request"})


class _Deferred(importlib.abc.MetaPathFinder):
    """Finds ``names`` as the other finders do, to be loaded on first use."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None  # not installed, or not loadable lazily: the usual import says so
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def defer(names: frozenset[str] = UNUSED_BY_RUN) -> None:
    """From now on in this process, ``names`` not imported yet are loaded on first use."""
    if not any(isinstance(finder, _Deferred) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Deferred(frozenset(n for n in names if n not in sys.modules)))
