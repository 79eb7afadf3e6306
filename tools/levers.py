"""The training step's kept levers against what they replace, side by side in one process.

Each pair runs on the default networks in the training precision, the two taking turns window
by window; the medians over the windows are printed with the CPU. `python tools/levers.py`
(about a minute), or `python tools/levers.py float32` for the precision `auto` takes on a CPU
without native bfloat16; docs/PERFORMANCE.md's lever table quotes it.
"""

from __future__ import annotations

import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from pipeline.benchmarks.benchmark import SETTLE_SECONDS
from pipeline.gan import networks
from pipeline.gan.averaging import WeightAverage
from pipeline.gan.optimizers import FusedAdam
from pipeline.gan.placement import choose_placement, precision_policy
from pipeline.runtime import machine

WINDOWS = 7
CALLS = 10  # per window
BATCH = 128
NOISE_DIM = 96


def adam_pair(network: keras.Model) -> dict:
    """One Adam update of `network`'s weights: Keras's, and the fused kernel's."""
    variables = network.trainable_variables
    gradients = [tf.random.stateless_normal(v.shape, (0, i)) for i, v in enumerate(variables)]
    pair = {}
    for name, optimizer in (
        ("Keras Adam", keras.optimizers.Adam(2e-4)),
        ("FusedAdam", FusedAdam(2e-4)),
    ):
        optimizer.build(variables)
        pair[name] = tf.function(
            lambda optimizer=optimizer: optimizer.apply_gradients(
                zip(gradients, variables, strict=True)
            )
        )
    return pair


def batch_norm_pair() -> dict:
    """The generator's forward and backward pass on a batch: with Keras's batch norm, and
    with the fused one."""
    noise = tf.random.stateless_uniform((BATCH, NOISE_DIM), (0, 1), -1.0, 1.0)
    pair = {}
    for name, trained in (("Keras batch norm", False), ("fused batch norm", True)):
        generator = networks.build_generator(NOISE_DIM, trained=trained)

        def step(generator=generator):
            with tf.GradientTape() as tape:
                images = generator(noise, training=True)
                loss = tf.reduce_mean(tf.square(images))
            return tape.gradient(loss, generator.trainable_variables)

        pair[name] = tf.function(step)
    return pair


def average_pair(network: keras.Model) -> dict:
    """The weight average's update: d * a + (1 - d) * w, and `WeightAverage.update`."""
    with precision_policy("float32"):
        averaged = networks.build_generator(NOISE_DIM)
    average = WeightAverage(network, averaged, decay=0.999, horizon=0.1)
    decay = tf.constant(0.999)

    def blend():
        pairs = zip(averaged.trainable_variables, network.trainable_variables, strict=True)
        for target, current in pairs:
            target.assign(decay * target + (1.0 - decay) * tf.cast(current, tf.float32))

    return {"blend": tf.function(blend), "subtraction": tf.function(average.update)}


def median_ms(pair: dict) -> dict[str, float]:
    for run in pair.values():
        tf.nest.map_structure(np.asarray, run())  # trace and warm up
    seconds = {name: [] for name in pair}
    for _ in range(WINDOWS):
        for name, run in pair.items():
            time.sleep(SETTLE_SECONDS)  # the other's threads spin down
            start = time.perf_counter()
            for _ in range(CALLS):
                out = run()
            tf.nest.map_structure(np.asarray, out)
            seconds[name].append((time.perf_counter() - start) / CALLS)
    return {name: 1000 * statistics.median(values) for name, values in seconds.items()}


def main(precision: str) -> None:
    placement = choose_placement(precision)
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    described = machine.describe()
    print(f"{described['cpu']}, {described['cores']} cores, {', '.join(described['features'])}")
    print(f"precision {placement.precision}; medians of {WINDOWS} alternating windows, ms per call")
    with precision_policy(placement.precision):
        generator = networks.build_generator(NOISE_DIM)
        discriminator = networks.build_discriminator()
        pairs = {
            "generator's Adam update": adam_pair(generator),
            "discriminator's Adam update": adam_pair(discriminator),
            "generator forward and backward, batch 128": batch_norm_pair(),
            "weight average update": average_pair(generator),
        }
        for what, pair in pairs.items():
            (old, new), (old_ms, new_ms) = zip(*median_ms(pair).items(), strict=True)
            print(f"{what}: {new} {new_ms:.1f} against {old} {old_ms:.1f} ({old_ms / new_ms:.2f}x)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "auto")
