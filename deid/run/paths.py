"""The three folders a ``deid run`` writes: the output, its quarantine and its records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deid.errors import UsageError


@dataclass
class RunPaths:
    """The output (only what may be released), the quarantine and the records folder of a run."""

    out: Path
    quarantine: Path
    records: Path

    @classmethod
    def beside(cls, out: Path, quarantine: Path | None, records: Path | None) -> RunPaths:
        """The folders given, the quarantine and records defaulting to OUT-quarantine and
        OUT-records beside OUT; refuses (exit 2) either inside the output."""
        out = out.resolve()
        paths = cls(out, (quarantine or out.parent / f"{out.name}-quarantine").resolve(),
                    (records or out.parent / f"{out.name}-records").resolve())
        for name, path in (("--quarantine", paths.quarantine), ("--records", paths.records)):
            if inside(path, out):
                raise UsageError(f"{name} must be outside the output folder: the output holds only "
                                 "what may be released")
        return paths

    def named(self) -> list[tuple[str, str, Path]]:
        """(name, command-line flag, folder) of each of the three folders."""
        return [("output", "--out", self.out), ("quarantine", "--quarantine", self.quarantine),
                ("records", "--records", self.records)]


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or under it."""
    return path == folder or folder in path.parents
