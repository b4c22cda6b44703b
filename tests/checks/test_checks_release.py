"""Before write, the pipeline quarantines what de-identification broke and lets through (counted)
what the input already had."""

from __future__ import annotations

import copy
import json
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from support import deid, run_args, to_bytes

from deid.checks.release import check_iod
from deid.errors import ObjectError
from deid.io.reader import read_object
from deid.pipeline import Pipeline
from deid.outcome import Quarantined, Written
from deid.profile.loader import load_profile
from deid.synthetic import four_phase_ct, write_datasets


@pytest.fixture(scope="module")
def image(patient) -> Dataset:
    return four_phase_ct(patient, slices=1, size=16, private_elements=0)["A"][0]


def pipeline(tmp_path: Path, profile, key) -> Pipeline:
    return Pipeline(profile, key, out=tmp_path / "out", quarantine=tmp_path / "quarantine")


def site(tmp_path: Path, body: str):
    path = tmp_path / "site.yaml"
    path.write_text("name: site\nextends: vghtpe\n" + body)
    return load_profile(path)


def test_a_rule_that_breaks_the_iod_quarantines(tmp_path, image, key) -> None:
    profile = site(tmp_path, "rules:\n  ImageType: {action: replace, value: ''}\n")
    outcome = pipeline(tmp_path, profile, key).process_bytes(to_bytes(image))
    assert isinstance(outcome, Quarantined)
    assert outcome.code == "iod-check-failed" and outcome.path == "(0008,0008)"
    assert outcome.stage == "check" and "type1-empty" in outcome.message
    stored = json.loads((tmp_path / "quarantine" / str(outcome.entry) / "reason.json").read_text())
    assert stored == outcome.reason()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.dcm"))


def test_a_problem_the_input_had_flows_and_is_counted(tmp_path, image, vghtpe, key) -> None:
    imperfect = copy.deepcopy(image)
    del imperfect.KVP  # Type 2 in CT Image: missing in the input already
    outcome = pipeline(tmp_path, vghtpe, key).process_bytes(to_bytes(imperfect))
    assert isinstance(outcome, Written) and outcome.released.preexisting_problems == 1
    clean = pipeline(tmp_path / "complete", vghtpe, key).process_bytes(to_bytes(image))  # same UID: own output
    assert isinstance(clean, Written) and clean.released.preexisting_problems == 0


def test_the_run_summary_counts_what_inputs_already_had(tmp_path, image, key_file) -> None:
    imperfect = copy.deepcopy(image)
    del imperfect.KVP
    source = tmp_path / "in"
    write_datasets([imperfect], source)
    result = deid(*run_args(source, tmp_path / "out", key_file))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out-records" / "summary.json").read_text())
    assert summary["written"] == 1 and summary["preexisting_problems"] == 1


def test_a_new_problem_beside_an_old_one_still_quarantines(tmp_path, image, key) -> None:
    imperfect = copy.deepcopy(image)
    del imperfect.KVP
    profile = site(tmp_path, "rules:\n  ImageType: {action: replace, value: ''}\n")
    outcome = pipeline(tmp_path, profile, key).process_bytes(to_bytes(imperfect))
    assert isinstance(outcome, Quarantined) and outcome.path == "(0008,0008)"
    assert outcome.message.startswith("de-identification left 1 IOD problem")


def test_problems_are_matched_without_item_numbers(landmark_study, vghtpe, key, tmp_path) -> None:
    """Content items removed before an imperfect one shift its number; it is still the input's."""
    ds = dcmread(BytesIO(landmark_study[1]["comprehensive"]))
    root = ds.ContentSequence
    last = max(i for i, item in enumerate(root) if item.ValueType == "CODE")
    del root[last].ConceptCodeSequence  # a CODE item without its code, after items that will go
    outcome = pipeline(tmp_path, vghtpe, key).process_bytes(to_bytes(ds))
    assert isinstance(outcome, Written) and outcome.released.preexisting_problems == 1
    assert outcome.released.counts["remove_item"] >= 2


def test_check_iod_names_the_path_not_the_value(image, patient) -> None:
    original = to_bytes(image)
    broken = read_object(original)
    broken.PatientID = ""  # Type 2: empty is fine
    del broken.SOPInstanceUID
    with pytest.raises(ObjectError) as caught:
        check_iod(original, broken, image.SOPClassUID)
    assert caught.value.path == "(0008,0018)" and caught.value.code == "iod-check-failed"
    for value in patient.phi_values():
        assert value not in caught.value.message
