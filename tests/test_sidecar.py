"""deid.sidecar: what each side-car field becomes, and what makes a side-car unreleasable."""

from __future__ import annotations

import csv
import io
import json

import pytest
from pydicom.uid import CTImageStorage

from deid.engine.uids import UidRemapper
from deid.errors import ObjectError
from deid.keys import SecretKey
from deid.sidecar import SidecarRewriter, sidecar_kind
from deid.synthetic import four_phase_ct
from deid.synthetic.fused import lung_patient
from deid.synthetic.sidecars import voc_xml

UID = "1.3.6.1.4.1.14519.5.2.1.6655.2359.1234"


@pytest.fixture
def rewriter(key: SecretKey) -> SidecarRewriter:
    return SidecarRewriter(UidRemapper(key), key)


@pytest.fixture
def new(key: SecretKey):
    return UidRemapper(key).remap


def _voc(body: str) -> bytes:
    return f"<annotation>\n\t{body}\n</annotation>\n".encode()


def test_only_named_suffixes_are_sidecars_and_dicom_never_is() -> None:
    assert sidecar_kind("a.XML", b"<annotation/>") == "voc"
    assert sidecar_kind("a.tsv", b"x") == "csv" and sidecar_kind("a.json", b"{}") == "json"
    assert sidecar_kind("a.txt", b"x") is None and sidecar_kind("a.dcm", b"x") is None
    assert sidecar_kind("a.json", b"\0" * 128 + b"DICM....") is None


def test_voc_fields_become_new_uids_and_names(rewriter: SidecarRewriter, new) -> None:
    data = _voc(f"<folder>{UID}</folder><filename>{UID}.dcm</filename><path>C:\\Cases\\CHEN\\{UID}.dcm</path>")
    sidecar = rewriter.rewrite(f"{UID}.xml", data)
    assert sidecar.name == f"{new(UID)}.xml" and sidecar.kind == "voc" and sidecar.uids == 3
    text = sidecar.data.decode()
    assert f"<folder>{new(UID)}</folder>" in text and f"<filename>{new(UID)}.dcm</filename>" in text
    assert f"<path>{new(UID)}.dcm</path>" in text and "CHEN" not in text and UID not in text


def test_a_voc_path_to_a_file_not_named_by_uid_becomes_the_image_new_name(rewriter: SidecarRewriter, new) -> None:
    data = _voc(f"<folder>CHEN MEI-LING</folder><path>/data/CHEN/1-23.dcm</path><filename>{UID}</filename>")
    text = rewriter.rewrite("tumour.xml", data).data.decode()
    assert f"<path>{new(UID)}.dcm</path>" in text and "<folder></folder>" in text and "CHEN" not in text


def test_a_voc_named_by_its_image_uid_gives_other_names_the_image_new_name(rewriter: SidecarRewriter,
                                                                          new) -> None:
    data = _voc("<folder>Lung_Dx-A0001</folder><filename>1-23.dcm</filename><path>/d/A0001/1-23.dcm</path>")
    text = rewriter.rewrite(f"{UID}.xml", data).data.decode()
    assert f"<filename>{new(UID)}.dcm</filename>" in text and f"<path>{new(UID)}.dcm</path>" in text
    assert "A0001" not in text and "1-23" not in text
    with pytest.raises(ObjectError) as caught:
        rewriter.rewrite("tumour.xml", data)
    assert caught.value.code == "sidecar-no-image-reference"


def test_voc_comments_are_dropped_and_attributes_or_stray_text_refused(rewriter: SidecarRewriter) -> None:
    text = rewriter.rewrite(f"{UID}.xml", _voc("<!-- reviewed with CHEN MEI-LING --><segmented>0</segmented>"))
    assert b"CHEN" not in text.data
    for body in ('<segmented by="CHEN">0</segmented>', "CHEN<segmented>0</segmented>",
                 "<object><name>A</name><note>CHEN</note></object>", "<segmented><x>1</x></segmented>"):
        with pytest.raises(ObjectError) as caught:
            rewriter.rewrite(f"{UID}.xml", _voc(body))
        assert caught.value.code == "sidecar-unknown-field" and "CHEN" not in caught.value.path


def test_voc_numbers_must_be_numbers(rewriter: SidecarRewriter) -> None:
    with pytest.raises(ObjectError) as caught:
        rewriter.rewrite(f"{UID}.xml", _voc("<size><width>A123456789</width></size>"))
    assert caught.value.code == "sidecar-bad-value" and caught.value.path == "annotation/size/width"


def test_the_builder_voc_round_trips_everything_but_identity(rewriter: SidecarRewriter, key) -> None:
    patient = lung_patient("G", 2)
    image = four_phase_ct(patient, slices=1, size=32)["P"][0]
    source = voc_xml(image, patient)
    out = rewriter.rewrite(f"{image.SOPInstanceUID}.xml", source.encode()).data.decode()
    assert out.count("\n") == source.count("\n") and "<bndbox>" in out and "<name>G</name>" in out
    assert patient.patient_id not in out and patient.display_name not in out


def test_csv_keeps_its_dialect_and_remaps_only_instance_uids(rewriter: SidecarRewriter, new) -> None:
    data = (f"SOP Instance UID;SOPClassUID;Landmark;X (mm);z\r\n{UID};{CTImageStorage};\"apex; left\";1.5;-2\r\n"
            ).encode()
    sidecar = rewriter.rewrite("points.csv", data)
    assert sidecar.data.decode() == (f"SOP Instance UID;SOPClassUID;Landmark;X (mm);z\r\n"
                                     f"{new(UID)};{CTImageStorage};\"apex; left\";1.5;-2\r\n")
    assert sidecar.name.startswith("csv-") and sidecar.name.endswith(".csv")


def test_content_named_outputs_depend_on_the_key_not_on_the_input_name(key: SecretKey) -> None:
    data = f"SOPInstanceUID,x\n{UID},1\n".encode()
    one = SidecarRewriter(UidRemapper(key), key)
    other_key = SecretKey(bytes(range(1, 33)))
    assert one.rewrite("CHEN.csv", data).name == one.rewrite("a/b.csv", data).name
    assert one.rewrite("CHEN.csv", data).name != SidecarRewriter(UidRemapper(other_key), other_key).rewrite(
        "CHEN.csv", data).name
    assert one.rewrite(f"{UID}.csv", data).name == f"{UidRemapper(key).remap(UID)}.csv"


def test_json_lists_nested_uids_and_coordinates(rewriter: SidecarRewriter, new) -> None:
    data = json.dumps([{"ReferencedSOPInstanceUIDs": [UID, UID], "bbox": [[1, 2], [3, 4.5]],
                        "label": "nodule", "frame": "3"}]).encode()
    out = json.loads(rewriter.rewrite("boxes.json", data).data)
    assert out == [{"ReferencedSOPInstanceUIDs": [new(UID), new(UID)], "bbox": [[1, 2], [3, 4.5]],
                    "label": "nodule", "frame": "3"}]


@pytest.mark.parametrize(("data", "code"), [
    (b'{"SOPInstanceUID": "%s", "x": true}' % UID.encode(), "sidecar-bad-value"),
    (b'{"SOPInstanceUID": "%s", "comment": "CHEN"}' % UID.encode(), "sidecar-unknown-field"),
    (b'{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "CHEN"}]}}', "sidecar-unknown-field"),
    (b'{"x": 1}', "sidecar-unknown-format"),
    (b"[1, 2", "sidecar-unknown-format"),
    (b'{"SOPInstanceUID": "CHEN^MEI"}', "sidecar-bad-value"),
])
def test_json_that_cannot_be_released(rewriter: SidecarRewriter, data: bytes, code: str) -> None:
    with pytest.raises(ObjectError) as caught:
        rewriter.rewrite("list.json", data)
    assert caught.value.code == code and "CHEN" not in caught.value.message + caught.value.path


@pytest.mark.parametrize("suffix, delimiter", [(".csv", ","), (".tsv", "\t")])
def test_csv_cells_that_a_spreadsheet_would_run_are_made_text(
    rewriter: SidecarRewriter, new, suffix: str, delimiter: str
) -> None:
    rows = [["SOPInstanceUID", "label", "x", "y"],
            [UID, '=HYPERLINK("http://x.example/?q=1","open")', "-12.5", "+3"],
            [UID, "@SUM(1+1)", "-.5", "4"], [UID, "-1+cmd", "1e-3", "-7"], [UID, "apex", "1", "2"]]
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator="\n").writerows(rows)
    out = rewriter.rewrite("points" + suffix, text.getvalue().encode()).data.decode()
    cells = list(csv.reader(io.StringIO(out), delimiter=delimiter))
    assert cells[0] == rows[0]
    assert [row[1] for row in cells[1:]] == ["'" + row[1] for row in rows[1:-1]] + ["apex"]
    assert [row[2:] for row in cells[1:]] == [row[2:] for row in rows[1:]]  # numbers stay numbers
    assert {row[0] for row in cells[1:]} == {new(UID)}


LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE annotation [\n <!ENTITY lol "lol">\n'
          + "".join(f' <!ENTITY lol{i} "{("&lol%s;" % (i - 1 or "")) * 10}">\n' for i in range(1, 10))
          + ']>\n<annotation><folder>&lol9;</folder></annotation>\n')


@pytest.mark.parametrize("text", [
    LAUGHS,  # billion laughs: 10^9 "lol" if expanded
    ('<!DOCTYPE annotation [<!ENTITY who SYSTEM "file:///etc/hostname">]>\n'
    "<annotation><folder>&who;</folder></annotation>\n"),  # an external entity (a local file)
    ('<!DOCTYPE annotation [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>\n'
    "<annotation/>\n"),  # an external parameter entity (a network fetch)
    '<!DOCTYPE annotation SYSTEM "http://127.0.0.1:9/voc.dtd">\n<annotation/>\n',  # external DTD
    "<!DOCTYPE annotation>\n<annotation/>\n",  # a DOCTYPE alone
], ids=["billion-laughs", "external-entity", "parameter-entity", "external-dtd", "doctype"])
def test_voc_with_a_dtd_is_refused_by_defusedxml_before_any_expansion(
        rewriter: SidecarRewriter, text: str) -> None:
    with pytest.raises(ObjectError) as caught:
        rewriter.rewrite(f"{UID}.xml", text.encode())
    assert caught.value.code == "sidecar-unknown-format"
    assert "DOCTYPE or entities" in caught.value.message


def test_voc_that_is_not_xml_is_refused_as_such(rewriter: SidecarRewriter) -> None:
    with pytest.raises(ObjectError) as caught:
        rewriter.rewrite(f"{UID}.xml", b"<annotation><folder></annotation>")
    assert caught.value.code == "sidecar-unknown-format" and "not well-formed" in caught.value.message
