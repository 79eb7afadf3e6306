"""The machine a measurement was made on, recorded beside every speed and training figure.

Speeds differ several-fold between the CPUs this project runs on (bf16 emulated with AVX2, native
with AVX-512 BF16 or AMX), so a figure without its machine cannot be compared with another.
Reads `/proc/cpuinfo` where there is one and the installed packages' versions; imports nothing
heavy.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

# The instruction-set features that decide the training precision and the kernels used.
FEATURES = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")
PACKAGES = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (empty where `/proc/cpuinfo` is not readable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_has_bf16() -> bool:
    """Native bfloat16 arithmetic: AMX or AVX-512 BF16."""
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


def describe() -> dict[str, Any]:
    """CPU model, cores, the `FEATURES` it has, and the versions of the `PACKAGES` installed."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    flags = cpu_flags()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "features": [feature for feature in FEATURES if feature in flags],
        "versions": versions,
    }
