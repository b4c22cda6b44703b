"""Deterministic UIDs for synthetic objects.

``pydicom.uid.generate_uid(prefix=None, entropy_srcs=...)`` ignores its entropy in
pydicom 3 (it returns a random UUID), so the builder derives its own: a name-based
UUID (version 5) under the ``2.25`` root, the same for the same parts on every run.
"""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:deid-pacs:synthetic")


def derive_uid(*parts: object) -> str:
    """Return a ``2.25.<int>`` UID that depends only on ``parts``."""
    name = "\x1f".join(str(part) for part in parts)
    return f"2.25.{uuid.uuid5(_NAMESPACE, name).int}"


def series_uid(study_uid: str, label: str) -> str:
    """The Series Instance UID of the series ``label`` (a phase letter, ``RTSS``, ...)."""
    return derive_uid(study_uid, "series", label)


def instance_uid(series_instance_uid: str, index: int) -> str:
    """The SOP Instance UID of image ``index`` (0-based) in a series."""
    return derive_uid(series_instance_uid, "instance", index)
