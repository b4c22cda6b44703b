"""The folder walk of ``deid run`` yields files as it finds them (no list of every file), in the
order a sorted list of their paths would have, each file once however it is reached (links into
the source, overlapping sources, a file named beside its folder)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deid.intake.folders import Discovery, SourceFile

NAMES = st.sampled_from(["a", "b", "a.b", "a-b", "B", "ab", ".hid", "z", "é", "10", "9"])
TREE = st.recursive(
    st.just(None),  # a file
    lambda children: st.dictionaries(NAMES, children, min_size=1, max_size=4),  # a folder
    max_leaves=25,
)


def _make(folder: Path, tree: dict) -> list[Path]:
    """Build ``tree`` under ``folder``; the files a walk must find (none hidden on the way)."""
    found = []
    folder.mkdir(parents=True, exist_ok=True)
    for name, child in tree.items():
        path = folder / name
        if child is None:
            path.write_bytes(b"x")
            if not name.startswith("."):
                found.append(path)
        else:
            inner = _make(path, child)
            if not name.startswith("."):
                found.extend(inner)
    return found


def _paths(walk: Discovery) -> list[Path]:
    return [source.path for source in walk]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.dictionaries(NAMES, TREE, min_size=1, max_size=4))
def test_files_come_in_sorted_path_order_once_each(tmp_path_factory, tree: dict) -> None:
    root = tmp_path_factory.mktemp("walk").resolve()
    expected = sorted(_make(root / "in", tree))
    walk = Discovery([root / "in"])
    files = list(walk)
    assert [f.path for f in files] == expected
    assert all(isinstance(f, SourceFile) and f.size == 1 for f in files)
    assert walk.count == len(expected) and not walk.skipped


def test_links_into_the_source_and_overlapping_sources_give_each_file_once(tmp_path: Path) -> None:
    root = (tmp_path / "in").resolve()
    files = _make(root, {"p1": {"s1": {"1.dcm": None, "2.dcm": None}}, "p2": {"3.dcm": None},
                         ".hidden": {"4.dcm": None}})
    (root / "p2" / "again.dcm").symlink_to(root / "p1" / "s1" / "1.dcm")  # inside: found anyway
    (root / "p2" / "shown.dcm").symlink_to(root / ".hidden" / "4.dcm")  # hidden: only by the link
    (root / "p2" / "shown-again.dcm").symlink_to(root / ".hidden" / "4.dcm")
    elsewhere = tmp_path / "elsewhere"
    other = _make(elsewhere, {"o": {"5.dcm": None}})
    (root / "p2" / "other.dcm").symlink_to(other[0])
    (root / "p2" / "more").symlink_to(other[0].parent)  # the same file again, through its folder
    sources = [root, root / "p1", root / "p2" / "3.dcm", root / "p1" / "s1" / "2.dcm"]

    refused = Discovery(sources)
    got = _paths(refused)  # a link's target comes where the link is found
    assert sorted(got) == sorted(files + [root / ".hidden" / "4.dcm"]) and len(got) == len(set(got))
    assert [p for p in got if ".hidden" not in p.parts] == sorted(files)
    assert refused.skipped == {"link-outside-source": 2}

    followed = Discovery(sources, follow_links=True)
    got = _paths(followed)
    assert sorted(got) == sorted(files + [root / ".hidden" / "4.dcm", other[0].resolve()])
    assert len(got) == len(set(got)) == followed.count


def test_a_missing_source_is_refused_before_any_walk(tmp_path: Path) -> None:
    import pytest

    from deid.errors import UsageError

    with pytest.raises(UsageError):
        Discovery([tmp_path, tmp_path / "gone"])


def test_a_walk_holds_no_list_of_its_files(tmp_path: Path) -> None:
    """The first file comes before the walk has listed the rest of the tree."""
    _make(tmp_path / "in", {f"p{i:02d}": {"1.dcm": None} for i in range(20)})
    walk = iter(Discovery([tmp_path / "in"]))
    first = next(walk)
    assert first.path.parent.name == "p00"
    (tmp_path / "in" / "p19" / "2.dcm").write_bytes(b"x")  # added after the walk began
    rest = [f.path for f in walk]
    assert rest[-1] == tmp_path / "in" / "p19" / "2.dcm"  # p19 was listed when the walk reached it
