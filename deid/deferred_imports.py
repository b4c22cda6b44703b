"""Modules a run on this machine never uses, loaded only when something does use them.

pydicom imports ``requests``, ``tqdm`` and ``urllib.request`` for its own downloads of test files,
which deid never asks for; its pixel plugins import ``numpy``, ``jpeg_ls`` and Pillow's
``PIL.ImageCms`` to say whether they could decode, which deid asks only of an image whose pixels a
rule or check reads; structlog imports ``asyncio`` for its ``async`` logging methods, which deid
never calls.  Together ~100 ms of every ``deid run``'s start, a third of a one-file run, and time
before the first object that no worker can share.

:func:`defer` has such a module's import make a module object that is loaded the first time an
attribute of it is read (``importlib.util.LazyLoader``): the progress bar's ``tqdm`` is loaded when
a bar is shown, numpy when pixels are read, as before; the others stay unloaded.  A module
imported a second time stays deferred: the import system's look at its ``__spec__`` (is it still
being loaded?) is answered without loading it (:class:`_SpecKeepingModule`).  So is the
``__version__`` of ``numpy`` and ``jpeg_ls``, which pydicom reads at import to say which pixel
plugins it has: from their installed distribution's metadata, the way ``jpeg_ls`` itself gets it
(:data:`VERSIONED`); where that is not one plain version of the one install beside the package
(two installs, a development build), the module is imported as usual.  (pydicom's writer asks
whether a value is a numpy array: deid's encoder writes the plain values a run makes itself,
deid.io.encoder.)  Only the deid command's ``run`` on this machine defers them
(single-threaded where they would load; Python before 3.12 does not load a lazy module safely from
two threads at once).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import types
from collections.abc import Sequence
from types import ModuleType

#: imported at a run's start, never used by a run on this machine but in the cases above
UNUSED_BY_RUN = frozenset({"requests", "tqdm", "urllib.request", "PIL.ImageCms",
                           "asyncio", "numpy", "jpeg_ls"})
#: deferred modules whose ``__version__`` is read at import -> the distribution that gives it
VERSIONED = {"numpy": "numpy", "jpeg_ls": "pyjpegls"}
_PLAIN_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")
_VERSIONS: dict[str, str] = {}  # deferred module -> its __version__, answered without loading it

_LAZY = getattr(importlib.util, "_LazyModule", None)


if _LAZY is not None:
    class _SpecKeepingModule(_LAZY):  # type: ignore[misc, valid-type]
        """importlib's lazy module, but reading ``__spec__`` does not load it: every ``import``
        of a module already in ``sys.modules`` reads it, and a use it is not."""

        def __getattribute__(self, attr: str) -> object:
            if attr == "__spec__":
                return types.ModuleType.__getattribute__(self, attr)
            if attr == "__version__":
                version = _VERSIONS.get(types.ModuleType.__getattribute__(self, "__name__"))
                if version is not None:
                    return version
            return super().__getattribute__(attr)


class _Loader(importlib.util.LazyLoader):
    """importlib's lazy loader, making :class:`_SpecKeepingModule` modules."""

    def exec_module(self, module: ModuleType) -> None:
        super().exec_module(module)
        if _LAZY is not None and type(module) is _LAZY:
            module.__class__ = _SpecKeepingModule


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
        if fullname in VERSIONED:
            version = installed_version(VERSIONED[fullname], spec)
            if version is None:
                return None  # its version cannot be told without it: imported as usual
            _VERSIONS[fullname] = version
        spec.loader = _Loader(spec.loader)
        return spec


def installed_version(distribution: str, spec: importlib.machinery.ModuleSpec,
                      path: list[str] | None = None) -> str | None:
    """The version of ``distribution`` (``importlib.metadata``), when it is the one install on
    ``path`` (default ``sys.path``), installed in the folder of the package ``spec`` finds, and of
    one plain version (digits and dots, what pydicom's version checks read); else None."""
    import importlib.metadata  # (pydicom imports it too, for its own version)

    if not spec.submodule_search_locations:
        return None
    folder = os.path.dirname(os.path.abspath(spec.submodule_search_locations[0]))
    found = list(importlib.metadata.distributions(name=distribution,
                                                  path=sys.path if path is None else path))
    if len(found) != 1:
        return None
    try:
        beside = os.path.abspath(str(found[0].locate_file(""))) == folder
        version = found[0].version
    except Exception:  # noqa: BLE001 (a damaged install: imported as usual)
        return None
    return version if beside and _PLAIN_VERSION.fullmatch(version or "") else None


def defer(names: frozenset[str] = UNUSED_BY_RUN) -> None:
    """From now on in this process, ``names`` not imported yet are loaded on first use."""
    if not any(isinstance(finder, _Deferred) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Deferred(frozenset(n for n in names if n not in sys.modules)))


def unloaded(name: str) -> bool:
    """Whether the module ``name`` was imported deferred and is not loaded yet."""
    module = sys.modules.get(name)
    return module is not None and _LAZY is not None and isinstance(module, _LAZY)
