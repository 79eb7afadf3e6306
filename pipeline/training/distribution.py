"""`train.distribute`: which `tf.distribute` strategy runs the training step, and the pieces a
step needs under one: each replica's slice of the global batch and noise that is the same
whatever the number of replicas.

- `off`: one device, no strategy (the single-device code path).
- `auto`: `MirroredStrategy` over all GPUs when TensorFlow sees more than one, else `off`.
- `mirrored`: `MirroredStrategy` over `train.replicas` local devices (0: all GPUs); without a
  GPU, the CPU split into that many logical devices (how the tests run it on 2 cores).
- `multi-worker`: `MultiWorkerMirroredStrategy`, the cluster and this process's task taken from
  `TF_CONFIG`, collectives over TensorFlow's own gRPC.

A strategy must exist before TensorFlow runs any op (logical devices and collectives are fixed
at start-up): `choose` is the first thing training does.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from pipeline.errors import ConfigError

# Calls of the noise source per step stay below this (noise, labels, shifts, mixing weights).
CALLS_PER_STEP = 64


@dataclass(frozen=True)
class Distribution:
    """The strategy (None: one device, no strategy), its replica count and this process's
    role: only the chief writes checkpoints and outputs."""

    strategy: tf.distribute.Strategy | None
    replicas: int
    name: str = "off"  # or mirrored, multi-worker
    chief: bool = True
    task: str = "chief"


def choose(setting: str, replicas: int) -> Distribution:
    gpus = tf.config.list_physical_devices("GPU")
    if setting == "off" or (setting == "auto" and len(gpus) < 2):
        return Distribution(None, 1)
    if setting in ("auto", "mirrored"):
        return _mirrored(gpus, replicas)
    return _multi_worker()


def _mirrored(gpus, replicas: int) -> Distribution:
    if gpus:
        if replicas > len(gpus):
            raise ConfigError(f"train.replicas: {replicas}, but TensorFlow sees {len(gpus)} GPUs")
        devices = [f"/gpu:{i}" for i in range(replicas or len(gpus))]
    else:
        count = replicas or 1
        if count > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            try:
                tf.config.set_logical_device_configuration(
                    cpu, [tf.config.LogicalDeviceConfiguration()] * count
                )
            except RuntimeError as error:  # TensorFlow already started in this process
                raise ConfigError(
                    "train.distribute: mirrored on logical CPU devices must be set up before "
                    f"TensorFlow starts ({error})"
                ) from error
        devices = [f"/cpu:{i}" for i in range(count)]
    return Distribution(tf.distribute.MirroredStrategy(devices), len(devices), "mirrored")


def _multi_worker() -> Distribution:
    try:
        cluster = json.loads(os.environ["TF_CONFIG"])
        task = cluster["task"]
        task_type, task_index = task["type"], int(task["index"])
        workers = cluster["cluster"]["worker"]
    except (KeyError, ValueError, TypeError) as error:
        raise ConfigError(
            "train.distribute: multi-worker needs TF_CONFIG, a JSON cluster spec such as "
            '{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]}, '
            '"task": {"type": "worker", "index": 0}} (docs/DISTRIBUTED.md)'
        ) from error
    has_chief = bool(cluster["cluster"].get("chief"))
    chief = task_type == "chief" or (task_type == "worker" and task_index == 0 and not has_chief)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Distribution(
        strategy,
        strategy.num_replicas_in_sync,
        "multi-worker",
        chief=chief,
        task=f"{task_type} {task_index} of {len(workers)} workers",
    )


class ReplicaNoise:
    """Noise for a step under a strategy, drawn so that it does not depend on how the batch
    is split: every replica draws the whole global batch's values from a stateless seed
    (train.seed, step, call) and keeps its own rows. A 2-replica run therefore sees exactly
    the noise of a 1-replica run of the same global batch, and a resumed run the noise of an
    uninterrupted one (the step is checkpointed). Same `uniform` as `tf.random.Generator`,
    whose batch axis must be the first."""

    def __init__(self, seed: int, step: tf.Variable, replicas: int):
        self.seed = seed
        self.step = step
        self.replicas = replicas
        # Calls so far in this step, per tracing thread: MirroredStrategy traces each replica's
        # step in its own thread, interleaved at every all-reduce.
        self.calls: dict[int, int] = {}

    def begin_step(self) -> None:
        """Number this step's calls from 0 (each replica's trace makes the same calls)."""
        self.calls[threading.get_ident()] = 0

    def uniform(self, shape, minval=0, maxval=None, dtype=tf.float32) -> tf.Tensor:
        shape = list(shape)
        count = shape[0]
        thread = threading.get_ident()
        call = self.calls.get(thread, 0)
        self.calls[thread] = call + 1
        if call >= CALLS_PER_STEP:
            raise RuntimeError(f"more than {CALLS_PER_STEP} noise calls in one step")
        key = tf.cast(self.step, tf.int64) * CALLS_PER_STEP + call
        seed = tf.stack([tf.constant(self.seed, tf.int64), key])
        whole = tf.random.stateless_uniform(
            [count * self.replicas, *shape[1:]], seed, minval, maxval, dtype=dtype
        )
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return whole[replica * count : (replica + 1) * count]


def split_batch(strategy: tf.distribute.Strategy, parts: int, *arrays: np.ndarray):
    """Per-replica values of `arrays` (each `(parts * N, ...)`, `parts` discriminator steps'
    batches one after the other): replica r of R takes rows r*N/R ... of each part."""
    replicas = strategy.num_replicas_in_sync

    def slice_for(context):
        r = context.replica_id_in_sync_group
        sliced = []
        for array in arrays:
            batches = np.asarray(array).reshape(parts, -1, *np.shape(array)[1:])
            share = batches.shape[1] // replicas
            part = batches[:, r * share : (r + 1) * share]
            sliced.append(tf.constant(part.reshape(-1, *part.shape[2:])))
        return tuple(sliced)

    return strategy.experimental_distribute_values_from_function(slice_for)
