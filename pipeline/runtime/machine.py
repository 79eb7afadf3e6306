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
# oneDNN's instruction-set caps, narrowest first (`ONEDNN_MAX_CPU_ISA`; docs/TESTING.md, CPU
# classes): TensorFlow's kernels use no more than the cap, which is how a smaller CPU class is
# emulated on a larger one. Aliases share a place.
ISA_CAPS = (
    ("SSE41",),
    ("AVX",),
    ("AVX2",),
    ("AVX2_VNNI",),
    ("AVX2_VNNI_2",),
    ("AVX512_CORE",),
    ("AVX512_CORE_VNNI",),
    ("AVX512_CORE_BF16",),
    ("AVX512_CORE_FP16", "AVX10_1_512"),
    ("AVX512_CORE_AMX", "AVX10_1_512_AMX"),
    ("AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16"),
)


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


def isa_cap() -> str | None:
    """The oneDNN instruction-set cap this process runs under (None: the CPU's own)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    cap = cap.strip().upper()
    return None if cap in ("", "ALL", "DEFAULT") else cap


def _cap_allows(least: str) -> bool:
    """Whether the cap (if any) reaches the instruction set `least`; a cap oneDNN does not
    name allows nothing wide, so a typo errs towards float32."""
    cap = isa_cap()
    if cap is None:
        return True
    rank = {name: place for place, names in enumerate(ISA_CAPS) for name in names}
    return cap in rank and rank[cap] >= rank[least]


def cpu_has_bf16() -> bool:
    """Native bfloat16 arithmetic: AMX or AVX-512 BF16, and no cap below it."""
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"}) and _cap_allows("AVX512_CORE_BF16")


def bf16_runs() -> bool:
    """Whether TensorFlow's bfloat16 kernels run here at all, natively or emulated. Under a cap
    below AVX-512 on a CPU that has it, oneDNN refuses them and the process aborts (measured:
    a bfloat16 matrix product under `AVX2` on an AVX512_BF16 EPYC), so such paths are left out."""
    return not (cpu_flags() & {"avx512f"}) or _cap_allows("AVX512_CORE")


def describe() -> dict[str, Any]:
    """CPU model, cores, the `FEATURES` it has, the oneDNN cap when there is one, and the
    versions of the `PACKAGES` installed."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    flags = cpu_flags()
    described = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "features": [feature for feature in FEATURES if feature in flags],
        "versions": versions,
    }
    cap = isa_cap()
    if cap is not None:
        described["isa_cap"] = cap
    return described
