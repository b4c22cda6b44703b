"""What a run on this machine never uses is not loaded at its start, and still works when used."""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys
from pathlib import Path

import pytest
from support import run_args

from deid.deferred_imports import installed_version
from deid.synthetic import make_patient, write_sample_study

# a deid command in a fresh interpreter, then which of the deferred modules were loaded
LOADED_AFTER = """
import sys
from deid import cli
from deid.deferred_imports import UNUSED_BY_RUN, unloaded

code = cli.main(sys.argv[1:])
loaded = sorted(name for name in UNUSED_BY_RUN if name in sys.modules and not unloaded(name))
print(f"loaded: {loaded} exit: {code}")
"""


def _loaded_after(*args: object) -> str:
    done = subprocess.run([sys.executable, "-c", LOADED_AFTER, *map(str, args)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_run_does_not_load_what_pydicom_imports_for_its_downloads(tmp_path: Path,
                                                                     key_file: Path) -> None:
    write_sample_study(tmp_path / "in", make_patient(1), slices=1, size=16)
    assert _loaded_after(*run_args(tmp_path / "in", tmp_path / "out", key_file)) == \
        "loaded: [] exit: 0"


def test_a_run_that_reads_pixels_loads_numpy_and_the_decoder_it_needs(tmp_path: Path,
                                                                      key_file: Path) -> None:
    """A fused screenshot in JPEG-LS: its burned-in name is blanked, which decodes it with the
    deferred jpeg_ls (the version pydicom read at import, answered without it) and numpy."""
    import pydicom
    from pydicom.uid import JPEGLSLossless

    from deid.synthetic import write_dataset
    from deid.synthetic.fused import fused_pet_ct_screenshot, lung_patient

    screenshot = fused_pet_ct_screenshot(lung_patient("A", 12))
    screenshot.compress(JPEGLSLossless, encoding_plugin="pyjpegls")
    write_dataset(screenshot, tmp_path / "in" / "fused.dcm")
    assert _loaded_after(*run_args(tmp_path / "in", tmp_path / "out", key_file, "--profile",
                                   "lung-pet-ct-dx")) == "loaded: ['jpeg_ls', 'numpy'] exit: 0"
    [output] = (tmp_path / "out").rglob("*.dcm")
    released = pydicom.dcmread(output)
    assert released.file_meta.TransferSyntaxUID == JPEGLSLossless
    assert released.BurnedInAnnotation == "NO" and released.pixel_array.shape == (512, 512, 3)


def test_a_deferred_module_loads_when_used() -> None:
    code = ("from deid.deferred_imports import defer, unloaded\n"
            "defer()\n"
            "import sys, pydicom, structlog\n"
            "assert unloaded('requests') and unloaded('asyncio') and unloaded('PIL.ImageCms')\n"
            "import requests, tqdm, urllib.request\n"
            "assert callable(requests.get) and callable(tqdm.tqdm)\n"
            "assert urllib.request.Request('http://127.0.0.1/').get_method() == 'GET'\n"
            "assert type(requests).__name__ == 'module' and not unloaded('requests')\n"
            "import asyncio\n"
            "assert unloaded('asyncio')  # imported again: still not loaded\n"
            "assert asyncio.run(asyncio.sleep(0, 'slept')) == 'slept' and not unloaded('asyncio')\n"
            "from PIL import ImageCms\n"
            "assert ImageCms.ImageCmsTransform is not None and not unloaded('PIL.ImageCms')\n"
            # pydicom read their versions to list its pixel plugins: answered without loading
            "import numpy, jpeg_ls\n"
            "assert unloaded('numpy') and unloaded('jpeg_ls')\n"
            "versions = numpy.__version__, jpeg_ls.__version__\n"
            "assert unloaded('numpy') and unloaded('jpeg_ls')\n"
            "from pydicom.pixels.decoders import JPEGLSLosslessDecoder\n"
            "assert JPEGLSLosslessDecoder.is_available  # (pyjpegls >= 1.2: pydicom says it can decode)\n"
            "assert int(numpy.arange(4).sum()) == 6 and not unloaded('numpy')\n"
            "assert callable(jpeg_ls.decode_pixel_data) and not unloaded('jpeg_ls')\n"
            "from importlib.metadata import version\n"
            "assert versions == (numpy.__version__, version('pyjpegls')), versions\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def _installed(folder: Path, *dist_infos: tuple[str, str | None],
               elsewhere: Path | None = None) -> importlib.machinery.ModuleSpec:
    """A package ``pkg`` in ``folder``; the given dist-info folders (name, METADATA) beside it, or
    in ``elsewhere``."""
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "__init__.py").write_text("")
    for name, metadata in dist_infos:
        (elsewhere or folder).joinpath(name).mkdir(parents=True)
        if metadata is not None:
            (elsewhere or folder).joinpath(name, "METADATA").write_text(metadata)
    spec = importlib.machinery.PathFinder.find_spec("pkg", [str(folder)])
    assert spec is not None
    return spec


ONE = ("some_dist-1.5.1.dist-info", "Metadata-Version: 2.1\nName: some-dist\nVersion: 1.5.1\n\nText")


@pytest.mark.parametrize(("dist_infos", "version"), [
    ([ONE], "1.5.1"),
    ([("Some.Dist-1.5.1.dist-info", "Name: Some.Dist\nVersion: 1.5.1\n")], "1.5.1"),
    # not one plain version: the module is imported as usual
    ([("some_dist-2.0.0.dev0.dist-info", "Name: some-dist\nVersion: 2.0.0.dev0\n")], None),
    ([("some_dist-1.0.dist-info", "Name: some-dist\nVersion: 1.0\n"),
      ("some_dist-1.1.dist-info", "Name: some-dist\nVersion: 1.1\n")], None),
    ([("some_dist-1.0.dist-info", None)], None),
    ([("some_dist-1.0.dist-info", "Name: some-dist\n\nVersion: 1.0\n")], None),
    ([("other_dist-1.0.dist-info", "Name: other-dist\nVersion: 1.0\n")], None),
])
def test_a_deferred_module_version_comes_from_its_one_install(
        tmp_path: Path, dist_infos: list[tuple[str, str | None]], version: str | None) -> None:
    spec = _installed(tmp_path, *dist_infos)
    assert installed_version("some-dist", spec, path=[str(tmp_path)]) == version


def test_a_deferred_module_version_is_not_taken_from_an_install_elsewhere(tmp_path: Path) -> None:
    spec = _installed(tmp_path / "site", ONE, elsewhere=tmp_path / "other")
    assert installed_version("some-dist", spec, path=[str(tmp_path / "site"),
                                                      str(tmp_path / "other")]) is None
