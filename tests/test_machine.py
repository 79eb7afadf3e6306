"""The machine record that every speed and training figure carries."""

import json
import os
from pathlib import Path

import pytest

from pipeline.runtime import machine


def test_describes_the_cpu_its_features_and_the_libraries():
    described = machine.describe()
    assert described["cores"] == os.cpu_count()
    assert described["cpu"]
    assert set(described["features"]) <= set(machine.FEATURES)
    assert {"python", "numpy", "onnxruntime", "tensorflow"} <= set(described["versions"])
    json.dumps(described)  # goes into metrics files as it is


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads Linux's /proc/cpuinfo")
def test_features_are_read_from_the_cpu_flags():
    line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    flags = line.split(":", 1)[1].split()
    described = machine.describe()["features"]
    for feature in machine.FEATURES:
        assert (feature in described) == (feature in flags), feature
    assert machine.cpu_has_bf16() == ("avx512_bf16" in described or "amx_bf16" in described)
