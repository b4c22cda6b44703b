"""What crosses a Dask cluster for a run is sealed: its repr, what Dask logs and shows, says only its
size; only the same key and run open it; the run's settings travel whole and hide the key and the
lookup; a staged file is a run temp; a worker takes part only where it sees the run's folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from daskcluster import require_distributed

require_distributed()

from deid.cluster.envelope import Sealed, dumps, seal, unseal
from deid.cluster.worker import (
    RunOnWorker,
    RunSettings,
    code_fingerprint,
    what_this_worker_sees,
)
from deid.io.writer import OUTPUT_LOCK, RUN_TEMP
from deid.keys import SecretKey
from deid.staging import staged_name
from deid.profile.model import Profile

PATH = "/exports/CHEN^MEI-LING_A123456789/CT_P_001.dcm"


def test_a_sealed_batch_shows_only_its_size(key: SecretKey) -> None:
    sealed = seal(key, "0123456789ab", [("ref", PATH)])
    assert repr(sealed) == f"Sealed({len(sealed.blob)} bytes)"
    assert b"CHEN" not in sealed.blob and b"exports" not in sealed.blob
    assert unseal(key, "0123456789ab", sealed) == [("ref", PATH)]


def test_only_the_same_key_and_run_open_it(key: SecretKey) -> None:
    sealed = seal(key, "0123456789ab", PATH)
    with pytest.raises(InvalidTag):
        unseal(SecretKey(bytes(32)), "0123456789ab", sealed)
    with pytest.raises(InvalidTag):
        unseal(key, "ba9876543210", sealed)
    with pytest.raises(InvalidTag):
        unseal(key, "0123456789ab", Sealed(sealed.blob[:-1] + bytes([sealed.blob[-1] ^ 1])))


def test_the_settings_travel_whole_and_hide_the_key_in_their_repr(key: SecretKey, vghtpe: Profile,
                                                                  tmp_path: Path) -> None:
    settings = RunSettings(vghtpe, key, {"A123": "0000000001"}, tmp_path / "out", tmp_path / "q", None,
                           "0123456789ab", 1 << 20, code_fingerprint())
    plugin = RunOnWorker.of("deid-run-0123456789abcdef", settings)
    plugin.setup(worker=None)
    assert plugin.settings is not None
    assert plugin.settings.profile.sha256 == vghtpe.sha256
    assert dict(plugin.settings.profile.tag_rules) == dict(vghtpe.tag_rules)
    assert plugin.settings.key.fingerprint == key.fingerprint
    assert key.digest("x", "y") == plugin.settings.key.digest("x", "y")
    assert bytes(range(32)).hex() not in repr(plugin.settings) and "A123" not in repr(plugin.settings)
    plugin.teardown(worker=None)
    assert plugin.settings is None
    assert dumps(settings)  # picklable, read-only mappings included


def test_a_staged_file_is_a_run_temp_beside_its_place() -> None:
    staged = staged_name("P/ST/SE/1.2.3.dcm", "ab" * 16, "0123456789ab")
    assert Path(staged).parent == Path("P/ST/SE")
    assert RUN_TEMP.match(Path(staged).name)  # so the next run removes it if this one is killed


def test_a_worker_sees_the_run_only_through_the_outputs_lock(tmp_path: Path) -> None:
    out, quarantine, records = tmp_path / "out", tmp_path / "q", tmp_path / "records"
    out.mkdir()
    quarantine.mkdir()
    assert what_this_worker_sees(str(out), str(quarantine)) == (code_fingerprint(), False)  # no run there
    (out / OUTPUT_LOCK).touch()
    assert what_this_worker_sees(str(out), str(quarantine)) == (code_fingerprint(), True)
    assert not what_this_worker_sees(str(out), str(quarantine), str(records))[1]  # --debug: the records too
