"""Reading the packaged tables in ``deid/standard/data/`` (each file parsed once)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any, TypeVar

E1_1_FILE = "e1_1_confidentiality_profile_2026d.json"
E1_1A_FILE = "e1_1a_action_codes_2026d.json"
CID_7050_FILE = "cid7050_deidentification_method_2026d.json"
IOD_TYPES_FILE = "iod_types_dicom3tools_20241220.json"
E3_10_1_FILE = "e3_10_1_safe_private_2026d.json"


@cache
def load_json(name: str) -> Any:
    """The parsed content of a packaged data file (cached; do not mutate it)."""
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    return json.loads(text)


K = TypeVar("K")
V = TypeVar("V")


class LazyMapping(Mapping[K, V]):
    """A read-only mapping whose content is built by ``loader`` on first use."""

    __slots__ = ("_loader",)

    def __init__(self, loader: Callable[[], Mapping[K, V]]) -> None:
        self._loader = loader  # expected to be cached

    def __getitem__(self, key: K) -> V:
        return self._loader()[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._loader())

    def __len__(self) -> int:
        return len(self._loader())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self._loader())!r})"
