"""Where and in which precision the networks run: TensorFlow's own device placement and Keras'
dtype policies, shared by training and the benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import tensorflow as tf

from pipeline.runtime.machine import cpu_has_bf16


@dataclass(frozen=True)
class Placement:
    device: str
    precision: str


@contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Build layers under Keras' dtype policy `name`, then restore the previous global policy."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def choose_placement(requested: str) -> Placement:
    """`decide_placement` for the devices TensorFlow sees here."""
    gpus = tf.config.list_physical_devices("GPU")
    capabilities = [
        tf.config.experimental.get_device_details(gpu).get("compute_capability") for gpu in gpus
    ]
    return decide_placement(requested, capabilities, cpu_has_bf16())


def decide_placement(
    requested: str, gpu_capabilities: list[tuple[int, int] | None], cpu_bf16: bool
) -> Placement:
    """GPU when there is one (with mixed precision), else the CPU; `gpu_capabilities` holds one
    CUDA compute capability per visible GPU (None when unknown).

    `auto` on a GPU: bfloat16 where it is native (compute capability 8.0+), else float16 with
    loss scaling. On a CPU: bfloat16 only where the CPU has bf16 instructions (AMX or AVX-512
    BF16); elsewhere it is emulated and slower than float32, so float32.
    """
    device = "GPU:0" if gpu_capabilities else "CPU:0"
    if requested != "auto":
        return Placement(device, requested)
    if gpu_capabilities:
        capability = gpu_capabilities[0]
        native_bf16 = capability is not None and capability >= (8, 0)
        return Placement(device, "mixed_bfloat16" if native_bf16 else "mixed_float16")
    return Placement(device, "mixed_bfloat16" if cpu_bf16 else "float32")
