"""The shipped profiles (deid/profiles/*.yaml) known to pass the profile schema, by digest.

A profile file whose bytes are one of these, read while the schema is the one they were checked
against (:data:`SCHEMA_SHA256`), needs no JSON Schema validation: the same bytes parse to the same
data, which passed.  The loader then skips jsonschema, whose import alone is ~30 ms of every
start-up.  Any other file, a shipped one once edited, or any file after the schema changed, is
validated as ever.  ``tests/profile/test_shipped_profiles_are_known_valid.py`` validates each
shipped profile and checks this table; ``python -m deid.profile.shipped`` prints it anew.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache

#: the sha256 of the profile schema the digests below were validated against (schema_sha256)
SCHEMA_SHA256 = "3b2c136d7a03cff00f864532d72e51e25c8e3a83960fb963e93da1ca277bdab6"

#: shipped profile file -> the sha256 of its bytes, validated against that schema
VALID = {
    "lung-pet-ct-dx.yaml": "363c30769d32bc45d1b230f0191759c362186df597118c968e90e7c5b4572edd",
    "ps3.15-basic.yaml": "e2b2ed5d681139b82cfee83fffcb4bfd1c5285f6770fcc161d34fcf2646826e6",
    "vghtpe.yaml": "0c02caa9f02908485c2866ad7b1fa407f1149dd0c2797210bb5d55721e5e9d59",
}


@cache
def schema_sha256() -> str:
    """The sha256 of the profile schema as canonical JSON (keys sorted)."""
    from deid.profile.schema import PROFILE_SCHEMA

    text = json.dumps(PROFILE_SCHEMA, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def known_valid(digest: str) -> bool:
    """Whether a profile file with this sha256 passed this very schema (a shipped one, unedited)."""
    return digest in VALID.values() and schema_sha256() == SCHEMA_SHA256


def main() -> None:
    """Print the table of this module for the shipped profiles as they are now (each validated)."""
    from deid.profile.loader import BUILTIN_DIR, validate_file

    print(f'SCHEMA_SHA256 = "{schema_sha256()}"\n\nVALID = {{')
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        print(f'    "{path.name}": "{validate_file(path)}",')
    print("}")


if __name__ == "__main__":
    main()
