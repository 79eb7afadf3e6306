"""The generator a run exports, and the images drawn from it.

With `train.average_decay` the exported generator is an exponential moving average of the
trained weights whose batch-norm statistics are recomputed for the weights it holds
(`pipeline.gan.averaging`); without, a float32 copy of the trained generator. With
`train.export_weights: best`, the stage saves the exported generator as it was at its lowest
tracked validation Frechet distance (`BestGenerator`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline.gan.averaging import recalibrate_batch_norm
from pipeline.gan.placement import precision_policy
from pipeline.runtime.noise import TRAINING_NOISE
from pipeline.storage import images as image_io
from pipeline.training.tracking import Measurement

# Noise vectors whose activations set the averaged generator's batch-norm statistics.
CALIBRATION_SAMPLES = 2048
DRAW_BATCH = 1024
CALIBRATION_STREAM = 2  # keeps the calibration draws apart from the other streams of the seed


class BestGenerator:
    """A copy of the exported generator's weights (batch-norm statistics included) taken when
    its validation Frechet distance is the lowest so far; checkpointed with the run."""

    def __init__(self, network):
        self.network = network
        self.distance = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(
            network=network, distance=self.distance, step=self.step
        )

    def offer(self, weights: Callable[[], list[np.ndarray]], measurement: Measurement) -> bool:
        """Keep `weights()` (called only then) when `measurement` is the best so far; returns
        whether it was."""
        if not measurement.frechet_distance < float(self.distance.numpy()):
            return False
        self.network.set_weights(weights())
        self.distance.assign(measurement.frechet_distance)
        self.step.assign(measurement.step)
        return True


class ExportedGenerator:
    """The exported view of a `Trainer`'s generator: drawing, weights, the saved network."""

    def __init__(self, trainer, best: BestGenerator | None):
        self.trainer = trainer
        self.average = trainer.average
        self.best = best
        self._calibrated_at = -1
        drawn = trainer.generator if self.average is None else self.average.average
        self._infer = tf.function(lambda inputs: drawn(inputs, training=False))

    def checkpoint_parts(self) -> dict[str, Any]:
        parts = {}
        if self.average is not None:
            parts |= {
                "average_generator": self.average.average,
                "average_updates": self.average.updates,
            }
        if self.best is not None:
            parts["best"] = self.best.checkpoint
        return parts

    def grid_labels(self, count: int) -> np.ndarray:
        """The labels of a grid's images: the generator's label values in turn."""
        return np.arange(count, dtype=np.int32) % max(self.trainer.classes, 1)

    def draw(self, noise: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """uint8 images `(N, 28, 28)` from `noise` (and `labels`, by default `grid_labels`),
        with batch norm in inference mode: of the weight average when there is one (what the
        stage exports), else of the trained generator."""
        if self.average is not None:
            self._recalibrate()
        return self._images(self._infer, noise, labels)

    def draw_saved(self, noise: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """uint8 images `(N, 28, 28)` of `saved_generator`."""
        saved = self.saved_generator()
        return self._images(lambda inputs: saved(inputs, training=False), noise, labels)

    def _images(self, generate, noise: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """uint8 images `(N, 28, 28)` of `generate` (inputs -> images in [-1, 1]),
        `DRAW_BATCH` at a time."""
        if labels is None:
            labels = self.grid_labels(len(noise))
        images = []
        for start in range(0, len(noise), DRAW_BATCH):
            part = slice(start, start + DRAW_BATCH)
            inputs = self.trainer.generator_inputs(
                tf.constant(noise[part]), tf.constant(labels[part])
            )
            images.append(np.asarray(generate(inputs), np.float32))
        return image_io.to_uint8(np.concatenate(images))[..., 0]

    def weights(self) -> list[np.ndarray]:
        """The weights (batch-norm statistics included) of `network`."""
        if self.average is not None:
            self._recalibrate()
            return self.average.average.get_weights()
        return self.trainer.generator.get_weights()

    def network(self):
        """The exported generator, in float32 whatever the training precision: the weight
        average with its batch-norm statistics recomputed, or with `average_decay: 0` a copy
        of the trained generator."""
        if self.average is not None:
            self._recalibrate()
            return self.average.average
        with precision_policy("float32"):
            copy = self.trainer.family.build_generator()
        copy.set_weights(self.weights())
        return copy

    def saved_generator(self):
        """What the stage writes to generator.keras: with `export_weights: best`, the exported
        generator at its lowest tracked validation Frechet distance, else the current one."""
        if self.best is not None and int(self.best.step.numpy()) > 0:
            return self.best.network
        return self.network()

    def offer(self, measurement: Measurement) -> None:
        """The tracked `measurement` of the current weights, for `BestGenerator`; the family
        keeps what it exports with a generator that is kept."""
        if self.best is not None and self.best.offer(self.weights, measurement):
            self.trainer.family.keep_best(self.trainer)

    def _recalibrate(self) -> None:
        """Batch-norm statistics for the current average, once per step it is used at."""
        trainer = self.trainer
        step = int(trainer.step.numpy())
        if self._calibrated_at == step:
            return
        calibration = TRAINING_NOISE.draw(
            np.random.default_rng([trainer.config.seed, CALIBRATION_STREAM]),
            CALIBRATION_SAMPLES,
            trainer.noise_dim,
        )
        inputs = trainer.generator_inputs(
            tf.constant(calibration), tf.constant(self.grid_labels(CALIBRATION_SAMPLES))
        )
        recalibrate_batch_norm(self.average.average, inputs)
        self._calibrated_at = step
