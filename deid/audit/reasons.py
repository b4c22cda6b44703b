"""Quarantine reason codes: what each means and what a person does about it (shown in reports)."""

from __future__ import annotations

#: reason code -> (what happened, what to do)
REASONS: dict[str, tuple[str, str]] = {
    "not-dicom": ("The file is not a DICOM Part 10 file (no DICM header).",
                  "Check what the file is; remove it from the input if it is not an image."),
    "unreadable": ("The file is truncated or corrupt, or could not be read.",
                   "Fetch the object again from the source (PACS or media) and re-run."),
    "unknown-transfer-syntax": ("The transfer syntax is missing or not a standard one.",
                                "Convert the object to a standard transfer syntax (e.g. with DCMTK "
                                "dcmconv) and re-run."),
    "missing-identifier": ("The object has no SOP Instance, Study or Series UID.",
                           "Repair the source object's identifiers at the modality or PACS."),
    "burned-in-annotation-risk": ("Burned In Annotation is YES, or a Secondary Capture does not say NO: "
                                  "the pixels may show identity.",
                                  "Review the pixels; blank the text, or release it with a profile that "
                                  "allows burned-in annotation once a person has checked it."),
    "rule-not-applicable": ("A profile rule cannot be applied to a value (e.g. a malformed date).",
                            "Fix the value in the source or adjust the profile rule at the element "
                            "path in reason.json."),
    "value-does-not-fit-vr": ("The value a rule produced does not fit the attribute's VR.",
                              "Adjust the profile rule (e.g. a hash length or replacement value) at "
                              "the element path in reason.json."),
    "patient-not-in-lookup": ("The patient is not in the --lookup CSV, so no case number is known.",
                              "Add the patient's case number to the lookup CSV, or leave the object "
                              "out; then re-run."),
    "internal-error": ("An unexpected error in deid (a bug).",
                       "Report it to the deid maintainers with the reason.json (it holds no values)."),
}

UNKNOWN = ("A reason this report does not know.",
           "Read reason.json in the quarantine entry (code, stage, element path, message).")


def describe(code: str) -> tuple[str, str]:
    """(what happened, what to do) for a reason code; a generic answer for unknown codes."""
    return REASONS.get(code, UNKNOWN)
