"""pydicom data sets made as their ``__init__`` leaves them, without its per-attribute cost.

``Dataset.__init__`` sets its twenty attributes one by one through pydicom's ``__setattr__`` (a
Python method that looks for a keyword): 5 to 10 µs a data set.  deid makes several for every
object (the scan's file meta and data set, the de-identification marks' code items, the new file
meta), so it copies them from a template instead: the attributes a fresh instance has, each dict
copied anew (tests/io/test_io_scan.py and tests/engine compare every attribute with pydicom's
own).
"""

from __future__ import annotations

from typing import TypeVar

from pydicom.dataset import Dataset

Made = TypeVar("Made", bound=Dataset)


def template_of(made: Dataset) -> dict[str, object]:
    """The attributes of ``made`` but its elements: a template for :func:`made_as_init`."""
    return {name: value for name, value in made.__dict__.items() if name != "_dict"}


def made_as_init(cls: type[Made], template: dict[str, object], **attributes: object) -> Made:
    """A ``cls`` as its ``__init__`` leaves it: the attributes of ``template`` (each dict copied
    anew), then ``attributes`` (``_dict``: its elements)."""
    made = object.__new__(cls)
    state = made.__dict__
    for name, value in template.items():
        state[name] = value.copy() if value.__class__ is dict else value
    state.update(attributes)
    return made
