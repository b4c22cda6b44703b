"""deid.audit.mapped: one writer's set of mapped UIDs, on disk: exact, flat in memory, and never
the cause of a lost map entry (a full temporary disk makes it answer "new")."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from smalldisk import fill, small_disk

from deid.audit.mapped import MappedUids



def uids(count: int = 100_000) -> Iterator[str]:
    """``count`` UIDs of 45 characters, made as they are asked for (as a writer's objects come)."""
    return (f"2.25.{n * 2654435761 % 10**40:040d}" for n in range(count))


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return int(status.read().split("VmRSS:")[1].split()[0])


def test_each_uid_is_new_once_and_memory_stays_flat() -> None:
    """100,000 UIDs (a set of them: ~13 MB) leave SQLite's pages on disk past a 256 KiB cache;
    every one is still known."""
    mapped = MappedUids()
    assert mapped.add("2.25.1") and not mapped.add("2.25.1")
    before = _rss_kib()
    assert all(mapped.add(uid) for uid in uids())
    grown = _rss_kib() - before
    assert not any(mapped.add(uid) for uid in uids())
    mapped.close()
    assert grown < 4096, f"{grown} KiB"


FULL = """
from deid.audit.mapped import MappedUids
mapped = MappedUids()
first = mapped.add("2.25.1"), mapped.add("2.25.1")
new = [mapped.add(f"2.25.{n:050d}") for n in range(100_000)]
print(first == (True, False), all(new), mapped.add("2.25.1"))
"""


def test_a_full_temporary_disk_maps_again_rather_than_lose_an_entry(tmp_path: Path) -> None:
    """SQLite's temporary folder full: the set cannot tell, so each UID counts as new (the map
    may hold an entry twice, never none); nothing is raised to the writer."""
    with small_disk(tmp_path / "tmp", size_mb=1) as disk:
        fill(disk)
        result = subprocess.run([sys.executable, "-c", FULL], capture_output=True, text=True,
                                env={**os.environ, "SQLITE_TMPDIR": str(disk)}, timeout=120,
                                check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True"]
