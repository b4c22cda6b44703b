"""What a run on this machine never uses is not loaded at its start, and still works when used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import run_args

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
            "assert ImageCms.ImageCmsTransform is not None and not unloaded('PIL.ImageCms')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
