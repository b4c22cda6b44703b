#!/usr/bin/env bash
# The test suite: set up, then pytest.  Peer tests need DCMTK and dicom3tools (apt-get install -y
# dcmtk dicom3tools); with CI=true a missing peer fails the run instead of skipping.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/tools/setup.sh"
cd "$repo"
exec python -m pytest -q "$@"
