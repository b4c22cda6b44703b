#!/usr/bin/env bash
# The main job on the embedded sample: set up, then `deid demo` (a synthetic patient, de-identified).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
user_deid="$(command -v deid || true)"  # what the user's own shell runs as deid, before set-up
source "$repo/tools/setup.sh"
status=0
"$repo/bin/deid" demo "${@:-demo-output}" || status=$?
if [ "$user_deid" != "$repo/bin/deid" ]; then
  echo
  echo "To run the commands above as printed, put deid on your PATH (bin/ holds only the deid launcher):"
  echo "  export PATH=\"$repo/bin:\$PATH\"    # add this line to ~/.bashrc"
fi
exit "$status"
