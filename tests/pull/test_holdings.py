"""What a pull has of an instance is looked up where it is: the spool, the quarantine, the audit
trail (and the output folder), never taken from the journal."""

from __future__ import annotations

import json
from pathlib import Path

from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from deid.engine.uids import UidRemapper
from deid.keys import SecretKey
from deid.pull.holdings import MISSING, PENDING, QUARANTINED, RELEASED, Holdings
from deid.settings import (
    AllowedCaller,
    DestinationSettings,
    FolderDestinationSettings,
    ServeSettings,
)


def _original(path: Path, sop_uid: str) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", sop_uid
    path.parent.mkdir(parents=True, exist_ok=True)
    dcmwrite(path, ds, enforce_file_format=True)


def _forwarded(settings: ServeSettings, sop_uid: str, destination: str, output: str) -> None:
    audit = settings.records / "audit"
    audit.mkdir(parents=True, exist_ok=True)
    line = {"outcome": "forwarded", "sop_uid": sop_uid, "destination": destination,
            "output": output}
    with (audit / "x-serve-1.jsonl").open("a") as handle:
        handle.write(json.dumps(line) + "\n")


def test_each_state_is_found_where_it_is(tmp_path: Path, key: SecretKey) -> None:
    settings = ServeSettings(data=tmp_path / "data", key_file=tmp_path / "k",
                             allow=(AllowedCaller("PACS"),),
                             destinations=(DestinationSettings("A", "h", 1),
                                           DestinationSettings("B", "h", 2)))
    remap = UidRemapper(key)
    _original(settings.spool / "incoming" / "0a1b.dcm", "1.2.3.1")
    _original(settings.quarantine / "c0ffee" / "original.dcm", "1.2.3.2")
    _forwarded(settings, remap.remap("1.2.3.3"), "A@h:1", "p/s/e/i.dcm")
    _forwarded(settings, remap.remap("1.2.3.3"), "B@h:2", "p/s/e/i.dcm")
    _forwarded(settings, remap.remap("1.2.3.4"), "A@h:1", "p/s/e/j.dcm")  # not yet at B
    holdings = Holdings(settings, ["A@h:1", "B@h:2"], remap)
    holdings.refresh()
    states = {uid: holdings.state(uid) for uid in ("1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4")}
    assert states == {"1.2.3.1": PENDING, "1.2.3.2": QUARANTINED, "1.2.3.3": RELEASED,
                      "1.2.3.4": MISSING}
    _forwarded(settings, remap.remap("1.2.3.4"), "B@h:2", "p/s/e/j.dcm")
    holdings.refresh()  # new lines are read as they come
    assert holdings.state("1.2.3.4") == RELEASED


def test_a_released_file_gone_from_the_output_is_missing(tmp_path: Path, key: SecretKey) -> None:
    out = tmp_path / "out"
    settings = ServeSettings(data=tmp_path / "data", key_file=tmp_path / "k",
                             allow=(AllowedCaller("PACS"),),
                             destinations=(FolderDestinationSettings(out),))
    remap = UidRemapper(key)
    _forwarded(settings, remap.remap("1.2.3.5"), "folder", "p/s/e/k.dcm")
    holdings = Holdings(settings, [settings.destinations[0].name], remap, out)
    holdings.refresh()
    assert holdings.state("1.2.3.5") == MISSING
    (out / "p/s/e").mkdir(parents=True)
    (out / "p/s/e/k.dcm").write_bytes(b"released")
    assert holdings.state("1.2.3.5") == RELEASED


def test_an_original_in_a_spool_slot_is_pending_until_finished(tmp_path: Path,
                                                                key: SecretKey) -> None:
    """The spool keeps objects in reusable slots: pending is what its open items hold, not what
    a free slot's bytes still say."""
    from deid.spool import Spool

    settings = ServeSettings(data=tmp_path / "data", key_file=tmp_path / "k",
                             allow=(AllowedCaller("PACS"),),
                             destinations=(DestinationSettings("A", "h", 1),))
    spool = Spool(settings.spool)
    _original(tmp_path / "in.dcm", "1.2.3.6")
    spool.put((tmp_path / "in.dcm").read_bytes())
    holdings = Holdings(settings, ["A@h:1"], UidRemapper(key))
    holdings.refresh()
    assert holdings.state("1.2.3.6") == PENDING
    spool.quarantine(spool.claim("w"), "forward-rejected")  # (its entry not written here)
    holdings.refresh()
    assert holdings.state("1.2.3.6") == MISSING
    spool.close()
