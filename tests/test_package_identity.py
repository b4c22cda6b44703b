"""`import deid` is this repository's package (the PyPI project named `deid` is another one)."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from support import REPO

import deid


def test_deid_is_imported_from_this_repository() -> None:
    assert Path(deid.__file__).resolve().is_relative_to(REPO / "deid")


def test_deid_resolves_to_this_repository_from_anywhere(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", "import deid, deid.cli; print(deid.__file__)"],
                            capture_output=True, text=True, cwd=tmp_path, check=True)
    assert Path(result.stdout.strip()).resolve().is_relative_to(REPO / "deid")


def test_the_distribution_is_deid_pacs() -> None:
    assert set(metadata.packages_distributions().get("deid", [])) == {"deid-pacs"}
    assert metadata.version("deid-pacs") == deid.__version__


def test_this_package_has_our_modules() -> None:
    from deid import keys, run, standard, synthetic  # modules the PyPI `deid` does not have

    assert keys.ENV_KEY_FILE == "DEID_KEY_FILE" and run.JOURNAL and standard.EDITION and synthetic.make_patient


def test_dicognito_is_only_the_benchmarks_peer() -> None:
    """Runtime dependencies hold what deid imports; dicognito is the `bench` extra's (bench_run)."""
    requires = metadata.requires("deid-pacs") or []
    runtime = {r.split(";")[0].split(">")[0].split("<")[0].strip().lower() for r in requires
               if "extra ==" not in r}
    assert {"prometheus_client", "defusedxml"} <= runtime and "dicognito" not in runtime
    assert any(r.startswith("dicognito") and 'extra == "bench"' in r for r in requires)
    importing = re.compile(r"^\s*(from|import)\s+dicognito\b", re.MULTILINE)
    assert not [p for p in (REPO / "deid").rglob("*.py") if importing.search(p.read_text())]
