#!/usr/bin/env bash
# The main job on the embedded sample: set up, then `deid demo` (a synthetic patient, de-identified).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec deid demo "${@:-demo-output}"
