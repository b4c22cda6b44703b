"""Quarantine reason codes: what each means and what a person does about it (shown in reports)."""

from __future__ import annotations

#: reason code -> (what happened, what to do)
REASONS: dict[str, tuple[str, str]] = {
    "not-dicom": (
        ("The file is neither a DICOM Part 10 file (no DICM header) nor a bare Little Endian data set"
         " with SOP Class and SOP Instance UIDs."),
        "Check what the file is; remove it from the input if it is not an image.",
    ),
    "unreadable": (
        "The file is truncated or corrupt, or could not be read.",
        "Fetch the object again from the source (PACS or media) and re-run.",
    ),
    "too-deeply-nested": (
        ("Sequences in the object are nested more than 64 levels deep. No real image, structure "
         "set, segmentation or report nests that deep: the file is damaged, or made to exhaust the "
         "stack of the programs that read it."),
        ("Check where the object came from and fetch it again from the source; if it is needed, "
         "ask its maker for a copy without the nesting. deid does not release it."),
    ),
    "too-large": (
        ("The file is larger than the profile's limits.max_object_size (or --max-object-size); it "
         "was not read, and reason.json names it in place of a copy."),
        ("If it is a real object, run again with a larger --max-object-size (every run tries it "
         "again; the machine must hold it in memory, once per worker); otherwise remove it from the "
         "input."),
    ),
    "unknown-transfer-syntax": (
        "The transfer syntax is missing or not a standard one.",
        "Convert the object to a standard transfer syntax (e.g. with DCMTK dcmconv) and re-run.",
    ),
    "media-directory": (
        ("The file is a DICOMDIR: the index of a CD, DVD or USB export, with the names and IDs of "
         "the patients on it. It is not an image and is not released."),
        ("Nothing, when the export's image files are in the input too: they are de-identified from "
         "their own files. Otherwise copy the whole export, not only its DICOMDIR."),
    ),
    "missing-identifier": (
        ("The object has no SOP Class, SOP Instance, Study or Series UID, or holds one under "
         "another VR than UI, or its SOP Class UID is not a UID (two or more numbers joined by dots, the "
         "first 0, 1 or 2)."),
        "Repair the source object's identifiers at the modality or PACS.",
    ),
    "incomplete-object": (
        ("An image lacks an attribute its pixels need (Rows, Columns, Pixel Data or another Type 1"
         " attribute of its pixel module, or has it empty), its uncompressed Pixel Data is shorter "
         "than that image, or an object of another kind holds pixel data without them: it was "
         "probably cut short or damaged in a copy or transfer."),
        ("Fetch the object again from the source (PACS or media) and re-run; reason.json names the"
         " first missing attribute."),
    ),
    "burned-in-annotation-risk": (
        ("Burned In Annotation is YES, or a Secondary Capture does not say NO: the pixels may show"
         " identity."),
        ("Review the pixels; blank the text (a pixels.regions entry for the device, or pixels.ocr: "
         "text found by OCR), or release it with a profile that allows burned-in annotation once a "
         "person has checked it."),
    ),
    "ocr-not-available": (
        ("The profile reads this object's pixels for burned-in text (pixels.ocr), but Tesseract (or its "
         "English data) is not installed here; the object was not released unchecked."),
        ("Install Tesseract with its English data (Debian: apt-get install tesseract-ocr "
         "tesseract-ocr-eng), then run again; or leave pixels.ocr out of the profile."),
    ),
    "ocr-failed": (
        "Tesseract failed or timed out while reading the object's pixels for burned-in text.",
        "Check the tesseract installation (run `tesseract --version`), then run the object again.",
    ),
    "pixels-lossy": (
        ("The pixels must be blanked but they are lossy compressed (JPEG baseline, JPEG 2000 lossy, "
         "JPEG-LS near-lossless...), and blanking means writing them again."),
        ("Convert the file to native pixels with the command in reason.json (e.g. dcmdjpeg IN OUT, "
         "gdcmconv --raw IN OUT) and run it again, or set pixels.lossy: reencode in the profile "
         "(decoded once, written RLE Lossless)."),
    ),
    "pixels-decode-unavailable": (
        "The pixels must be blanked but no codec installed here decodes their compression.",
        ("Convert the file to native pixels with the command in reason.json (e.g. dcmdjpeg IN OUT, "
         "gdcmconv --raw IN OUT), or install the pydicom plugin for it (pylibjpeg with its plugins)."),
    ),
    "pixels-decode-failed": (
        "The compressed pixels could not be decoded: the file may be damaged.",
        "Fetch the object again from the source; or convert it to native pixels and run it again.",
    ),
    "pixels-encode-failed": (
        "The blanked pixels could not be written again in a lossless compressed form.",
        "Convert the file to native pixels (command in reason.json) and run it again.",
    ),
    "pixels-encapsulated": (
        "The pixels must be blanked but they are compressed in a form deid cannot decode here.",
        "Convert the file to a native transfer syntax (dcmdjpeg, dcmdrle, gdcmconv --raw) and run it again.",
    ),
    "pixels-unsupported": (
        ("The pixels must be blanked but their layout (bits, samples, photometric interpretation) is not "
         "one deid can blank, or the object has no Pixel Data."),
        "Review the object; convert it to RGB or MONOCHROME2 with 8 or 16 bits, and run it again.",
    ),
    "pixels-size-mismatch": (
        "Pixel Data is shorter than Rows x Columns x Samples x Frames says.",
        "The file may be truncated: fetch it again from the source.",
    ),
    "region-outside-image": (
        "A pixel region of the profile matches the object, but its boxes lie outside the image.",
        "Correct the region's boxes or its match (rows/columns) in the profile.",
    ),
    "rule-not-applicable": (
        "A profile rule cannot be applied to a value (e.g. a malformed date).",
        ("Fix the value in the source or adjust the profile rule at the element path in "
         "reason.json."),
    ),
    "value-does-not-fit-vr": (
        "The value a rule produced does not fit the attribute's VR.",
        ("Adjust the profile rule (e.g. a hash length or replacement value) at the element path in"
         " reason.json."),
    ),
    "patient-not-in-lookup": (
        "The patient is not in the --lookup CSV, so no case number is known.",
        "Add the patient's case number to the lookup CSV, or leave the object out; then re-run.",
    ),
    "label-not-found": (
        ("A value does not match the profile's label pattern (pseudonym.labels), so its label "
         "cannot be kept."),
        "Correct the value at the source, widen the pattern, or set on_mismatch: hash.",
    ),
    "label-too-long": (
        "The kept label leaves fewer than 8 characters for the pseudonym.",
        "Make the label pattern's group shorter or the rule's length longer.",
    ),
    "text-contains-identity": (
        ("Kept free text (a description, comment, label, ROI name or SR TEXT item) contains a name, "
         "ID, date, institution or address the profile removes from the object, or a deny-list "
         "entry, and the profile quarantines such objects."),
        ("Review the text at the element path in reason.json; or set free_text.on_identity (SR TEXT:"
         " structured_content.text_with_identity) to replace in the profile."),
    ),
    "content-item-value-removed": (
        "The profile removes a value an SR content item requires.",
        "Review the object, or set structured_content.value_removed to remove_item.",
    ),
    "content-text-not-kept": (
        ("An SR TEXT content item's concept is not one the profile keeps "
         "(structured_content.keep_text), and the profile quarantines such reports."),
        ("Review the report; add the concept to structured_content.keep_text if its text may go "
         "out, or set structured_content.text_not_kept to remove_item."),
    ),
    "content-item-not-removable": (
        ("An SR content item that is not TEXT should go (a rule removes its value or its concept), "
         "but measurements, coordinates or references sit beneath it, or a by-reference "
         "relationship points at it."),
        ("Review the object; change the profile's rule for that value or concept (a concept rule "
         "can give it a dummy instead), or release it only after a person has checked the item."),
    ),
    "content-reference-removed": (
        "An SR by-reference relationship points at a content item that was removed.",
        "Review the SR; fix the source report or the profile's structured_content rules.",
    ),
    "sidecar-unknown-format": (
        ("An annotation file beside the images is not a format deid knows (PASCAL VOC XML, "
         "landmark CSV/TSV/JSON)."),
        "Convert it to a supported format or leave it out of the input.",
    ),
    "sidecar-unknown-field": (
        "An annotation file has a field deid does not know (it may hold identity).",
        "Remove the field (e.g. an owner or patient_name column) and re-run.",
    ),
    "sidecar-bad-value": (
        ("An annotation file has a value of the wrong form (e.g. a UID column holding something "
         "else)."),
        "Correct the value in the annotation file and re-run.",
    ),
    "sidecar-no-image-reference": (
        "An annotation file names no image by SOP Instance UID, so it cannot follow its image.",
        "Rename the file to its image's SOP Instance UID and re-run.",
    ),
    "sidecar-name-collision": (
        "Another side-car for the same image was already released under the same name.",
        "Merge the two annotation files, or release this one into another output folder.",
    ),
    "forward-rejected": (
        ("A destination refused the object for good: a DIMSE failure status, or a STOW-RS answer "
         "that refuses it (HTTP 409, 400 or another 4xx with the object's failure reason) or "
         "does not list it as stored; or a release folder already holds other content under "
         "its name."),
        ("Check the destination's configuration (SOP classes, AE titles; for a DICOMweb "
         "destination its log and import rules for the failure reason in the quarantine "
         "entry; for a release folder, which of the two objects is right), then send the "
         "object again."),
    ),
    "iod-check-failed": (
        ("De-identification left the object with an IOD problem its input did not have (a Type 1 "
         "attribute empty, a Type 2 attribute missing, or a value that breaks its VR)."),
        ("Fix the profile's rule for the attribute at the element path in reason.json, or report "
         "it; where the message says the input holds the attribute under a VR of another kind, "
         "the file is damaged: fetch it again or correct it at the source."),
    ),
    "dciodvfy-new-error": (
        ("The profile's dciodvfy gate found an error after de-identification that the input did "
         "not have."),
        "Fix the profile's rule for the attribute named in reason.json, or report it.",
    ),
    "dciodvfy-failed": (
        "dciodvfy could not check the object (it failed to run or timed out).",
        "Check the dicom3tools installation, then re-run the object.",
    ),
    "dciodvfy-not-available": (
        "The profile turns on the dciodvfy gate, but dciodvfy (dicom3tools) is not installed.",
        "Install dicom3tools on the machine, or turn release_check.dciodvfy off, and re-run.",
    ),
    "value-does-not-encode": (
        ("An element's value cannot be written in its VR (it breaks the VR's form or length, or the "
         "attributes that decide its VR are missing), so the object cannot be written as valid DICOM."),
        ("Correct the object at the source, or remove the element at the path in reason.json with a "
         "profile rule; report it if the value looks valid."),
    ),
    "duplicate-instance": (
        ("Two different objects carry the same SOP Instance UID (in one series or two); the first was "
         "released (by this output's runs with the same records, or by this node), this one was not."),
        "Find which of the two is right at the source (a modality re-using UIDs, or an edited copy) and "
        "release only that one, into a fresh output folder if the released one was wrong.",
    ),
    "worker-crashed": (
        ("The process de-identifying this object (a worker of the forwarding node or of deid "
         "run, or deid run's own with --workers 1) died repeatedly on it, the last times with no "
         "other object (a crash in a decoder, or memory)."),
        ("Report it to the deid maintainers with the quarantined file; do not send or release it "
         "again until fixed."),
    ),
    "pull-not-found": (
        ("deid pull: the PACS found no study for this requested entry (with the --study-date and "
         "--modality filters given)."),
        ("Look the entry up in the pull journal (records/pull/journal.sqlite, by its reference) and "
         "check the value and the filters with the PACS; correct the list and pull again."),
    ),
    "pull-incomplete": (
        ("deid pull: some instances of this entry's studies are not released: quarantined, still "
         "waiting in the spool for a destination, or not sent by the PACS at study, series or "
         "instance level."),
        ("Pull again with the same list (only what is missing is fetched); read the quarantine's "
         "reason.json for quarantined ones; check the PACS's log for instances it would not send."),
    ),
    "pull-pacs-error": (
        ("deid pull: the PACS could not be queried or refused a query or retrieve for this entry "
         "(association rejected or lost, or a failure status)."),
        ("Check the PACS address, its AE titles (ours must be known to it, with our host and port "
         "for C-MOVE, or use --get) and the log, then pull again."),
    ),
    "internal-error": (
        "An unexpected error in deid (a bug).",
        "Report it to the deid maintainers with the reason.json (it holds no values).",
    ),
}

UNKNOWN = (
    "A reason this report does not know.",
    "Read reason.json in the quarantine entry (code, stage, element path, message).",
)


def describe(code: str) -> tuple[str, str]:
    """(what happened, what to do) for a reason code; a generic answer for unknown codes."""
    return REASONS.get(code, UNKNOWN)
