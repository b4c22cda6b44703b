"""A node lives for months and meets whatever its peers send: SOP classes a hostile peer makes
up, tags no file should hold.  What the engine keeps of such inputs is bounded (the rules of the
last ``RULES_KEPT`` SOP classes, their walk memories, ``DECISIONS_KEPT`` decisions per rules): it
forgets and decides again, the same way, never grows without end."""

from __future__ import annotations

import io

from pydicom import dcmwrite

from deid.engine import compiler
from deid.engine.compiler import DECISIONS_KEPT, RULES_KEPT, CompiledRules, compile_rules
from deid.engine.deidentifier import Deidentifier
from deid.io.reader import read_object
from deid.keys import SecretKey
from deid.profile.loader import load_profile
from deid.synthetic import ct_slice, make_patient

KEY = SecretKey(bytes(range(32)))


def test_rules_and_walk_memories_are_kept_for_the_last_sop_classes_only() -> None:
    deidentifier = Deidentifier(load_profile("vghtpe"), KEY)
    patient = make_patient(5)
    template = ct_slice(patient, series_uid=patient.series_uid("N"), index=0, size=16)
    for index in range(RULES_KEPT + 20):  # each object a SOP class of its own, made up
        template.SOPClassUID = f"1.2.826.0.1.3680043.10.999.{index}"
        template.file_meta.MediaStorageSOPClassUID = template.SOPClassUID
        buffer = io.BytesIO()
        dcmwrite(buffer, template, enforce_file_format=True)
        deidentifier.deidentify(read_object(buffer.getvalue()))
    assert len(deidentifier._walked) <= RULES_KEPT
    assert compiler._compiled.cache_info().currsize <= RULES_KEPT


def test_decisions_are_forgotten_when_full_and_made_again_alike() -> None:
    profile = load_profile("vghtpe")
    rules = compile_rules(profile, "1.2.840.10008.5.1.4.1.1.2")
    fresh = CompiledRules(profile, "1.2.840.10008.5.1.4.1.1.2")
    tags = [0x00090000 | (element + 0x1000) for element in range(DECISIONS_KEPT + 10)]  # private
    for tag in tags:
        rules.decide((), tag, "LO")
    assert len(rules.decided) <= DECISIONS_KEPT
    for tag in (0x00100010, 0x00080018, 0x00200013, tags[0], tags[-1]):  # forgotten or not: alike
        vr = "LO" if tag in (tags[0], tags[-1]) else {0x00100010: "PN", 0x00080018: "UI"}.get(tag, "IS")
        assert rules.decide((), tag, vr) == fresh.decide((), tag, vr)
