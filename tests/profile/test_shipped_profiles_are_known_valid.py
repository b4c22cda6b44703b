"""The shipped profiles the loader does not validate again are those that passed the schema as
they are (deid.profile.shipped); any other profile file is validated at every load."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from deid.errors import ProfileError
from deid.profile import shipped
from deid.profile.loader import BUILTIN_DIR, load_profile, validate_file


def test_the_table_holds_each_shipped_profile_as_validated_now() -> None:
    files = sorted(BUILTIN_DIR.glob("*.yaml"))
    assert files, "no shipped profile found"
    now = {path.name: validate_file(path) for path in files}  # each passes the schema
    assert (shipped.SCHEMA_SHA256, shipped.VALID) == (shipped.schema_sha256(), now), (
        "a shipped profile or the schema changed: put `python -m deid.profile.shipped`'s output "
        "in deid/profile/shipped.py")


def test_a_shipped_profile_loads_without_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # importing it would fail
    assert load_profile("vghtpe").name == "vghtpe"


def test_an_edited_copy_of_a_shipped_profile_is_validated(tmp_path: Path) -> None:
    text = (BUILTIN_DIR / "vghtpe.yaml").read_text(encoding="utf-8")
    edited = tmp_path / "vghtpe.yaml"
    edited.write_text(text.replace("extends: ps3.15-basic", "extends: ps3.15-basic\nbogus_key: 1"),
                      encoding="utf-8")
    assert "bogus_key" in edited.read_text(encoding="utf-8")
    with pytest.raises(ProfileError, match="bogus_key"):
        load_profile(edited)


def test_a_changed_schema_validates_shipped_profiles_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    from deid.profile import loader

    real = loader._validate
    monkeypatch.setattr(loader, "_validate",
                        lambda path, data: (calls.append(path), real(path, data)))
    load_profile("vghtpe")
    assert calls == []
    monkeypatch.setattr(shipped, "SCHEMA_SHA256", "0" * 64)
    load_profile("vghtpe")
    assert [path.name for path in calls] == ["vghtpe.yaml", "ps3.15-basic.yaml"]
