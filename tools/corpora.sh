#!/usr/bin/env bash
# Fetch, once, the real DICOM sample files that Debian packages ship (for tests/conformance/) into
# $DEID_CORPORA (default .venv/share/deid-corpora): each package's .deb is downloaded with
# `apt-get download` (no install, no dependencies) and only its .dcm files are kept, under
# debian/<package>/.  The test never downloads; with CI=true a missing corpus fails it.
# The Python corpora (pydicom, pydicom-data, pynetdicom) come with the test extras.
# highdicom's test data is not in its sdist or wheel: the test makes objects with highdicom instead.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
corpora="${DEID_CORPORA:-${DEID_VENV:-$repo/.venv}/share/deid-corpora}"
packages=(dicom3tools octave-dicom dicomscope)   # keep in step with tests/conformance/corpora.py
for package in "${packages[@]}"; do
  target="$corpora/debian/$package"
  [ -f "$target/.complete" ] && continue
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" "$package" >/dev/null)
  dpkg-deb -x "$work"/"$package"_*.deb "$work/root"
  rm -rf "$target"
  mkdir -p "$target"
  find "$work/root" -type f -name '*.dcm' -exec cp {} "$target/" \;
  dpkg-deb -f "$work"/"$package"_*.deb Version > "$target/.complete"
  rm -rf "$work"
  trap - EXIT
done
