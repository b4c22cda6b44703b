#!/usr/bin/env bash
# Create .venv (once) and install deid with its test extras into it.  Sourced by demo.sh and test.sh.
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
export PATH="$venv/bin:$PATH"
