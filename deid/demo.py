"""`deid demo`: make a synthetic patient, de-identify it with the VGHTPE profile, say where things are."""

from __future__ import annotations

import shlex
from pathlib import Path

from deid.audit.report import write_report
from deid.keys import generate_key_file, load_key_file
from deid.profile.loader import load_profile
from deid.run import SUMMARY, RunPaths, run


def run_demo(folder: Path) -> int:
    """Writes FOLDER/input (4-phase CT + RTSS + SEG + landmark SR of a made-up patient, plus one
    screenshot that must be quarantined), de-identifies it into FOLDER/output and prints the paths."""
    from deid.synthetic import make_patient, oddities, write_sample_study

    folder = folder.resolve()
    source = folder / "input"
    patient = make_patient(0)
    if not source.exists():
        write_sample_study(source, patient, slices=12, size=128, seg=True, sr=True)
        oddities.secondary_capture(source / "screenshots", patient, burned_in=None)
    key_path = folder / "demo.key"
    if not key_path.exists():
        generate_key_file(key_path)
    paths = RunPaths(folder / "output", folder / "quarantine", folder / "records")
    summary = run([source], paths, load_profile("vghtpe"), load_key_file(key_path), workers=1)
    print(summary.line())
    report = write_report(paths.records, folder / "report")
    explain = _command("explain", "--profile", "vghtpe", "--sop-class", "RTStructureSetStorage",
                       "--only-profile")
    released_id = _released_patient_id(paths.out)
    print(f"""
deid demo: a synthetic patient ({patient.display_name}, ID {patient.patient_id}: made up) de-identified
  input       {source}   (4-phase CT + RT Structure Set + SEG + landmark SR, identity planted everywhere)
  output      {paths.out}   (only releasable objects; folders named by new IDs and UIDs)
  quarantine  {paths.quarantine}   (a screenshot with possible burned-in text, with reason.json)
  summary     {paths.records / SUMMARY}
  audit       {summary.audit}   (one line per object, no original value)
  reid map    {paths.records / "reid"}   (original <-> released identity, encrypted with the key)
  report      {report}   (open it in a browser: what went out, review of kept text)
  key         {key_path}   (demo key; make your own with: deid keygen ~/.deid/key)
Try: {explain}
     {_command("verify", paths.out, "--records", paths.records, "--key-file", key_path)}
     {_command("reidentify", "--key-file", key_path, paths.records, "--patient-id", released_id)}""")
    # the screenshot is the one object expected in quarantine (on a re-run it is skipped)
    return 0 if summary.quarantined <= 1 and summary.written + summary.skipped > 0 else 3


def _command(*args: object) -> str:
    """A deid command line as a shell runs it (paths with spaces quoted)."""
    return shlex.join(["deid", *map(str, args)])


def _released_patient_id(out: Path) -> str:
    """The released Patient ID of the demo patient: the name of its folder in the output."""
    folders = sorted(p.name for p in out.iterdir() if p.is_dir()) if out.is_dir() else []
    return folders[0] if folders else "RELEASED_ID"
