"""Data sets made from a template (deid.io.datasets) are those pydicom's __init__ makes: the same
attributes, none of their dicts shared with the template or with each other."""

from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset

from deid.engine import deidentifier
from deid.io.datasets import made_as_init, template_of


def _state(ds: Dataset) -> dict[str, object]:
    return {name: value for name, value in ds.__dict__.items() if name != "_dict"}


def test_a_made_data_set_is_as_its_init_leaves_it() -> None:
    for cls in (Dataset, FileMetaDataset):
        fresh = cls()
        made = made_as_init(cls, template_of(cls()), _dict={})
        assert type(made) is cls and _state(made) == _state(fresh) and made._dict == {}


def test_no_dict_is_shared_between_made_data_sets() -> None:
    template = template_of(Dataset())
    one, two = (made_as_init(Dataset, template, _dict={}) for _ in range(2))
    for name, value in _state(one).items():
        if isinstance(value, dict):
            assert value is not _state(two)[name] and value is not template[name], name


def test_the_marks_code_items_and_file_meta_are_as_pydicom_makes_them() -> None:
    item = Dataset({})
    item.set_original_encoding(False, True, item._character_set)
    made = made_as_init(Dataset, deidentifier._CODE_ITEM, _dict={})
    assert _state(made) == _state(item)
    meta = made_as_init(FileMetaDataset, deidentifier._FILE_META, _dict={})
    assert _state(meta) == _state(FileMetaDataset())
