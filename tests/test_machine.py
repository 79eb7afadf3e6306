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
    if "ONEDNN_MAX_CPU_ISA" not in os.environ:
        assert machine.cpu_has_bf16() == ("avx512_bf16" in described or "amx_bf16" in described)


@pytest.mark.parametrize(
    ("cap", "native", "runs"),
    [
        ("AVX2", False, False),  # oneDNN refuses bfloat16 below AVX-512: the process would abort
        ("avx512_core", False, True),  # emulated, slowly
        ("AVX512_CORE_BF16", True, True),
        ("AVX10_1_512_AMX", True, True),  # an alias shares its place
        ("ALL", True, True),
        ("AVX512_TYPO", False, False),  # a name oneDNN lacks errs towards float32
    ],
)
def test_an_isa_cap_bounds_what_bfloat16_can_do(monkeypatch, cap, native, runs):
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert (machine.cpu_has_bf16(), machine.bf16_runs()) == (native, runs)
    assert machine.describe().get("isa_cap") == (None if cap == "ALL" else cap.upper())


def test_without_avx512_bfloat16_is_emulated_but_runs(monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert (machine.cpu_has_bf16(), machine.bf16_runs()) == (False, True)
