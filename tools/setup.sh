#!/usr/bin/env bash
# Create .venv (once) and install deid with its test extras into it.  Run it (./tools/setup.sh) to
# set up; demo.sh and test.sh source it, and then have .venv/bin first on their own PATH.
# Your shell gets deid from bin/ (only the deid launcher), never from .venv/bin, whose pynetdicom
# apps (storescu, storescp, echoscu...) would shadow DCMTK's: see "Set up" in README.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DEID_VENV:-$repo/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.deid-installed"
if [ ! -f "$stamp" ] || [ "$repo/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -e "$repo[test]"
  touch "$stamp"
fi
# the Debian packages' sample DICOM files for tests/conformance (once; needs apt's package lists)
DEID_VENV="$venv" bash "$repo/tools/corpora.sh" \
  || echo "setup: could not fetch the Debian sample files (tools/corpora.sh); their conformance test skips (fails in CI)" >&2
if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # run, not sourced: say how to get deid on PATH
  if [ "$(command -v deid || true)" != "$repo/bin/deid" ]; then
    echo "setup: deid is installed in $venv; to run it as \`deid\`, put its launcher on your PATH:"
    echo "  export PATH=\"$repo/bin:\$PATH\"    # add this line to ~/.bashrc (bin/ holds only deid)"
  fi
else
  export PATH="$venv/bin:$PATH"
fi
