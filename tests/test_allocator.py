"""deid.allocator: freed object-sized buffers are reused, not faulted in again for every object."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

_CHURN = """
import json, resource, sys
if sys.argv[1] == "tuned":
    from deid import allocator
    assert allocator.tune()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for n in range(300):  # what each object does: read, copy, encode half a megabyte, then free
    data = bytes(524288 + n % 7)
    copy = data[1:] + b"x"
    del data, copy
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def _faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True,
                         check=True, env=env).stdout
    return int(json.loads(out))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" and os.environ.get("CI") != "true",
                    reason="glibc's allocator only (CI=true: fails)")
def test_object_sized_buffers_are_reused_once_tuned() -> None:
    plain, tuned = _faults("plain"), _faults("tuned")
    assert plain > 300 * 100  # every buffer faulted in again (128 pages each)
    assert tuned < plain / 10


def test_tuning_reaches_the_worker_processes_and_keeps_a_persons_own_setting(monkeypatch) -> None:
    from deid import allocator

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1234")
    if allocator.tune():
        assert os.environ["MALLOC_MMAP_THRESHOLD_"] == str(allocator.MMAP_THRESHOLD)
        assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "1234"
