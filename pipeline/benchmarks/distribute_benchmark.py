"""`dcgan distribute-benchmark`: what a `tf.distribute` strategy adds to a training step.

In one process with the CPU split into two logical devices, the same step (the train section's
model, batch and precision; synchronised batch norm under the strategies) is timed with no
strategy, under `MirroredStrategy` on one replica and on two, the windows alternating; then two
worker processes on 127.0.0.1 time it under `MultiWorkerMirroredStrategy`. The overhead is each
one's median step time minus the single-device one, in ms and in % of it. On 2 cores a second
replica only shares the same cores: the figures measure the cost of the machinery, not a
speed-up. A benchmark, not a test: it reports and never fails on speed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from itertools import cycle
from typing import Any

import numpy as np

from pipeline.config import TrainSettings
from pipeline.runtime import machine
from pipeline.training import distribution

log = logging.getLogger(__name__)

WINDOWS = 5
STEPS_PER_WINDOW = 4
WARM_UP_STEPS = 3


def trainer_for(config: TrainSettings, distributed):
    from pipeline.gan.placement import choose_placement, precision_policy
    from pipeline.training.trainer import Trainer

    placement = choose_placement(config.precision)
    with precision_policy(placement.precision):
        return Trainer(config, placement, 0, distributed), placement.precision


def batches(config: TrainSettings) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        (rng.integers(0, 255, (config.batch_size, 28, 28), np.uint8), np.zeros(config.batch_size))
        for _ in range(4)
    ]


def window_ms(trainer, inputs, steps: int) -> float:
    """Milliseconds per step over `steps` steps (inputs split as the training loop splits
    them, a float of the losses read at the end as the loop does)."""
    start = time.perf_counter()
    for _ in range(steps):
        d_loss, _ = trainer.train_step(*trainer.step_inputs(*next(inputs)))
    float(d_loss)
    return 1000 * (time.perf_counter() - start) / steps


def measure_mirrored(config: TrainSettings) -> dict[str, Any]:
    import tensorflow as tf

    distribution.choose("mirrored", 2)  # splits the CPU into 2 logical devices
    setups = {
        "off": distribution.Distribution(None, 1),
        "mirrored_1": distribution.Distribution(
            tf.distribute.MirroredStrategy(["/cpu:0"]), 1, "mirrored"
        ),
        "mirrored_2": distribution.Distribution(
            tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), 2, "mirrored"
        ),
    }
    trainers = {name: trainer_for(config, setup)[0] for name, setup in setups.items()}
    inputs = cycle(batches(config))
    for trainer in trainers.values():
        window_ms(trainer, inputs, WARM_UP_STEPS)
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(WINDOWS):
        for name, trainer in trainers.items():
            times[name].append(window_ms(trainer, inputs, STEPS_PER_WINDOW))
    return {name: statistics.median(values) for name, values in times.items()}


def worker_main(config_json: str) -> None:
    """One worker of the multi-worker measurement (TF_CONFIG set by the parent): prints its
    median step time as JSON."""
    config = TrainSettings(**json.loads(config_json))
    distributed = distribution.choose("multi-worker", 0)
    trainer, _ = trainer_for(config, distributed)
    inputs = cycle(batches(config))
    window_ms(trainer, inputs, WARM_UP_STEPS)
    windows = [window_ms(trainer, inputs, STEPS_PER_WINDOW) for _ in range(WINDOWS)]
    print(json.dumps({"step_ms": statistics.median(windows)}))


def measure_multi_worker(config: TrainSettings) -> float:
    """The chief's median step time with two worker processes on 127.0.0.1."""
    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    workers = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    settings = json.dumps(config.as_dict())
    processes = []
    for index in range(2):
        cluster = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "pipeline.benchmarks.distribute_benchmark", settings],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "TF_CONFIG": json.dumps(cluster)},
            )
        )
    try:
        outputs = [process.communicate(timeout=600) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, err) in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"a benchmark worker failed: {err.strip().splitlines()[-1:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])["step_ms"]


def distribute_benchmark(config: TrainSettings) -> dict[str, Any]:
    from pipeline.gan.placement import choose_placement

    precision = choose_placement(config.precision).precision
    step_ms = measure_mirrored(config)
    step_ms["multi_worker_2"] = measure_multi_worker(config)
    single = step_ms["off"]
    overhead = {
        name: {"ms": ms - single, "percent": 100 * (ms - single) / single}
        for name, ms in step_ms.items()
        if name != "off"
    }
    for name, cost in overhead.items():
        log.info("%s: %+.1f ms per step (%+.0f%%)", name, cost["ms"], cost["percent"])
    return {
        "batch_size": config.batch_size,
        "precision": precision,
        "step_ms": step_ms,
        "overhead": overhead,
        "machine": machine.describe(),
    }


if __name__ == "__main__":
    worker_main(sys.argv[1])
