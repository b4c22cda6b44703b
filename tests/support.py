"""Helpers shared by the tests: running the deid command, reading output trees, finding PHI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from deid.synthetic import SyntheticPatient

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    from deid.keys import SecretKey
    from deid.profile.model import Profile

REPO = Path(__file__).resolve().parents[1]
SLICES, SIZE = 3, 32  # slices per phase and matrix size of the sample studies: small keeps the suite fast


def deid(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``deid`` command line as a user does (this interpreter, this checkout)."""
    environment = {k: v for k, v in os.environ.items() if k != "DEID_KEY_FILE"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "deid", *map(str, args)],
        capture_output=True, text=True, env=environment, cwd=cwd, timeout=300, check=False,
    )


def run_args(sources: list[Path] | Path, out: Path, key_file: Path, *extra: object) -> list[object]:
    """The arguments of ``deid run`` for sources into out, with the key file and no progress bar."""
    if isinstance(sources, Path):
        sources = [sources]
    return ["run", *sources, "--out", out, "--key-file", key_file, "--no-progress", *extra]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included), by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def phi_found(blob: bytes | str, patient: SyntheticPatient) -> list[str]:
    """The planted identifying values of ``patient`` found in ``blob`` (UTF-8 bytes or text)."""
    data = blob.encode("utf-8") if isinstance(blob, str) else blob
    return [value for value in patient.phi_values() if value.encode("utf-8") in data]


def to_bytes(ds: Dataset) -> bytes:
    """A builder dataset as the Part 10 bytes a sender would transmit."""
    from io import BytesIO

    from pydicom import dcmwrite

    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def release(source: Dataset | Path | bytes, profile: Profile, key: SecretKey,
            lookup: dict[str, str] | None = None) -> tuple[Dataset, bytes]:
    """De-identify one object as the pipeline does (read, rules, encode); the result read back, and its bytes."""
    from io import BytesIO

    import pydicom

    from deid.engine.deidentifier import Deidentifier
    from deid.io.encoder import encode
    from deid.io.reader import read_object

    if isinstance(source, Path):
        data = source.read_bytes()
    elif isinstance(source, bytes):
        data = source
    else:
        data = to_bytes(source)
    result = Deidentifier(profile, key, lookup=lookup).deidentify(read_object(data))
    encoded = encode(result.dataset)
    return pydicom.dcmread(BytesIO(encoded)), encoded


def walk(ds: Dataset, path: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], DataElement]]:
    """Every element at every depth, with the tags of the sequences it sits in."""
    for elem in ds:
        yield path, elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from walk(item, path + (elem.tag,))


def released_headers(*outs: Path) -> dict[str, Dataset]:
    """The header of every object under the output folders ``outs``, by SOP Instance UID."""
    import pydicom

    return {
        str(ds.SOPInstanceUID): ds
        for out in outs
        for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(out.rglob("*.dcm")))
    }


def unresolved_references(headers: dict[str, Dataset]) -> list[str]:
    """What the released objects point at that is not released: an instance (or one of another SOP
    Class), a series, a study or a Frame of Reference; each as 'modality path kind'."""
    from deid.audit.references import dangling, references

    classes = {uid: str(ds.SOPClassUID) for uid, ds in headers.items()}
    known = {
        "series": {str(ds.SeriesInstanceUID) for ds in headers.values()},
        "study": {str(ds.StudyInstanceUID) for ds in headers.values()},
        "frame_of_reference": {str(ds.get("FrameOfReferenceUID", "")) for ds in headers.values()},
    }
    problems = []
    for ds in headers.values():
        refs = references(ds)
        bad = dangling(refs, classes) + [r for r in refs if r.uid not in known.get(r.kind, {r.uid})]
        problems += [f"{ds.Modality} {r.path} {r.kind}" for r in bad]
    return problems
