"""Generate ``data/iod_types_dicom3tools_20241220.json`` from the dicom3tools IOD/module JSON.

Usage::

    python -m deid.standard.generate_iod_types SRC DST

SRC is ``iod_modules_dicom3tools_20241220.json`` (all 128 composite IODs of dicom3tools, 332
modules; see ``data/README.md``). DST is the compact file read by :mod:`deid.standard.iod_types`.

What the conversion does (everything else is copied as is):

* tags and sequence paths become 8-hex-digit strings (``"0010,0010"`` -> ``"00100010"``, path
  ``"(0040,A730)>(0040,A043)"`` -> ``"0040A730>0040A043"``); keywords are dropped;
* repeating groups ``(50xx,eeee)`` / ``(60xx,eeee)`` are stored with group 5000 / 6000; the reader
  masks an element's group to look them up;
* a collapsed Code Sequence Macro row (``macro:CodeSequenceMacro``) is expanded into the attributes
  of the Basic Code Sequence Macro (PS3.3 Table 8.8-1a) under the enclosing path: Code Value 1C,
  Coding Scheme Designator 1C, Coding Scheme Version 1C, Code Meaning 1, Long Code Value 1C,
  URN Code Value 1C; for ``macro:CodeSequenceMeaningOptionalMacro`` Code Meaning is Type 3. The
  Enhanced Encoding Mode attributes and the Equivalent Code Sequence (all Type 3 or conditional
  on Enhanced Encoding) are not added;
* the cut recursion of the SR Document Relationship Macro
  (``...recursive:DocumentRelationshipMacro`` at path P) becomes: the macro's own attributes at P
  (Observation DateTime 1C, Observation UID 3, Content Sequence 1C; PS3.3 Table C.17-6) plus a
  recursion point P in ``recursion``; the reader maps a path P + (0040,A730) x k + rest (k >= 1)
  to P + rest, i.e. deeper content items have the same attributes as the items at P;
* ``3C`` (one row: VL Image Window Center) is stored as ``3``;
* within a module, a (path, tag) that occurs twice keeps its strictest Type (1 < 1C < 2 < 2C < 3);
* SOP classes: the source lists them for only 35 IODs. The others get their SOP Class UIDs from the
  table below (PS3.4 Table B.5-1; UIDs as in pydicom 3.0.2's UID dictionary; checked against the
  SOPClassUID condition each IOD has in dicom3tools). dicom3tools profile variants of an IOD (IHE,
  dental media, ...) and PixelMed private IODs get no SOP class (``variant_of`` names the IOD that
  owns the SOP class), so that each SOP Class UID maps to exactly one IOD.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

CONTENT_SEQUENCE = "0040A730"
TYPE_ORDER = {"1": 0, "1C": 1, "2": 2, "2C": 3, "3": 4}

# PS3.3 Table 8.8-1a Basic Code Sequence Macro
_BASIC_CODE_SEQUENCE = (
    ("00080100", "1C"),  # Code Value
    ("00080102", "1C"),  # Coding Scheme Designator
    ("00080103", "1C"),  # Coding Scheme Version
    ("00080104", "1"),  # Code Meaning
    ("00080119", "1C"),  # Long Code Value
    ("00080120", "1C"),  # URN Code Value
)
MACROS = {
    "macro:CodeSequenceMacro": _BASIC_CODE_SEQUENCE,
    "macro:CodeSequenceMeaningOptionalMacro": tuple(
        (tag, "3" if tag == "00080104" else typ) for tag, typ in _BASIC_CODE_SEQUENCE
    ),
}
# PS3.3 Table C.17-6 Document Relationship Macro (its recursive part is the recursion point)
DOCUMENT_RELATIONSHIP = (
    ("0040A032", "1C"),  # Observation DateTime
    ("0040A171", "3"),  # Observation UID
    (CONTENT_SEQUENCE, "1C"),  # Content Sequence
)

# IOD -> SOP Class UIDs, for the IODs whose SOP classes the source does not list.
SUPPLEMENT_SOP_CLASSES: dict[str, tuple[str, ...]] = {
    "USMultiFrameImage": ("1.2.840.10008.5.1.4.1.1.3.1",),
    "StandaloneOverlay": ("1.2.840.10008.5.1.4.1.1.8",),  # retired
    "StandaloneCurve": ("1.2.840.10008.5.1.4.1.1.9",),  # retired
    "StandaloneModalityLUT": ("1.2.840.10008.5.1.4.1.1.10",),  # retired
    "StandaloneVOILUT": ("1.2.840.10008.5.1.4.1.1.11",),  # retired
    "SpatialFiducials": ("1.2.840.10008.5.1.4.1.1.66.2",),
    "EncapsulatedCDA": ("1.2.840.10008.5.1.4.1.1.104.2",),
    "EncapsulatedSTL": ("1.2.840.10008.5.1.4.1.1.104.3",),
    "RealWorldValueMapping": ("1.2.840.10008.5.1.4.1.1.67",),
    "IVOCTImage": ("1.2.840.10008.5.1.4.1.1.14.1", "1.2.840.10008.5.1.4.1.1.14.2"),
    "LegacyConvertedEnhancedCTImage": ("1.2.840.10008.5.1.4.1.1.2.2",),
    "DXImageForProcessing": ("1.2.840.10008.5.1.4.1.1.1.1.1",),
    "MammographyImageForProcessing": ("1.2.840.10008.5.1.4.1.1.1.2.1",),
    "MammographyImageForPresentation": ("1.2.840.10008.5.1.4.1.1.1.2",),
    "IntraoralImageForProcessing": ("1.2.840.10008.5.1.4.1.1.1.3.1",),
    "IntraoralImageForPresentation": ("1.2.840.10008.5.1.4.1.1.1.3",),
    "BreastTomosynthesisImage": ("1.2.840.10008.5.1.4.1.1.13.1.3",),
    "BreastProjectionXRayImage": (
        "1.2.840.10008.5.1.4.1.1.13.1.4",
        "1.2.840.10008.5.1.4.1.1.13.1.5",
    ),
    "BasicDirectory": ("1.2.840.10008.1.3.10",),  # DICOMDIR (Media Storage SOP Class UID)
    "EnhancedMRColorImage": ("1.2.840.10008.5.1.4.1.1.4.3",),
    "MRSpectroscopy": ("1.2.840.10008.5.1.4.1.1.4.2",),
    "RawData": ("1.2.840.10008.5.1.4.1.1.66",),
    "LegacyConvertedEnhancedMRImage": ("1.2.840.10008.5.1.4.1.1.4.4",),
    "TractographyResults": ("1.2.840.10008.5.1.4.1.1.66.6",),
    "LegacyConvertedEnhancedPETImage": ("1.2.840.10008.5.1.4.1.1.128.1",),
    "RTBrachyTreatmentRecord": ("1.2.840.10008.5.1.4.1.1.481.6",),
    "RTTreatmentSummaryRecord": ("1.2.840.10008.5.1.4.1.1.481.7",),
    "RTIonBeamsTreatmentRecord": ("1.2.840.10008.5.1.4.1.1.481.9",),
    "ColorSoftcopyPresentationState": ("1.2.840.10008.5.1.4.1.1.11.2",),
    "PseudoColorSoftcopyPresentationState": ("1.2.840.10008.5.1.4.1.1.11.3",),
    "BlendingSoftcopyPresentationState": ("1.2.840.10008.5.1.4.1.1.11.4",),
    "AdvancedBlendingSoftcopyPresentationState": ("1.2.840.10008.5.1.4.1.1.11.8",),
    "HangingProtocol": ("1.2.840.10008.5.1.4.38.1",),
    "ColorPalette": ("1.2.840.10008.5.1.4.39.1",),
    "BasicStructuredDisplay": ("1.2.840.10008.5.1.4.1.1.131",),
    "MammographyCADSR": ("1.2.840.10008.5.1.4.1.1.88.50",),
    "ChestCADSR": ("1.2.840.10008.5.1.4.1.1.88.65",),
    "ProcedureLog": ("1.2.840.10008.5.1.4.1.1.88.40",),
    "RadiopharmaceuticalRadiationDoseSR": ("1.2.840.10008.5.1.4.1.1.88.68",),
    "SpectaclePrescriptionReport": ("1.2.840.10008.5.1.4.1.1.78.6",),
    "AcquisitionContextSR": ("1.2.840.10008.5.1.4.1.1.88.71",),
    "EnhancedUltrasoundVolume": ("1.2.840.10008.5.1.4.1.1.6.2",),
    "PhotoacousticImage": ("1.2.840.10008.5.1.4.1.1.6.3",),
    "VLEndoscopicImage": ("1.2.840.10008.5.1.4.1.1.77.1.1",),
    "VLMicroscopicImage": ("1.2.840.10008.5.1.4.1.1.77.1.2",),
    "VLSlideCoordinatesMicroscopicImage": ("1.2.840.10008.5.1.4.1.1.77.1.3",),
    "VLPhotographicImage": ("1.2.840.10008.5.1.4.1.1.77.1.4",),
    "VideoEndoscopicImage": ("1.2.840.10008.5.1.4.1.1.77.1.1.1",),
    "VideoMicroscopicImage": ("1.2.840.10008.5.1.4.1.1.77.1.2.1",),
    "VideoPhotographicImage": ("1.2.840.10008.5.1.4.1.1.77.1.4.1",),
    "OphthalmicPhotography8BitImage": ("1.2.840.10008.5.1.4.1.1.77.1.5.1",),
    "OphthalmicPhotography16BitImage": ("1.2.840.10008.5.1.4.1.1.77.1.5.2",),
    "StereometricRelationship": ("1.2.840.10008.5.1.4.1.1.77.1.5.3",),
    "OphthalmicTomographyImage": ("1.2.840.10008.5.1.4.1.1.77.1.5.4",),
    "OphthalmicOpticalCoherenceTomographyEnFaceImage": ("1.2.840.10008.5.1.4.1.1.77.1.5.7",),
    "OphthalmicOpticalCoherenceTomographyBscanVolumeAnalysis": (
        "1.2.840.10008.5.1.4.1.1.77.1.5.8",
    ),
    "VLWholeSlideMicroscopyImage": ("1.2.840.10008.5.1.4.1.1.77.1.6",),
    "LensometryMeasurements": ("1.2.840.10008.5.1.4.1.1.78.1",),
    "AutorefractionMeasurements": ("1.2.840.10008.5.1.4.1.1.78.2",),
    "KeratometryMeasurements": ("1.2.840.10008.5.1.4.1.1.78.3",),
    "SubjectiveRefractionMeasurements": ("1.2.840.10008.5.1.4.1.1.78.4",),
    "VisualAcuityMeasurements": ("1.2.840.10008.5.1.4.1.1.78.5",),
    "OphthalmicAxialMeasurements": ("1.2.840.10008.5.1.4.1.1.78.7",),
    "IntraocularLensCalculations": ("1.2.840.10008.5.1.4.1.1.78.8",),
    "OphthalmicVisualFieldStaticPerimetryMeasurements": ("1.2.840.10008.5.1.4.1.1.80.1",),
    "DermoscopicPhotographyImage": ("1.2.840.10008.5.1.4.1.1.77.1.7",),
    "MicroscopyBulkSimpleAnnotations": ("1.2.840.10008.5.1.4.1.1.91.1",),
    "BasicVoice": ("1.2.840.10008.5.1.4.1.1.9.4.1",),
    "TwelveLeadECG": ("1.2.840.10008.5.1.4.1.1.9.1.1",),
    "GeneralECG": ("1.2.840.10008.5.1.4.1.1.9.1.2",),
    "AmbulatoryECG": ("1.2.840.10008.5.1.4.1.1.9.1.3",),
    "HemodynamicWaveform": ("1.2.840.10008.5.1.4.1.1.9.2.1",),
    "CardiacElectrophysiologyWaveform": ("1.2.840.10008.5.1.4.1.1.9.3.1",),
    "XRFImage": ("1.2.840.10008.5.1.4.1.1.12.2",),
    "EnhancedXAImage": ("1.2.840.10008.5.1.4.1.1.12.1.1",),
    "EnhancedXRFImage": ("1.2.840.10008.5.1.4.1.1.12.2.1",),
    "XRay3DAngiographicImage": ("1.2.840.10008.5.1.4.1.1.13.1.1",),
    "XRay3DCraniofacialImage": ("1.2.840.10008.5.1.4.1.1.13.1.2",),
}

# dicom3tools IODs that are profile variants (or private) of another IOD: no SOP class of their own.
VARIANTS: dict[str, str | None] = {
    "MammographyImageForProcessingIHEMammo": "MammographyImageForProcessing",
    "MammographyImageForProcessingIHEMammoPartialViewOption": "MammographyImageForProcessing",
    "MammographyImageForPresentationIHEMammo": "MammographyImageForPresentation",
    "MammographyImageForPresentationIHEMammoPartialViewOption": "MammographyImageForPresentation",
    "IntraoralImageForPresentationDentalMedia": "IntraoralImageForPresentation",
    "DXImageForPresentationDentalMedia": "DXImageForPresentation",
    "BreastTomosynthesisImageIHEDBT": "BreastTomosynthesisImage",
    "BasicDirectoryDental": "BasicDirectory",
    "AdvancedBlendingSoftcopyPresentationStateIDCVOIPaletteOpticalPath": (
        "AdvancedBlendingSoftcopyPresentationState"
    ),
    "KeyObjectSelectionDocumentIHEXDSIManifest": "KeyObjectSelectionDocument",
    "XRayRadiationDoseSRIHEREM": "XRayRadiationDoseSR",
    "EnhancedUltrasoundVolumeQTUS": "EnhancedUltrasoundVolume",
    # PixelMed private SOP classes: not mapped (private UIDs)
    "PrivatePixelMedLegacyConvertedEnhancedCTImage": "LegacyConvertedEnhancedCTImage",
    "PrivatePixelMedLegacyConvertedEnhancedMRImage": "LegacyConvertedEnhancedMRImage",
    "PrivatePixelMedLegacyConvertedEnhancedPETImage": "LegacyConvertedEnhancedPETImage",
}

_TAG = re.compile(r"^\(([0-9A-F]{2})([0-9A-Fx]{2}),([0-9A-F]{4})\)$")


def _tag(text: str) -> str:
    match = _TAG.match(text)
    if not match:
        raise ValueError(f"not a tag: {text!r}")
    high, low, element = match.groups()
    if low == "xx":
        if high not in ("50", "60"):
            raise ValueError(f"unexpected repeating group: {text!r}")
        low = "00"
    return high + low + element


def _path(text: str) -> str:
    return ">".join(_tag(part) for part in text.split(">")) if text else ""


def _type(text: str) -> str:
    text = {"3C": "3"}.get(text, text)
    if text not in TYPE_ORDER:
        raise ValueError(f"unexpected Type {text!r}")
    return text


def convert_module(name: str, rows: list[list]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """``{path: {tag: type}}`` of one module (strictest Type on duplicates), recursion points."""
    out: dict[tuple[str, str], str] = {}
    recursion: list[str] = []

    def add(path: str, tag: str, typ: str) -> None:
        key = (path, tag)
        if key not in out or TYPE_ORDER[typ] < TYPE_ORDER[out[key]]:
            out[key] = typ

    for row in rows:
        path_text, tag_text, _keyword, type_text = row[:4]
        path = _path(path_text)
        if tag_text in MACROS:
            for tag, typ in MACROS[tag_text]:
                add(path, tag, typ)
        elif tag_text == "...recursive:DocumentRelationshipMacro":
            if not path.endswith(CONTENT_SEQUENCE):
                raise ValueError(f"{name}: recursion point not in a Content Sequence: {path_text}")
            recursion.append(path)
            for tag, typ in DOCUMENT_RELATIONSHIP:
                add(path, tag, typ)
        elif tag_text.startswith(("macro:", "...")):
            raise ValueError(f"{name}: unknown collapsed row {tag_text!r}")
        else:
            add(path, _tag(tag_text), _type(type_text))
    grouped: dict[str, dict[str, str]] = {}
    for (path, tag), typ in out.items():
        grouped.setdefault(path, {})[tag] = typ
    return grouped, recursion


def generate(source: dict) -> dict:
    about = source["_about"]
    modules: dict[str, dict[str, dict[str, str]]] = {}
    recursion: dict[str, list[str]] = {}
    for name, rows in source["modules"].items():
        modules[name], points = convert_module(name, rows)
        if points:
            recursion[name] = points

    iods: dict[str, dict] = {}
    owner: dict[str, str] = {}
    for name, iod in source["iods"].items():
        listed = tuple(sop["uid"] for sop in iod["sop_classes"])
        if name in VARIANTS:
            if listed:
                raise ValueError(f"{name}: listed as a variant but has SOP classes {listed}")
            uids: tuple[str, ...] = ()
        elif listed:
            if name in SUPPLEMENT_SOP_CLASSES and set(SUPPLEMENT_SOP_CLASSES[name]) != set(listed):
                raise ValueError(f"{name}: supplement disagrees with the source")
            uids = listed
        elif name in SUPPLEMENT_SOP_CLASSES:
            uids = SUPPLEMENT_SOP_CLASSES[name]
        else:
            raise ValueError(f"{name}: no SOP class in the source, the supplement or the variants")
        for uid in uids:
            if uid in owner:
                raise ValueError(f"SOP class {uid} in both {owner[uid]} and {name}")
            owner[uid] = name
        for module in iod["modules"]:
            if module["module"] not in modules:
                raise ValueError(f"{name}: unknown module {module['module']}")
        entry: dict = {
            "sop_classes": list(uids),
            "modules": [[m["ie"], m["module"], m["usage"]] for m in iod["modules"]],
        }
        if name in VARIANTS:
            entry["variant_of"] = VARIANTS[name]
        iods[name] = entry
    unused = set(SUPPLEMENT_SOP_CLASSES) - set(iods)
    if unused:
        raise ValueError(f"supplement names unknown IODs: {sorted(unused)}")

    return {
        "_about": {
            "source": about["source"],
            "commit": about["commit"],
            "files": about["files"],
            "standard_edition_note": about["standard_edition_note"],
            "acknowledgement": "DICOM PS3.3/PS3.4 content (c) NEMA; "
            "templates by David Clunie (dicom3tools)",
            "generated_by": "python -m deid.standard.generate_iod_types "
            "iod_modules_dicom3tools_20241220.json iod_types_dicom3tools_20241220.json",
            "format": {
                "iods": "name -> {sop_classes: [uid], modules: [[information entity, module, "
                "usage M/C/U]], variant_of?: IOD owning the SOP class}",
                "modules": "name -> {path: {tag: type}}: tag 8 hex digits, path '' or "
                "'>'-joined tags of the enclosing sequences (outermost first), type 1/1C/2/2C/3",
                "recursion": "module -> [path P]: P + (0040,A730) x k + rest (k >= 1) has the "
                "attributes of P + rest (SR Document Relationship Macro)",
                "repeating_groups": "(50xx,eeee)/(60xx,eeee) are stored with group 5000/6000",
            },
            "conversion": [
                "macro:CodeSequenceMacro -> Code Value 1C, Coding Scheme Designator 1C, Coding "
                "Scheme Version 1C, Code Meaning 1, Long Code Value 1C, URN Code Value 1C (PS3.3 "
                "Table 8.8-1a); macro:CodeSequenceMeaningOptionalMacro the same with Code "
                "Meaning 3",
                "...recursive:DocumentRelationshipMacro at P -> Observation DateTime 1C, "
                "Observation UID 3, Content Sequence 1C at P, and P recorded in 'recursion'",
                "Type 3C -> 3; duplicate (path, tag) in a module -> strictest Type",
                "SOP classes of IODs the source leaves without one: PS3.4 Table B.5-1 (UIDs as in "
                "pydicom 3.0.2); profile variants and PixelMed private IODs have none (variant_of)",
            ],
        },
        "iods": iods,
        "modules": modules,
        "recursion": recursion,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m deid.standard.generate_iod_types SRC DST", file=sys.stderr)
        return 2
    source = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    result = generate(source)
    text = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
    # one IOD / module path per line: small diffs, still compact
    text = text.replace('},"', '},\n"')
    if json.loads(text) != result:
        raise AssertionError("line breaking changed the data")
    Path(args[1]).write_text(text + "\n", encoding="utf-8")
    n_rows = sum(len(tags) for paths in result["modules"].values() for tags in paths.values())
    n_uids = sum(len(iod["sop_classes"]) for iod in result["iods"].values())
    print(
        f"{args[1]}: {len(result['iods'])} IODs, {n_uids} SOP classes, "
        f"{len(result['modules'])} modules, {n_rows} rows"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
