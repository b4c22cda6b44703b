"""The references the pipeline records (read from the datasets the walker visited, cheaply) are
exactly what ``deid.audit.references.references`` finds in the released object."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import release

from deid.audit.references import references
from deid.engine.deidentifier import Deidentifier
from deid.io.reader import read_object
from deid.synthetic import make_patient, oddities, write_sample_study


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("refs")
    patient = make_patient(6)
    paths = write_sample_study(folder, patient, slices=2, size=16, seg=True, pet=True)
    paths.append(oddities.ct_deep_sequences(folder / "odd", patient))
    return paths


@pytest.mark.parametrize("profile_name", ["vghtpe", "basic"])
def test_walked_references_equal_the_references_of_the_released_object(objects, key, vghtpe, basic,
                                                                     profile_name) -> None:
    profile = vghtpe if profile_name == "vghtpe" else basic
    kinds = set()
    for path in objects:
        result = Deidentifier(profile, key).deidentify(read_object(path.read_bytes()))
        released, _ = release(path, profile, key)
        expected = [ref.as_dict() for ref in references(released)]
        assert result.references == expected, path.name
        kinds |= {ref["kind"] for ref in result.references}
    assert {"instance", "series", "study", "frame_of_reference"} <= kinds
