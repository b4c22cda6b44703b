"""Mutation fuzzer for deid's pipeline: DICOM files from a corpus, mutated where DICOM's structure
is (element headers, lengths, delimiters, transfer syntax, character set, private creators...),
fed to one in-process ``deid.pipeline.Pipeline`` with ``deidentify_bytes``.

A finding is written to ``OUT/findings.jsonl`` (and the mutated input to ``OUT/inputs/``):

- ``internal-error``: a quarantine with that code (a bug);
- ``exception``: an exception escaping ``deidentify_bytes``; ``hang``: one object took more than
  ``--timeout`` seconds; ``crash``: the worker process died on the object;
- ``unreadable-output``: released bytes pydicom cannot read back; ``bad-value``: a released value
  that does not fit its VR (and the unmutated file's release has no such problem there);
- ``leak``: released bytes (raw, or as decoded text) holding an identity value of the source (or of
  the file an element was spliced from) that the unmutated file's release does not hold;
- ``reason-value``: a quarantine reason whose text holds a source value.

Deterministic for a seed: mutation N is made from ``Random(f"{seed}:{N}")`` (the time budget only
says how many are run).  Run ``--replay N`` to run one mutation again and see its outcome.

    .venv/bin/python tools/fuzz_pipeline.py --corpus /tmp/eqc --seed 1 --seconds 600 --out /tmp/fuzz
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

#: identifying attributes whose values must not go out (when the profile does not keep them)
IDENTITY_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName",
    "InstitutionAddress", "ReferringPhysicianName", "OtherPatientIDs", "OtherPatientNames",
    "PatientAddress", "PatientTelephoneNumbers", "PerformingPhysicianName", "OperatorsName",
    "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "RequestingPhysician",
    "PatientMotherBirthName", "PatientBirthName", "IssuerOfPatientID", "ResponsiblePerson",
    "InstitutionalDepartmentName", "ScheduledPerformingPhysicianName", "ContentCreatorName",
    "PersonName", "VerifyingObserverName", "ReviewerName", "StationName", "DeviceSerialNumber",
    "PatientComments", "AdditionalPatientHistory", "MedicalRecordLocator", "RequestedProcedureID",
    "ScheduledProcedureStepID", "PerformedProcedureStepID", "StudyID", "OtherPatientIDsSequence",
)

TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90", "1.2.3.4",
    "1.2.840.10008.1.2.1\x00", "",
)
CHARSETS = (
    b"ISO_IR 192", b"ISO_IR 100", b"ISO 2022 IR 87", b"\\ISO 2022 IR 87", b"ISO 2022 IR 149",
    b"GB18030", b"GBK", b"ISO_IR 999", b"iso_ir 100", b"ISO_IR 100\\ISO_IR 192", b"\\\\\\",
    b"ISO 2022 IR 6\\ISO 2022 IR 87\\ISO 2022 IR 159", b"ISO_IR 13", b"ISO_IR 166", b"UTF-8",
    b"", b"\xff\xfe", b" ", b"ISO_IR 6", b"ISO 2022 IR 13\\ISO 2022 IR 87", b"latin1",
)
BAD_TEXT = (
    b"\xff\xfe\xfd", b"\x1b$B", b"\x1b(J", b"\x1b$)C", b"\xc3", b"\xe4\xb8", b"\x00", b"\x1b",
    b"\x1b-A\xe9", b"\\", b"=", b"^", b"\x1b$B\x1b(B", b"\xed\xa0\x80", b"\x80\x81",
)
VRS = (b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB",
       b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
       b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV", b"ZZ", b"\x00\x00", b"sq", b"  ")
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
                      b"UT", b"UV"})
TEXT_VRS = frozenset({b"PN", b"LO", b"SH", b"LT", b"ST", b"UT", b"UC", b"CS", b"AE", b"DA", b"TM",
                      b"DT", b"DS", b"IS", b"AS", b"UR"})
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF


class Timeout(BaseException):
    """One object took too long (a BaseException: the pipeline's ``except Exception`` lets it
    by)."""


@dataclasses.dataclass
class Elem:
    """One element header found in a file: where it is and what it says."""

    offset: int  # the header's first byte
    header: int  # header length (8 or 12)
    tag: int
    vr: bytes | None  # None: implicit VR
    length: int
    length_at: int  # where the length field is
    length_size: int  # 2 or 4
    depth: int
    parents: tuple[tuple[int, int], ...]  # (length_at, length_size) of defined-length containers
    little: bool
    meta: bool = False

    @property
    def end(self) -> int:
        return self.offset + self.header + (0 if self.length == UNDEFINED else self.length)


@dataclasses.dataclass
class Layout:
    """A file's element headers (best effort: what could be parsed)."""

    elems: list[Elem]
    meta_end: int  # where the data set starts (0: a bare data set)
    implicit: bool
    little: bool
    syntax_at: Elem | None
    group_length_at: int | None  # (0002,0000)'s value offset


def _dictionary_vr(tag: int) -> str:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def layout(data: bytes) -> Layout:
    """The element headers of a Part 10 file or a bare data set."""
    elems: list[Elem] = []
    pos, syntax_at, group_length_at = 0, None, None
    if len(data) >= 132 and data[128:132] == b"DICM":
        pos = 132
        while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 2:
            vr = data[pos + 4:pos + 6]
            if vr in LONG_VRS:
                header, at, size = 12, pos + 8, 4
            else:
                header, at, size = 8, pos + 6, 2
            length = struct.unpack_from("<I" if size == 4 else "<H", data, at)[0]
            tag = 0x20000 | struct.unpack_from("<H", data, pos + 2)[0]
            elem = Elem(pos, header, tag, vr, length, at, size, 0, (), True, meta=True)
            elems.append(elem)
            if tag == 0x00020010:
                syntax_at = elem
            if tag == 0x00020000:
                group_length_at = pos + header
            if length == UNDEFINED:
                break
            pos += header + length
    meta_end = pos
    syntax = b""
    if syntax_at is not None:
        syntax = data[syntax_at.offset + 8:syntax_at.end].rstrip(b"\x00 ")
    implicit = syntax == b"1.2.840.10008.1.2"
    little = syntax != b"1.2.840.10008.1.2.2"
    if meta_end == 0:  # a bare data set: explicit when the first VR reads as one
        implicit = not (len(data) > 6 and data[4:6] in VRS)
    if syntax not in (b"1.2.840.10008.1.2.1.99", b"1.2.840.10008.1.2.1.99\x00"):
        try:
            _walk(data, pos, len(data), implicit, little, 0, (), elems)
        except (struct.error, IndexError, RecursionError):
            pass
    return Layout(elems, meta_end, implicit, little, syntax_at, group_length_at)


def _walk(data: bytes, pos: int, end: int, implicit: bool, little: bool, depth: int,
          parents: tuple, out: list[Elem]) -> int:
    """Element headers from ``pos`` to ``end`` or a delimiter (whose end it gives)."""
    e = "<" if little else ">"
    while pos + 8 <= end and len(out) < 20000:
        group, number = struct.unpack_from(e + "HH", data, pos)
        tag = group << 16 | number
        if tag in (ITEM_END, SEQ_END):
            out.append(Elem(pos, 8, tag, None, 0, pos + 4, 4, depth, parents, little))
            return pos + 8
        if implicit or tag == ITEM:
            vr, header, at, size = None, 8, pos + 4, 4
        else:
            vr = data[pos + 4:pos + 6]
            header, at, size = (12, pos + 8, 4) if vr in LONG_VRS else (8, pos + 6, 2)
        length = struct.unpack_from(e + ("I" if size == 4 else "H"), data, at)[0]
        elem = Elem(pos, header, tag, vr, length, at, size, depth, parents, little)
        out.append(elem)
        start = pos + header
        is_sq = vr == b"SQ" or (vr is None and tag != ITEM and _dictionary_vr(tag) == "SQ") \
            or (length == UNDEFINED and vr in (b"UN", None) and tag != 0x7FE00010)
        if tag == ITEM:
            inner = parents + ((at, size),) if length != UNDEFINED else parents
            stop = end if length == UNDEFINED else min(start + length, end)
            pos = _walk(data, start, stop, implicit, little, depth + 1, inner, out)
            if length != UNDEFINED:
                pos = start + length
        elif is_sq and depth < 40:
            inner = parents + ((at, size),) if length != UNDEFINED else parents
            stop = end if length == UNDEFINED else min(start + length, end)
            sq_implicit = implicit or vr == b"UN"
            pos = _walk(data, start, stop, sq_implicit, little, depth + 1, inner, out)
            if length != UNDEFINED:
                pos = start + length
        elif length == UNDEFINED:  # encapsulated pixel data: fragments to the delimiter
            pos = start
            while pos + 8 <= end:
                ftag = struct.unpack_from(e + "HH", data, pos)
                flen = struct.unpack_from(e + "I", data, pos + 4)[0]
                pos += 8 + (0 if ftag == (0xFFFE, 0xE0DD) else flen)
                if ftag == (0xFFFE, 0xE0DD):
                    break
        else:
            pos = start + length
    return pos


# ------------------------------------------------------------------------------------ mutations


class Mutator:
    """Mutations of one file's bytes, each keeping (with ``fix``) its containers' lengths right."""

    def __init__(self, data: bytes, rng: random.Random, donor: bytes) -> None:
        self.data, self.rng, self.donor = data, rng, donor
        self.lay = layout(data)
        self.body = [el for el in self.lay.elems if not el.meta]
        self.fix = rng.random() < 0.75  # adjust enclosing lengths after a size change

    def pick(self, where=None) -> Elem | None:
        pool = [el for el in self.body if where is None or where(el)]
        return self.rng.choice(pool) if pool else None

    def replace(self, start: int, end: int, new: bytes, parents=(), meta: bool = False) -> bytes:
        """``data[start:end]`` replaced by ``new``, the containers' lengths adjusted by the
        change."""
        data = bytearray(self.data[:start] + new + self.data[end:])
        delta = len(new) - (end - start)
        if self.fix and delta:
            e = "<" if self.lay.little else ">"
            for at, size in parents:
                if at >= start:
                    continue
                fmt = e + ("I" if size == 4 else "H")
                value = struct.unpack_from(fmt, data, at)[0]
                if value != UNDEFINED:
                    struct.pack_into(fmt, data, at, (value + delta) % (1 << (8 * size)))
            if meta and self.lay.group_length_at is not None and self.lay.group_length_at < start:
                value = struct.unpack_from("<I", data, self.lay.group_length_at)[0]
                struct.pack_into("<I", data, self.lay.group_length_at, (value + delta) % (1 << 32))
        return bytes(data)

    # each returns (description, bytes) or None when it does not apply
    def tag(self):
        el = self.pick(lambda el: el.tag not in (ITEM, ITEM_END, SEQ_END))
        if el is None:
            return None
        group, number = el.tag >> 16, el.tag & 0xFFFF
        choice = self.rng.choice([
            (group, (number + self.rng.choice([-1, 1, 2, 0x10])) & 0xFFFF), (group | 1, number),
            (0x0008, 0x0005), (0x0010, 0x0010), (0x0010, 0x0020), (0xFFFE, 0xE000),
            (0xFFFE, 0xE00D), (0xFFFE, 0xE0DD), (0x0002, 0x0010), (0x0000, 0x0000),
            (0x7FE0, 0x0010), (group, 0x0000), (0x0009, 0x0010), (0x0009, 0x1001),
            (self.rng.randrange(0x10000), self.rng.randrange(0x10000)), (0x0008, 0x0016),
        ])
        new = struct.pack(("<" if el.little else ">") + "HH", *choice)
        return f"tag {el.tag:08X}->{choice[0]:04X}{choice[1]:04X}", \
            self.replace(el.offset, el.offset + 4, new)

    def vr(self):
        el = self.pick(lambda el: el.vr is not None and el.tag not in (ITEM, ITEM_END, SEQ_END))
        if el is None:
            return None
        new_vr = self.rng.choice(VRS)
        if self.rng.random() < 0.5:  # only the two bytes: the rest of the header reads otherwise
            return f"vr {el.tag:08X} {el.vr!r}->{new_vr!r} bytes", \
                self.replace(el.offset + 4, el.offset + 6, new_vr)
        value = self.data[el.offset + el.header:el.end]
        e = "<" if el.little else ">"
        if new_vr in LONG_VRS:
            head = struct.pack(e + "HH", el.tag >> 16, el.tag & 0xFFFF) + new_vr + b"\0\0" + \
                struct.pack(e + "I", el.length)
        else:
            head = struct.pack(e + "HH", el.tag >> 16, el.tag & 0xFFFF) + new_vr + \
                struct.pack(e + "H", min(el.length, 0xFFFF))
        return f"vr {el.tag:08X} {el.vr!r}->{new_vr!r} header", \
            self.replace(el.offset, el.end, head + value, el.parents)

    def length(self):
        el = self.pick()
        if el is None:
            return None
        size = el.length_size
        top = (1 << (8 * size)) - 1
        value = self.rng.choice([0, 1, el.length + 1, max(el.length - 1, 0), el.length + 2,
                                 max(el.length - 2, 0), top, top - 1, el.length * 2 + 1,
                                 el.length | 1, 0x7FFFFFFF & top, len(self.data)])
        fmt = ("<" if el.little else ">") + ("I" if size == 4 else "H")
        return f"length {el.tag:08X} {el.length}->{value}", \
            self.replace(el.length_at, el.length_at + size, struct.pack(fmt, value))

    def truncate(self):
        r = self.rng.random()
        if r < 0.4 and self.lay.elems:
            el = self.rng.choice(self.lay.elems)
            at = el.offset + self.rng.choice([0, 2, 4, 6, 8, el.header, el.header + 1])
        else:
            at = self.rng.randrange(len(self.data) + 1)
        return f"truncate at {at}", self.data[:at]

    def delimiter(self):
        el = self.pick()
        if el is None:
            return None
        kind = self.rng.choice([ITEM_END, SEQ_END, ITEM])
        if self.rng.random() < 0.3:
            delims = [x for x in self.body if x.tag in (ITEM_END, SEQ_END)]
            if delims:
                d = self.rng.choice(delims)
                return f"remove delimiter {d.tag:08X} at {d.offset}", \
                    self.replace(d.offset, d.offset + 8, b"", d.parents)
        e = "<" if el.little else ">"
        length = self.rng.choice([0, UNDEFINED, 8])
        new = struct.pack(e + "HHI", kind >> 16, kind & 0xFFFF, length)
        at = el.offset if self.rng.random() < 0.7 else el.end
        return f"insert {kind:08X} len {length} at {at}", self.replace(at, at, new, el.parents)

    def undefined_sequence(self):
        el = self.pick(lambda el: el.vr == b"SQ" or (
            el.vr is None and el.length_size == 4 and el.tag != ITEM
            and _dictionary_vr(el.tag) == "SQ"))
        if el is None:
            return None
        fmt = ("<" if el.little else ">") + "I"
        r = self.rng.random()
        if r < 0.5:  # undefined, no delimiter
            return f"sq {el.tag:08X} undefined, no delimiter", \
                self.replace(el.length_at, el.length_at + 4, struct.pack(fmt, UNDEFINED))
        if r < 0.8 and el.vr == b"SQ":  # UN over the sequence
            return f"sq {el.tag:08X} as UN", self.replace(el.offset + 4, el.offset + 6, b"UN")
        # items of undefined length, no item delimiter
        items = [x for x in self.body if x.tag == ITEM and el.offset < x.offset < el.end]
        if not items:
            return None
        it = self.rng.choice(items)
        return f"item in {el.tag:08X} undefined", \
            self.replace(it.length_at, it.length_at + 4, struct.pack(fmt, UNDEFINED))

    def duplicate(self):
        el = self.pick(lambda el: el.tag not in (ITEM, ITEM_END, SEQ_END) and el.length != UNDEFINED
                       and el.length < 100000)
        if el is None:
            return None
        chunk = self.data[el.offset:el.end]
        peers = [x for x in self.body if x.depth == el.depth and x.parents == el.parents
                 and x.tag not in (ITEM, ITEM_END, SEQ_END)]
        r = self.rng.random()
        if r < 0.4:
            return f"duplicate {el.tag:08X}", self.replace(el.end, el.end, chunk, el.parents)
        other = self.rng.choice(peers)
        if r < 0.7 and other.offset < el.offset:  # move earlier: unsorted
            data = self.replace(el.offset, el.end, b"", el.parents)
            self.data, saved = data, self.data
            try:
                return f"move {el.tag:08X} before {other.tag:08X}", \
                    self.replace(other.offset, other.offset, chunk, other.parents)
            finally:
                self.data = saved
        return f"copy {el.tag:08X} before {other.tag:08X}", \
            self.replace(other.offset, other.offset, chunk, other.parents)

    def syntax(self):
        el = self.lay.syntax_at
        new = self.rng.choice(TRANSFER_SYNTAXES).encode()
        if len(new) % 2:
            new += b"\0"
        if el is None:
            return None
        head = self.data[el.offset:el.offset + 6] + struct.pack("<H", len(new))
        return f"syntax -> {new!r}", self.replace(el.offset, el.end, head + new, (), meta=True)

    def preamble(self):
        r = self.rng.random()
        if self.lay.meta_end == 0:
            return None
        if r < 0.3:
            return "no preamble", self.data[128:]
        if r < 0.5:
            return "no DICM", self.data[:128] + self.data[132:]
        if r < 0.7:
            return "no meta", self.data[self.lay.meta_end:]
        if r < 0.85:
            return "preamble+DICM only removed", self.data[132:]
        return "meta without group length", self._drop_meta_element(0x00020000)

    def _drop_meta_element(self, tag: int) -> bytes | None:
        for el in self.lay.elems:
            if el.meta and el.tag == tag:
                return self.data[:el.offset] + self.data[el.end:]
        return self.data

    def splice(self):
        donor = layout(self.donor)
        pool = [el for el in donor.elems if not el.meta and el.length != UNDEFINED
                and el.tag not in (ITEM, ITEM_END, SEQ_END) and el.end - el.offset < 200000]
        if not pool:
            return None
        gift = self.rng.choice(pool)
        chunk = self.donor[gift.offset:gift.end]
        # at the place of the same tag (replace), or where it sorts, at the top level
        top = [el for el in self.body if el.depth == 0]
        same = [el for el in self.body if el.tag == gift.tag]
        if same and self.rng.random() < 0.6:
            el = self.rng.choice(same)
            return f"splice {gift.tag:08X} over", self.replace(el.offset, el.end, chunk, el.parents)
        after = [el for el in top if el.tag > gift.tag]
        at = after[0].offset if after else len(self.data)
        if self.rng.random() < 0.3 and self.body:
            el = self.rng.choice(self.body)
            return f"splice {gift.tag:08X} anywhere", \
                self.replace(el.offset, el.offset, chunk, el.parents)
        return f"splice {gift.tag:08X} sorted", self.replace(at, at, chunk)

    def charset(self):
        value = self.rng.choice(CHARSETS)
        if len(value) % 2:
            value += b" "
        el = self.pick(lambda el: el.tag == 0x00080005)
        implicit = self.lay.implicit
        e = "<" if self.lay.little else ">"
        head = struct.pack(e + "HH", 8, 5) + (struct.pack(e + "I", len(value)) if implicit else
                                             b"CS" + struct.pack(e + "H", len(value)))
        if el is not None:
            return f"charset -> {value!r}", \
                self.replace(el.offset, el.end, head + value, el.parents)
        top = [x for x in self.body if x.depth == 0 and x.tag > 0x00080005]
        if not top:
            return None
        return f"charset + {value!r}", self.replace(top[0].offset, top[0].offset, head + value)

    def text(self):
        el = self.pick(lambda el: (el.vr in TEXT_VRS or (el.vr is None and el.length < 200))
                       and 0 < el.length < 10000 and el.length != UNDEFINED)
        if el is None:
            return None
        value = bytearray(self.data[el.offset + el.header:el.end])
        bad = self.rng.choice(BAD_TEXT)
        at = self.rng.randrange(len(value) + 1)
        if self.rng.random() < 0.5:  # same length
            value[at:at + len(bad)] = bad
            value = value[:el.length]
            return f"text {el.tag:08X} overwrite {bad!r}", \
                self.replace(el.offset + el.header, el.end, bytes(value), el.parents)
        value[at:at] = bad
        if len(value) % 2:
            value += b" "
        e = "<" if el.little else ">"
        fmt = e + ("I" if el.length_size == 4 else "H")
        data = self.replace(el.offset + el.header, el.end, bytes(value), el.parents)
        self.data, saved = data, self.data
        try:
            return f"text {el.tag:08X} insert {bad!r}", \
                self.replace(el.length_at, el.length_at + el.length_size,
                             struct.pack(fmt, len(value)))
        finally:
            self.data = saved

    def private(self):
        creators = [el for el in self.body if el.tag >> 16 & 1 and 0x10 <= el.tag & 0xFFFF <= 0xFF]
        privates = [el for el in self.body if el.tag >> 16 & 1 and el.tag & 0xFFFF > 0xFF]
        r = self.rng.random()
        if creators and r < 0.3:
            el = self.rng.choice(creators)
            value = self.rng.choice([b"", b"SIEMENS CSA HEADER", b"GEMS_IDEN_01", b"\xff\xfe",
                                     b"A" * 64, b"ELSCINT1", b"CTP", b"PHILIPS MR IMAGING DD 001"])
            if len(value) % 2:
                value += b" "
            e = "<" if el.little else ">"
            fmt = e + ("I" if el.length_size == 4 else "H")
            head = self.data[el.offset:el.length_at] + struct.pack(fmt, len(value))
            return f"creator {el.tag:08X} -> {value[:20]!r}", \
                self.replace(el.offset, el.end, head + value, el.parents)
        if creators and r < 0.5:
            el = self.rng.choice(creators)
            return f"creator {el.tag:08X} removed", self.replace(el.offset, el.end, b"", el.parents)
        if privates and r < 0.7:  # a private element moved to another block
            el = self.rng.choice(privates)
            number = (self.rng.choice([0x10, 0x11, 0x20, 0xFF, 0x01]) << 8) | (el.tag & 0xFF)
            new = struct.pack(("<" if el.little else ">") + "H", number)
            return f"private {el.tag:08X} block -> {number:04X}", \
                self.replace(el.offset + 2, el.offset + 4, new)
        # a private block with an identity-looking value, no creator or a creator
        el = self.pick(lambda el: el.depth == 0 and el.tag > 0x00100000)
        if el is None:
            return None
        e = "<" if el.little else ">"
        value = b"FUZZ^PRIVATE^NAME "
        if self.lay.implicit:
            chunk = struct.pack(e + "HHI", 0x0011, 0x1001, len(value)) + value
        else:
            chunk = struct.pack(e + "HH", 0x0011, 0x1001) + b"LO" + \
                struct.pack(e + "H", len(value)) + value
        return "private without creator", self.replace(el.offset, el.offset, chunk, el.parents)

    def long_value(self):
        el = self.pick(lambda el: el.vr in TEXT_VRS and el.length != UNDEFINED)
        if el is None:
            return None
        size = self.rng.choice([64, 65, 1024, 65534, 70000])
        if el.length_size == 2:
            size = min(size, 65534)
        value = (self.data[el.offset + el.header:el.end] or b"X") * (size // max(el.length, 1) + 1)
        value = value[:size]
        e = "<" if el.little else ">"
        fmt = e + ("I" if el.length_size == 4 else "H")
        head = self.data[el.offset:el.length_at] + struct.pack(fmt, len(value))
        return f"long {el.tag:08X} {size}", \
            self.replace(el.offset, el.end, head + value, el.parents)

    def nest(self):
        el = self.pick(lambda el: el.tag == ITEM and el.length != UNDEFINED)
        if el is None:
            return None
        depth = self.rng.choice([2, 10, 63, 70])
        e = "<" if el.little else ">"
        inner = self.data[el.offset:el.end]
        for _ in range(depth):
            if self.lay.implicit:
                sq = struct.pack(e + "HHI", 0x0040, 0xA730, len(inner))
            else:
                sq = struct.pack(e + "HH", 0x0040, 0xA730) + b"SQ\0\0" + \
                    struct.pack(e + "I", len(inner))
            body = sq + inner
            inner = struct.pack(e + "HHI", 0xFFFE, 0xE000, len(body)) + body
        return f"nest {depth} in item at {el.offset}", \
            self.replace(el.offset, el.end, inner, el.parents)

    def identity(self):
        """An identity element's header broken (the leak case: unreadable, yet released?)."""
        tags = {0x00100010, 0x00100020, 0x00100030, 0x00080050, 0x00080080, 0x00080090, 0x00101000,
                0x00101001, 0x00081070, 0x00081050}
        el = self.pick(lambda el: el.tag in tags)
        if el is None:
            return None
        r = self.rng.random()
        e = "<" if el.little else ">"
        if r < 0.25 and el.vr is not None:
            new_vr = self.rng.choice(VRS)
            return f"identity {el.tag:08X} vr {new_vr!r}", \
                self.replace(el.offset + 4, el.offset + 6, new_vr)
        if r < 0.5:
            value = self.rng.choice([el.length + 1, el.length - 1 if el.length else 1, 0xFFFF,
                                     el.length + 2, UNDEFINED & ((1 << 8 * el.length_size) - 1)])
            fmt = e + ("I" if el.length_size == 4 else "H")
            return f"identity {el.tag:08X} length {value}", \
                self.replace(el.length_at, el.length_at + el.length_size, struct.pack(fmt, value))
        if r < 0.7:
            bad = self.rng.choice(BAD_TEXT)
            value = bytearray(self.data[el.offset + el.header:el.end])
            at = self.rng.randrange(len(value) + 1)
            value[at:at + len(bad)] = bad
            value = value[:el.length]
            return f"identity {el.tag:08X} text {bad!r}", \
                self.replace(el.offset + el.header, el.end, bytes(value), el.parents)
        if r < 0.85:
            number = (el.tag & 0xFFFF) ^ self.rng.choice([1, 0x100])
            new = struct.pack(e + "HH", el.tag >> 16, number)
            return f"identity {el.tag:08X} tag", self.replace(el.offset, el.offset + 4, new)
        # the value moved into a sequence as UN of undefined length
        value = self.data[el.offset + el.header:el.end]
        chunk = struct.pack(e + "HH", el.tag >> 16, el.tag & 0xFFFF)
        chunk += (b"UN\0\0" + struct.pack(e + "I", len(value))) if el.vr is not None else \
            struct.pack(e + "I", len(value))
        return f"identity {el.tag:08X} as UN", \
            self.replace(el.offset, el.end, chunk + value, el.parents)

    def bytes_(self):
        """A few random bytes changed inside an element header."""
        el = self.pick()
        if el is None:
            return None
        data = bytearray(self.data)
        for _ in range(self.rng.choice([1, 1, 2, 3])):
            at = el.offset + self.rng.randrange(el.header)
            if at < len(data):
                data[at] = self.rng.randrange(256)
        return f"header bytes {el.tag:08X}", bytes(data)


MUTATIONS = ("tag", "vr", "length", "truncate", "delimiter", "undefined_sequence", "duplicate",
             "syntax", "preamble", "splice", "charset", "text", "private", "long_value", "nest",
             "identity", "identity", "identity", "bytes_")


def mutate(data: bytes, donor: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One to three mutations of ``data`` (elements may be spliced from ``donor``)."""
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        for _attempt in range(8):
            name = rng.choice(MUTATIONS)
            try:
                result = getattr(Mutator(data, rng, donor), name)()
            except (struct.error, IndexError, ValueError):
                result = None
            if result is not None:
                steps.append(result[0])
                data = result[1]
                break
    return "; ".join(steps) or "none", data


# ---------------------------------------------------------------------------------------- checks


def identity_values(data: bytes) -> dict[str, str]:
    """The file's identity strings (>= 4 characters) -> the keyword holding them."""
    import pydicom

    found: dict[str, str] = {}
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    except Exception:
        return found

    def visit(dataset, depth=0):
        if depth > 10:
            return
        for elem in list(dataset):
            try:
                if elem.VR == "SQ":
                    for item in elem.value:
                        visit(item, depth + 1)
                    continue
                if elem.keyword not in IDENTITY_KEYWORDS or elem.value in (None, ""):
                    continue
                values = elem.value if isinstance(elem.value, (list, tuple)) or \
                    type(elem.value).__name__ == "MultiValue" else [elem.value]
                for value in values:
                    text = str(value).strip()
                    parts = [text] + ([p.strip() for p in text.split("^") if len(p.strip()) >= 5]
                                      if elem.VR == "PN" else [])
                    for part in parts:
                        if len(part) >= 4 and part.strip("0 .-") and not part.isspace():
                            found.setdefault(part, elem.keyword)
            except Exception:
                continue

    visit(ds)
    return found


def released_text(data: bytes) -> tuple[str, list[str], str]:
    """(decoded text of the released values, values that do not fit their VR, read error)."""
    import pydicom
    from pydicom import config
    from pydicom.valuerep import validate_value

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:
        return "", [], type(exc).__name__
    texts, bad = [], []

    def visit(dataset, path, depth=0):
        for elem in dataset:
            where = f"{path}({elem.tag.group:04X},{elem.tag.element:04X})"
            if elem.VR == "SQ":
                for i, item in enumerate(elem.value):
                    visit(item, f"{where}[{i}].", depth + 1)
                continue
            value = elem.value
            if isinstance(value, (bytes, bytearray)):
                continue
            texts.append(str(value))
            values = value if type(value).__name__ == "MultiValue" else [value]
            for v in values:
                try:
                    validate_value(elem.VR, v, config.RAISE)
                except Exception as exc:
                    bad.append(f"{where} {elem.VR} {type(exc).__name__}")
                    break

    try:
        visit(ds, "")
    except Exception as exc:
        return "\n".join(texts), bad, f"walk {type(exc).__name__}"
    return "\n".join(texts), bad, ""


def _norm_bad(bad: list[str]) -> set[str]:
    """Problems by tag and VR, without item indexes (mutations move items)."""
    import re

    return {re.sub(r"\[\d+\]", "[]", b) for b in bad}


def leaks(data: bytes, identity: dict[str, str], text: str) -> dict[str, str]:
    """The identity strings in released bytes (raw) or their decoded text -> keyword."""
    found = {}
    for value, keyword in identity.items():
        for encoding in ("utf-8", "latin-1"):
            try:
                raw = value.encode(encoding)
            except UnicodeEncodeError:
                continue
            if raw in data:
                found[value] = keyword
                break
        else:
            if value in text:
                found[value] = keyword
    return found


# ---------------------------------------------------------------------------------------- worker


@dataclasses.dataclass
class Source:
    """A corpus file, its identity strings, and what its unmutated release holds."""

    path: Path
    data: bytes
    identity: dict[str, str]
    baseline: set[str]  # identity strings its clean release holds
    bad: set[str]  # VR problems of its clean release
    outcome: str


class Fuzzer:
    """One pipeline, the corpus, and what each source file's clean release holds."""

    def __init__(self, args) -> None:
        from deid.keys import SecretKey
        from deid.pipeline import Pipeline
        from deid.profile.loader import load_profile

        self.args = args
        warnings.simplefilter("ignore")  # (pydicom's warnings about the mutated files)
        shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
        self.work = Path(tempfile.mkdtemp(prefix="fuzz-", dir=shm))
        self.pipeline = Pipeline(load_profile(args.profile), SecretKey(bytes(range(32))),
                                 out=self.work / "out", quarantine=self.work / "q", durable=False)
        self.files = corpus_files(Path(args.corpus), args.max_bytes)
        self.sources: dict[Path, Source] = {}
        self.out = Path(args.out)
        (self.out / "inputs").mkdir(parents=True, exist_ok=True)

    def source(self, path: Path) -> Source:
        if path not in self.sources:
            if len(self.sources) > 400:
                self.sources.clear()
            data = path.read_bytes()
            identity = identity_values(data)
            outcome = self.run(data)
            baseline, bad = set(), set()
            name = type(outcome).__name__
            if name == "Written":
                text, problems, _error = released_text(outcome.data)
                baseline = set(leaks(outcome.data, identity, text))
                bad = _norm_bad(problems)
            self.sources[path] = Source(path, data, identity, baseline, bad,
                                        name + ":" + getattr(outcome, "code", ""))
        return self.sources[path]

    def run(self, data: bytes):
        def alarm(signum, frame):
            raise Timeout()

        signal.signal(signal.SIGALRM, alarm)
        signal.alarm(self.args.timeout)
        try:
            return self.pipeline.deidentify_bytes(data)
        finally:
            signal.alarm(0)

    def case(self, n: int) -> tuple[str, Source, Source, bytes]:
        rng = random.Random(f"{self.args.seed}:{n}")
        groups = sorted({p.relative_to(self.args.corpus).parts[0] for p in self.files})
        group = rng.choice(groups)
        members = [p for p in self.files if p.relative_to(self.args.corpus).parts[0] == group]
        src = self.source(rng.choice(members))
        donor = self.source(rng.choice(self.files))
        description, data = mutate(src.data, donor.data, rng)
        return description, src, donor, data

    def check(self, n: int) -> tuple[list[dict], bytes, str]:
        """Mutation ``n`` through the pipeline: its findings, its bytes, its outcome's label."""
        description, src, donor, data = self.case(n)
        findings = []
        base = {"n": n, "seed": self.args.seed, "source": str(src.path), "mutation": description,
                "clean": src.outcome}
        started = time.monotonic()
        try:
            outcome = self.run(data)
        except Timeout:
            return [{**base, "kind": "hang"}], data, "hang"
        except BaseException as exc:  # noqa: BLE001
            finding = {**base, "kind": "exception", "exception": type(exc).__name__}
            return [finding], data, "exception"
        seconds = time.monotonic() - started
        name = type(outcome).__name__
        if name == "Quarantined":
            label = f"Q:{outcome.code}"
            if outcome.code == "internal-error":
                findings.append({**base, "kind": "internal-error", "reason": outcome.reason()})
            reason_text = json.dumps(outcome.reason())
            identity = {**donor.identity, **src.identity}
            for value, keyword in identity.items():
                if len(value) >= 5 and value in reason_text:
                    findings.append({**base, "kind": "reason-value", "keyword": keyword,
                                     "reason": outcome.reason()})
            self.messages[(outcome.code, outcome.stage, outcome.message)] += 1
        else:
            label = "W"
            text, bad, error = released_text(outcome.data)
            if error:
                findings.append({**base, "kind": "unreadable-output", "error": error})
            new_bad = _norm_bad(bad) - src.bad - donor.bad
            if new_bad:  # what the mutated input already had is let through (not added by deid)
                new_bad -= _norm_bad(released_text(data)[1])
            if new_bad:
                findings.append({**base, "kind": "bad-value", "problems": sorted(new_bad)[:5]})
            identity = dict(src.identity)
            if description.count("splice"):
                identity.update({k: v for k, v in donor.identity.items()
                                 if k not in donor.baseline})
            leaked = {v: k for v, k in leaks(outcome.data, identity, text).items()
                      if v not in src.baseline}
            if leaked and src.outcome.startswith("Written"):
                # a donor's string the unmutated source's release holds too is a coincidence (a
                # generalised date, a word of a method's meaning), not what the splice brought
                clean = self.run(src.data)
                clean_text = released_text(clean.data)[0]
                leaked = {v: k for v, k in leaked.items() if not leaks(clean.data, {v: k}, clean_text)}
            if leaked:
                findings.append({**base, "kind": "leak", "keywords": sorted(set(leaked.values())),
                                 "values": len(leaked)})
        if seconds > self.args.timeout / 2:
            findings.append({**base, "kind": "slow", "seconds": round(seconds, 2)})
        return findings, data, label

    def work_until(self, start: int, deadline: float, stop: int) -> None:
        self.messages: Counter = Counter()
        outcomes: Counter = Counter()
        progress = self.out / "progress"
        n = start
        with open(self.out / "findings.jsonl", "a") as log:
            while time.time() < deadline and n < stop:
                progress.write_text(str(n))
                findings, data, label = self.check(n)
                outcomes[label] += 1
                for finding in findings:
                    digest = hashlib.sha256(data).hexdigest()[:16]
                    (self.out / "inputs" / f"{n}-{digest}.dcm").write_bytes(data)
                    finding["input"] = f"inputs/{n}-{digest}.dcm"
                    log.write(json.dumps(finding, default=str) + "\n")
                    log.flush()
                n += 1
                if n % 200 == 0:
                    _clear(self.work / "q")
        progress.write_text(f"done {n}")
        _clear(self.work)  # (the pipeline's quarantine and output: copies of corpus files)
        stats = self.out / "stats.jsonl"
        with open(stats, "a") as handle:
            handle.write(json.dumps({"start": start, "end": n, "outcomes": outcomes,
                                     "messages": [[*k, v] for k, v in self.messages.items()]})
                         + "\n")


def _clear(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def corpus_files(corpus: Path, max_bytes: int) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.stat().st_size <= max_bytes)


def parent(args) -> int:
    """Run workers until the time is up; a worker that dies leaves a ``crash`` finding."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + args.seconds
    n = args.start
    stop = args.start + args.count if args.count else 1 << 62
    started = time.time()
    while time.time() < deadline and n < stop:
        cmd = [sys.executable, __file__, "--worker", "--start", str(n), "--deadline", str(deadline),
               "--stop", str(stop), "--corpus", args.corpus, "--seed", str(args.seed), "--out",
               args.out, "--timeout", str(args.timeout), "--max-bytes", str(args.max_bytes),
               "--profile", args.profile]
        code = subprocess.call(cmd)
        text = (out / "progress").read_text()
        if text.startswith("done"):
            n = int(text.split()[1])
            break
        crashed = int(text)
        with open(out / "findings.jsonl", "a") as log:
            log.write(json.dumps({"n": crashed, "seed": args.seed, "kind": "crash",
                                  "returncode": code}) + "\n")
        n = crashed + 1
    seconds = time.time() - started
    print(f"ran mutations {args.start}..{n - 1} ({n - args.start}) in {seconds:.0f} s; "
          f"findings in {out / 'findings.jsonl'}")
    return 0


def replay(args) -> int:
    fuzzer = Fuzzer(args)
    fuzzer.messages = Counter()
    for n in args.replay:
        description, src, _donor, data = fuzzer.case(n)
        findings, data, label = fuzzer.check(n)
        print(n, src.path, description, "->", label)
        for finding in findings:
            print("  ", json.dumps(finding, default=str))
        if args.save:
            Path(args.save).write_bytes(data)
    _clear(fuzzer.work)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="/tmp/eqc",
                        help="folder of DICOM files (default /tmp/eqc)")
    parser.add_argument("--seed", type=int, default=1, help="mutation seed (default 1)")
    parser.add_argument("--seconds", type=float, default=60, help="time budget (default 60)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many mutations")
    parser.add_argument("--start", type=int, default=0, help="first mutation number (default 0)")
    parser.add_argument("--out", default="/tmp/fuzz", help="findings folder (default /tmp/fuzz)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one object may take")
    parser.add_argument("--max-bytes", type=int, default=3_000_000, help="skip larger corpus files")
    parser.add_argument("--profile", default="vghtpe")
    parser.add_argument("--replay", type=int, nargs="*",
                        help="run these mutation numbers again, and print their outcomes")
    parser.add_argument("--save", help="with one --replay: write its mutated bytes here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--stop", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replay is not None:
        return replay(args)
    if args.worker:
        Fuzzer(args).work_until(args.start, args.deadline, args.stop)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
