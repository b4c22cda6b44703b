"""The secret key: written owner-only, never overwritten, refused when others can read it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from support import deid

from deid.errors import KeyFileError, UsageError
from deid.keys import ENV_KEY_FILE, SecretKey, generate_key_file, load_key_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keygen_writes_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "deid.key"
    generate_key_file(path)
    assert _mode(path) == 0o600
    text = path.read_text().strip()
    assert len(bytes.fromhex(text)) == 32
    assert load_key_file(path).fingerprint


def test_keygen_mode_ignores_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_key_file(tmp_path / "k")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "k") == 0o600


def test_two_keys_differ(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "a")
    generate_key_file(tmp_path / "b")
    assert load_key_file(tmp_path / "a").fingerprint != load_key_file(tmp_path / "b").fingerprint


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "deid.key"
    generate_key_file(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        generate_key_file(path)
    assert path.read_bytes() == before


def test_keygen_command_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "deid.key"
    first = deid("keygen", path)
    assert first.returncode == 0 and _mode(path) == 0o600
    before = path.read_bytes()
    second = deid("keygen", path)
    assert second.returncode == 2 and "refusing to overwrite" in second.stderr
    assert path.read_bytes() == before
    assert before.decode().strip() not in first.stdout + first.stderr  # the key is never printed


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "deid.key"
    generate_key_file(path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError) as caught:
        load_key_file(path)
    assert "chmod 600" in str(caught.value) and str(path) in str(caught.value)
    assert path.read_text().strip() not in str(caught.value)


def test_key_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "deid.key"
    generate_key_file(path)
    monkeypatch.setenv(ENV_KEY_FILE, str(path))
    assert load_key_file(None).fingerprint == load_key_file(path).fingerprint
    assert load_key_file("").fingerprint == load_key_file(path).fingerprint


def test_no_key_at_all_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEY_FILE, raising=False)
    with pytest.raises(KeyFileError, match="--key-file.*DEID_KEY_FILE.*deid keygen"):
        load_key_file(None)


@pytest.mark.parametrize("content", ["not hex at all\n", "abcd\n", ""])
def test_a_file_that_is_not_a_key_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "deid.key"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError):
        load_key_file(path)


def test_a_missing_key_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        load_key_file(tmp_path / "nope.key")


def test_the_key_is_hidden_from_repr() -> None:
    key = SecretKey(bytes.fromhex("ab" * 32))
    assert repr(key) == str(key) == "SecretKey()"


def test_run_uses_the_key_named_by_the_environment(tmp_path: Path, sample_study: Path, key_file: Path) -> None:
    by_flag = deid("run", sample_study, "--out", tmp_path / "a", "--key-file", key_file, "--no-progress")
    by_env = deid("run", sample_study, "--out", tmp_path / "b", "--no-progress", env={ENV_KEY_FILE: str(key_file)})
    assert by_flag.returncode == by_env.returncode == 0, by_env.stderr
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.dcm"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.dcm"))
    assert files_a and files_a == files_b  # the same key: the same new identifiers
