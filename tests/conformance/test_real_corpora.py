"""deid over every file of real corpora (see corpora.py): objects nobody here made.

For each file, with the vghtpe profile and a test key, each file released into an output of its own
(pydicom's files share UIDs between variants of one image, which one output rightly refuses):

- the outcome is the one written down in ``expected_outcomes.txt`` (``written`` or
  ``quarantined:<code>``), so that a change shows; never ``internal-error``;
- a released file re-reads with pydicom (every value decoded) and with DCMTK's ``dcmdump``;
- ``dciodvfy`` finds no error in it that the input did not have (lines compared without values,
  as deid.checks.dciodvfy does; a file dciodvfy itself crashes on cannot be judged by it);
- its Pixel Data (and Float / Double Float Pixel Data) is byte for byte the input's;
- no identifying value of the input is in it, at any depth, neither in its bytes (Pixel Data left
  out: it is the input's, checked above) nor in any decoded value: every Person Name (and each
  name component), every value of an attribute the compiled profile removes or replaces, every
  original instance UID.  What is too short or too generic to search for is left out, by
  :func:`searchable` (the rule is written there).
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import peers
import pydicom
import pytest
from corpora import Corpus, installed_root, make_objects, require
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from support import deid, run_args

from deid.checks.dciodvfy import normalise
from deid.engine.compiler import compile_rules
from deid.engine.dates import DateFormError, generalise_da, generalise_dt
from deid.engine.deidentifier import lists_references
from deid.engine.vr import STRING_VRS
from deid.io.reader import read_object
from deid.pipeline import Pipeline
from deid.outcome import Written

CORPORA = ("pydicom", "pydicom-data", "pynetdicom", "debian", "made")
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float and Double Float Pixel Data
CHANGED = frozenset({"remove", "empty", "dummy", "replace", "hash", "case_number", "generalise_date",
                     "remap_uid", "remove_item", "quarantine"})
# Values that say nothing about a person wherever they appear: placeholders and yes/no words. 'Test'
# of test-SR.dcm's placeholder name 'Test^S R' is also a word of its kept Study Description; DCMTK's
# report template (reportsi.dcm, dicomscope's reports) fills names and TEXT items with 'Enter text'.
GENERIC = frozenset({"ANONYMOUS", "ANONYMIZED", "ANON", "UNKNOWN", "NONE", "NULL", "N/A", "REMOVED",
                     "DEIDENTIFIED", "DE-IDENTIFIED", "YES", "NO", "TEST", "ENTER TEXT"})
MIN_LENGTH = 4  # shorter values ('M', 'CT', '12Y', '001') occur in any object by chance
MIN_DIGITS = 8  # a number shorter than a date is a count or a size as often as an identifier
_UID = re.compile(r"^\d+(\.\d+)+$")


def _expected() -> dict[tuple[str, str], str]:
    table: dict[tuple[str, str], str] = {}
    for line in Path(__file__).with_name("expected_outcomes.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            corpus, path, outcome = line.split()
            table[(corpus, path)] = outcome
    return table


EXPECTED = _expected()


# -- what is identifying ---------------------------------------------------------------------
def searchable(value: str) -> bool:
    """The exclusion rule: a value is searched for unless it is shorter than MIN_LENGTH characters,
    a GENERIC placeholder, or a plain number shorter than MIN_DIGITS digits (sizes, counts,
    numbers of series: '1', '512', '1000' are in every object)."""
    value = value.strip(" \x00")
    if len(value) < MIN_LENGTH or value.upper() in GENERIC:
        return False
    return not (value.replace(".", "").replace("-", "").replace("+", "").isdigit() and len(value) < MIN_DIGITS
                and not _UID.match(value))


def _strings(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def _unchanged_date(vr: str, value: str) -> bool:
    """A date that generalising leaves as it was (already 1 January) is not a leak when kept."""
    try:
        return (generalise_da if vr == "DA" else generalise_dt)(value) == value
    except DateFormError:
        return False


def identifying_values(ds: Dataset, profile) -> tuple[set[str], set[str]]:
    """(values, instance UIDs) of ``ds`` the released object must not contain, by the profile.

    A value of a removed or replaced attribute that is also part of a value the profile keeps
    (Institution Name 'TOSHIBA' beside Manufacturer 'TOSHIBA_MEC', a private copy of the
    Manufacturer's Model Name) is not searched for: keeping it is the profile's choice. Person
    names are searched for wherever they are, kept text included."""
    rules = compile_rules(profile, str(ds.SOPClassUID).strip(), keep_references=lists_references(ds))
    values: set[str] = set()
    uids: set[str] = set()
    kept: set[str] = set()  # values of what the profile keeps
    person_names: set[str] = set()

    def visit(item: Dataset, path: tuple[int, ...]) -> None:
        for tag in list(item.keys()):
            try:
                elem = item[tag]
            except Exception:  # noqa: BLE001 - a value pydicom cannot decode: deid's own checks see it
                continue
            vr = elem.VR
            if vr == "SQ":
                for child in elem.value or []:
                    visit(child, path + (int(tag),))
                continue
            if vr not in STRING_VRS:
                continue
            action = rules.decide(path, int(tag), vr).action
            found = [v for v in _strings(elem.value) if searchable(v)]
            if vr == "UI":
                (uids if action == "remap_uid" else kept).update(found)
            elif vr == "PN" or action in CHANGED:
                for value in found:
                    if vr in ("DA", "DT") and _unchanged_date(vr, value):
                        continue
                    values.add(value)
                    if vr == "PN":  # each component of a name, too
                        parts = {value} | {p for p in re.split(r"[\^=]", value) if searchable(p)}
                        values.update(parts)
                        person_names.update(parts)
            else:
                kept.update(found)

    visit(ds, ())
    names = {v for v in values if v in person_names}
    others = {v for v in values - names if not any(v in text for text in kept)}
    return names | others, uids - kept


def _released_text(ds: Dataset) -> list[str]:
    """Every string value of the released object at any depth (file meta included), decoded."""
    texts: list[str] = []

    def visit(item: Dataset) -> None:
        for elem in item:
            if elem.VR == "SQ":
                for child in elem.value or []:
                    visit(child)
            elif elem.VR in STRING_VRS:
                texts.extend(_strings(elem.value))

    visit(ds.file_meta)
    visit(ds)
    return texts


def leaks(values: set[str], uids: set[str], released: bytes, ds: Dataset, pixels: list[bytes]) -> list[str]:
    """What of ``values`` / ``uids`` the released object still holds (as bytes or decoded)."""
    for blob in pixels:
        released = released.replace(blob, b"", 1)
    texts = _released_text(ds)
    found = []
    for value in sorted(values):
        encodings = {value.encode("utf-8"), value.encode("latin-1", errors="ignore")}
        if any(e and e in released for e in encodings) or any(value in text for text in texts):
            found.append(value)
    for uid in sorted(uids):
        pattern = re.compile(rb"(?<![0-9.])" + re.escape(uid.encode()) + rb"(?![0-9.])")  # not a root of another UID
        if pattern.search(released) or uid in texts:
            found.append(uid)
    return found


def pixel_values(ds: Dataset) -> list[bytes]:
    return [bytes(ds[tag].value) for tag in PIXEL_TAGS if tag in ds and ds[tag].value]


# -- running a corpus --------------------------------------------------------------------------
@dataclass
class FileRun:
    """One file of a corpus through the pipeline, with what the checks need."""

    source: Path
    outcome: str
    output: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    dciodvfy_in: Future | None = None
    dciodvfy_out: Future | None = None


def _dciodvfy(path: Path) -> tuple[bool, Counter[str]]:
    """(dciodvfy ran to its end, its error lines normalised and counted)."""
    result = subprocess.run([peers.require_tool("dciodvfy"), str(path)], capture_output=True, timeout=300,
                            check=False)
    text = (result.stdout + result.stderr).decode("utf-8", errors="replace")
    return result.returncode in (0, 1), Counter(normalise(line) for line in text.splitlines() if "Error" in line)


_POOL = ThreadPoolExecutor(max_workers=2)  # dciodvfy runs beside the pipeline, two at a time
_RUNS: dict[str, tuple[Corpus, dict[str, FileRun]]] = {}


@pytest.fixture(scope="session")
def corpus_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpora")


def run_corpus(name: str, tmp: Path, profile, key) -> tuple[Corpus, dict[str, FileRun]]:
    """The corpus run once per session: every file, each into its own output."""
    if name in _RUNS:
        return _RUNS[name]
    peers.require_tool("dciodvfy")
    root = make_objects(tmp / "made") if name == "made" else installed_root(name)
    corpus = require(name, root)
    runs: dict[str, FileRun] = {}
    for index, relative in enumerate(corpus.files):
        source = corpus.root / relative
        work = tmp / name / str(index)
        outcome = Pipeline(profile, key, out=work / "out", quarantine=work / "q").process_file(source)
        if isinstance(outcome, Written):
            output = work / "out" / outcome.released.output
            runs[relative] = FileRun(source, "written", output, outcome.released.counts,
                                     _POOL.submit(_dciodvfy, source), _POOL.submit(_dciodvfy, output))
        else:
            runs[relative] = FileRun(source, f"quarantined:{outcome.code}")
    _RUNS[name] = corpus, runs
    return _RUNS[name]


@pytest.mark.parametrize("name", CORPORA)
def test_every_file_of_the_corpus_has_its_outcome_written_down(name: str, corpus_tmp: Path, vghtpe, key) -> None:
    corpus, runs = run_corpus(name, corpus_tmp, vghtpe, key)
    listed = {path for corpus_name, path in EXPECTED if corpus_name == name}
    assert sorted(set(corpus.files) - listed) == [], "files not in expected_outcomes.txt"
    assert sorted(listed - set(corpus.files)) == [], "files in expected_outcomes.txt not in the corpus"
    assert [p for p, run in runs.items() if run.outcome == "quarantined:internal-error"] == []


@pytest.mark.parametrize(("name", "path"), sorted(EXPECTED), ids=[f"{c}/{p}" for c, p in sorted(EXPECTED)])
def test_real_file(name: str, path: str, corpus_tmp: Path, vghtpe, key) -> None:
    _, runs = run_corpus(name, corpus_tmp, vghtpe, key)
    run = runs.get(path)
    assert run is not None, "not in the corpus"
    assert run.outcome != "quarantined:internal-error"
    assert run.outcome == EXPECTED[(name, path)]
    if run.output is None:
        return
    released_bytes = run.output.read_bytes()
    released = pydicom.dcmread(run.output)
    _released_text(released)  # every value decodes (pydicom raises where one does not)
    assert peers.dcmdump_ok(run.output), "dcmdump cannot read the output"

    completed_in, before = run.dciodvfy_in.result()
    completed_out, after = run.dciodvfy_out.result()
    if completed_in:
        assert completed_out, "dciodvfy crashes on the output, not on the input"
        assert sorted((after - before).elements()) == [], "dciodvfy errors the input did not have"

    original = read_object(run.source.read_bytes())
    if "blank_pixel_region" not in run.counts:
        assert pixel_values(released) == pixel_values(original), "Pixel Data changed"
    values, uids = identifying_values(original, vghtpe)
    assert leaks(values, uids, released_bytes, released, pixel_values(released)) == []


def test_the_exclusion_rule_keeps_names_ids_dates_and_uids() -> None:
    for value in ("Lin^Wei-Ting", "CompressedSamples^CT1", "A123456789", "19910101", "1.2.3.4.5"):
        assert searchable(value), value
    for value in ("M", "CT", "12Y", "ANONYMOUS", "", "512", "1000", "-12.5"):
        assert not searchable(value), value


def test_a_leak_is_found_in_bytes_and_at_depth(vghtpe) -> None:
    """The leak finder itself: a name left in a nested item and a UID left in a reference."""
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    values, uids = identifying_values(ds, vghtpe)
    assert str(ds.PatientName) in values and ds.SOPInstanceUID in uids and ds.StudyInstanceUID in uids
    released = Dataset()
    released.file_meta = pydicom.dataset.FileMetaDataset()
    item = Dataset()
    item.ReferencedSOPInstanceUID = ds.StudyInstanceUID
    item.PersonName = "X^" + str(ds.PatientName)
    released.ReferencedImageSequence = Sequence([item])
    found = leaks(values, uids, b"", released, [])
    assert str(ds.PatientName) in found and ds.StudyInstanceUID in found
    empty = Dataset()
    empty.file_meta = pydicom.dataset.FileMetaDataset()
    assert str(ds.PatientName) in leaks(values, uids, str(ds.PatientName).encode(), empty, [])


def teardown_module() -> None:
    _POOL.shutdown(wait=True)



def test_a_run_over_real_files_prints_none_of_their_values(tmp_path: Path, key_file: Path, vghtpe) -> None:
    """pydicom-data's bad_sequence.dcm has UIDs that are not UIDs (64 hex digits) and a 64-character
    Study ID: pydicom's warnings about invalid values would quote them on the terminal."""
    corpus = require("pydicom-data", installed_root("pydicom-data"))
    source = corpus.root / "bad_sequence.dcm"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / source.name).write_bytes(source.read_bytes())
    result = deid(*run_args(tmp_path / "in", tmp_path / "out", key_file))
    assert result.returncode == 0, result.stderr
    values, uids = identifying_values(read_object(source.read_bytes()), vghtpe)
    assert any(not re.match(r"^[0-9.]+$", uid) for uid in uids)  # the invalid UIDs are there to leak
    printed = result.stdout + result.stderr
    assert [v for v in sorted(values | uids) if v in printed] == []
