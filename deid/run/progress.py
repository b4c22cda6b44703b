"""The run's progress bar: tqdm's on a terminal, else one that draws nothing (tqdm is imported only
for a bar that is shown: ~15 ms of every start-up otherwise)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class NoBar:
    """The bar of a run that shows none: counts nothing, draws nothing."""

    disable = True

    def update(self, n: int = 1) -> None:
        """Nothing to count."""

    def set_postfix(self, **_fields: Any) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to clear."""


def progress_bar(show: bool, total: Callable[[], int]) -> Any:
    """A tqdm bar on stderr over ``total()`` objects (asked only when shown), or a
    :class:`NoBar`."""
    if not show:
        return NoBar()
    from tqdm import tqdm

    return tqdm(total=total(), unit="obj", file=sys.stderr, dynamic_ncols=True)
