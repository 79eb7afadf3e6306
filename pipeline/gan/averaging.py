"""An exponential moving average of the generator's weights, with batch-norm statistics
recomputed for it.

Adversarial training oscillates around a good generator rather than settling on one; the average
of its recent weights is a better generator than any of them (Yazici et al. 2019, "The Unusual
Effectiveness of Averaging in GAN Training"). Only the trainable weights are averaged. Batch
norm's running statistics belong to the weights that produced them: an average of them does not
describe the activations of the averaged weights (a generator averaged that way draws far
worse digits; docs/TRAINING.md). So `recalibrate_batch_norm` recomputes them for the
averaged weights from a fixed batch of noise before the average is drawn from or saved.

The decay warms up: at update t it is min(decay, 1 - 1 / (1 + horizon * t)), so the average
spans about the last `horizon` share of the updates made so far until that reaches the
plain `decay`'s span. A short run is thus averaged over its own recent steps, not dominated by
the random initial weights (0.999^1404 = 0.25 after three epochs without a warm-up).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class WeightAverage:
    """`average` (a network built like `source`) follows an exponential moving average of
    `source`'s trainable weights; call `update` after each optimizer step."""

    def __init__(self, source: keras.Model, average: keras.Model, decay: float, horizon: float):
        self.source = source
        self.average = average
        self.decay = decay
        self.horizon = horizon
        average.set_weights(source.get_weights())
        # Checkpoints find the counter by its place among the trainer's parts, not by a name.
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False)

    def current_decay(self) -> tf.Tensor:
        updates = tf.cast(self.updates, tf.float32)
        return tf.minimum(self.decay, 1.0 - 1.0 / (1.0 + self.horizon * updates))

    def update(self) -> None:
        """average -= (1 - decay) * (average - source): three passes over the weights where
        decay * average + (1 - decay) * source takes four (`tools/levers.py`)."""
        self.updates.assign_add(1)
        rate = 1.0 - self.current_decay()
        pairs = zip(self.average.trainable_variables, self.source.trainable_variables, strict=True)
        for averaged, current in pairs:
            averaged.assign_sub(rate * (averaged - tf.cast(current, averaged.dtype)))


def batch_norm_layers(network: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate_batch_norm(network: keras.Model, inputs) -> None:
    """Set each batch-norm layer's moving mean and variance to the mean and (biased, as in
    training) variance of its own input over `inputs`, layer after layer, each measured with
    the layers before it already recalibrated: exactly the statistics that inference with
    these weights meets on these inputs."""
    for norm in batch_norm_layers(network):
        # A model ending at this layer's input runs only the layers before it, in inference
        # mode (a Keras call's default outside training).
        probe = keras.Model(network.input, norm.input)
        activations = probe(inputs)
        values = np.asarray(tf.cast(activations, tf.float32))
        # One row per position: the channel is the last axis. Accumulating in float64 as the
        # reduction runs, rather than on a float64 copy, is as exact and several times faster.
        # The float32 statistics take the float64 values rounded to nearest.
        rows = values.reshape(-1, values.shape[-1])
        norm.moving_mean.assign(rows.mean(axis=0, dtype=np.float64))
        norm.moving_variance.assign(rows.var(axis=0, dtype=np.float64))
