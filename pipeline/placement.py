"""Where and in which precision the networks run: TensorFlow's own device placement and Keras'
dtype policies, shared by training and the benchmarks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import tensorflow as tf

from pipeline.machine import cpu_has_bf16


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
    """GPU when TensorFlow sees one (with mixed precision), else the CPU.

    `auto` on a GPU: bfloat16 where it is native (compute capability 8.0+), else float16 with
    loss scaling. On a CPU: bfloat16 only where the CPU has bf16 instructions (AMX or AVX-512
    BF16); elsewhere it is emulated and slower than float32, so float32.
    """
    gpus = tf.config.list_physical_devices("GPU")
    device = "GPU:0" if gpus else "CPU:0"
    if requested != "auto":
        return Placement(device, requested)
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        native_bf16 = capability is not None and capability >= (8, 0)
        return Placement(device, "mixed_bfloat16" if native_bf16 else "mixed_float16")
    return Placement(device, "mixed_bfloat16" if cpu_has_bf16() else "float32")
