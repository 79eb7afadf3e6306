"""The DCGAN networks (CS231n style): two separate Keras models so the generator alone is saved.

Under a mixed-precision policy the last layer of each network is kept in float32, so the images
and the logits that the losses see are float32.

With `classes` (the conditional model, `train.model: conditional`) both networks also take an
int32 label `(N,)`:
- the generator concatenates a learned embedding of the label to the noise, so every layer after
  the first sees it (and the export folds it into a per-class bias of the first layer);
- the discriminator is a projection discriminator (Miyato & Koyama 2018): its logit is the
  unconditional one plus the inner product of a learned class vector with its last hidden
  features. That is the form the optimal discriminator's log density ratio takes for
  categorical labels; it adds one 10 x 1024 table and no change to the convolutions, it works
  unchanged with every loss (the gradient penalty is taken with the label held fixed), and it
  conditions better than feeding the label in beside the image (Miyato & Koyama, Table 1).

InfoGAN (`train.model: infogan`) reuses the conditional generator: its categorical code is the
label input (a learned embedding into the first dense layer computes the same family of
functions as the paper's one-hot concatenation: any per-code bias of that layer) and its
continuous codes are the last columns of the noise, uniform in [-1, 1] like the rest. Only the
export names them apart (`pipeline.runtime.contract`).

A family's own networks (InfoGAN's discriminator with Q, the semi-supervised classifier, BiGAN's
encoder and pair discriminator) live in its package, `pipeline/families/<name>/networks.py`,
built from the pieces here (`seed_convolutions`, `LEAKY_SLOPE`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from pipeline.runtime.contract import (
    IMAGE_SHAPE,
    IMAGES_OUTPUT,
    LABEL_INPUT,
    NOISE_INPUT,
)

LEAKY_SLOPE = 0.01
LABEL_EMBEDDING_DIM = 32  # of the generator's label embedding


def from_uint8(images) -> tf.Tensor:
    """uint8 `(N, 28, 28)` -> float32 `(N, 28, 28, 1)` in [-1, 1], inside a graph (the numpy
    twin for arrays: `pipeline.storage.images.from_uint8`)."""
    return tf.cast(images, tf.float32)[..., tf.newaxis] / 127.5 - 1.0


class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's batch norm whose training pass is TensorFlow's fused kernel: the statistics, the
    normalisation and their gradient each in one pass over the activations, where Keras's
    float32 ops take about ten (`tools/levers.py` measures the generator's pass with each;
    docs/PERFORMANCE.md). The moving statistics follow Keras's rule, with the batch's biased
    variance. Inference, and a synchronized or masked call, is Keras's own."""

    def call(self, inputs, training=None, mask=None):
        rank = len(inputs.shape)
        fused = (
            training
            and self.trainable
            and mask is None
            and not self.synchronized
            and not self.renorm
            and self.center
            and self.scale
            and self.axis in (-1, rank - 1)
            and rank in (2, 4)
        )
        if not fused:
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        images = inputs if rank == 4 else tf.reshape(inputs, (-1, 1, 1, channels))
        outputs, mean, corrected, *_ = tf.raw_ops.FusedBatchNormV3(
            x=tf.cast(images, self.compute_dtype),
            scale=tf.cast(self.gamma, tf.float32),
            offset=tf.cast(self.beta, tf.float32),
            mean=tf.zeros((0,), tf.float32),
            variance=tf.zeros((0,), tf.float32),
            epsilon=self.epsilon,
            is_training=True,
        )
        rows = tf.cast(tf.size(images) // channels, tf.float32)
        variance = corrected * (rows - 1.0) / rows  # the kernel returns it Bessel-corrected
        rate = 1.0 - self.momentum
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * rate)
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * rate)
        return outputs if rank == 4 else tf.reshape(outputs, tf.shape(inputs))


def build_generator(
    noise_dim: int, classes: int = 0, *, synchronized: bool = False, trained: bool = False
) -> keras.Model:
    """Noise `(N, noise_dim)` in [-1, 1] (and with `classes`, labels `(N,)`) -> images
    `(N, 28, 28, 1)` in [-1, 1] (tanh). `synchronized`: under a `tf.distribute` strategy, batch
    norm takes its statistics over the global batch, not each replica's share, so a step on
    R replicas computes what one device would (docs/DISTRIBUTED.md). `trained`: the network
    the optimizer trains, with `FusedBatchNormalization` (the networks a run only draws from
    and saves keep Keras's layer, so saved files hold only Keras layers)."""
    norm = FusedBatchNormalization if trained else layers.BatchNormalization
    noise = keras.Input((noise_dim,), name=NOISE_INPUT)
    x = noise
    if classes:
        label = keras.Input((), dtype="int32", name=LABEL_INPUT)
        embedded = layers.Embedding(classes, LABEL_EMBEDDING_DIM, name="label_embedding")(label)
        x = layers.Concatenate(name="z_and_label")([noise, embedded])
    x = layers.Dense(1024, activation="relu")(x)  # (N, 1024)
    x = norm(synchronized=synchronized)(x)
    x = layers.Dense(7 * 7 * 128, activation="relu")(x)  # (N, 6272)
    x = norm(synchronized=synchronized)(x)
    x = layers.Reshape((7, 7, 128))(x)  # (N, 7, 7, 128)
    x = layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu")(x)
    x = norm(synchronized=synchronized)(x)  # (N, 14, 14, 64)
    images = layers.Conv2DTranspose(
        1, 4, strides=2, padding="same", activation="tanh", dtype="float32", name=IMAGES_OUTPUT
    )(x)  # (N, 28, 28, 1)
    inputs = [noise, label] if classes else noise
    return keras.Model(inputs, images, name="generator")


def build_discriminator(classes: int = 0, *, batch_norm: bool = False) -> keras.Model:
    """Images `(N, 28, 28, 1)` in [-1, 1] (and with `classes`, labels `(N,)`) -> one logit
    `(N, 1)` (no sigmoid: losses take logits). `batch_norm`: before the second convolution's
    and the dense layer's activations, as the WGAN authors' DCGAN critic has it (a clipped
    critic without it learns far more slowly; docs/FAMILIES.md#losses)."""
    images = keras.Input(IMAGE_SHAPE, name=IMAGES_OUTPUT)  # the generator's, or real
    # before the next layer: a layer draws its seed when made
    x = seed_convolutions(images, batch_norm=batch_norm)
    x = layers.Dense(4 * 4 * 64)(x)  # (N, 1024)
    if batch_norm:
        x = layers.BatchNormalization()(x)
    features = layers.LeakyReLU(LEAKY_SLOPE)(x)
    logits = layers.Dense(1, dtype="float32", name="logits")(features)  # (N, 1)
    if not classes:
        return keras.Model(images, logits, name="discriminator")
    label = keras.Input((), dtype="int32", name=LABEL_INPUT)
    class_vectors = layers.Embedding(classes, 4 * 4 * 64, name="class_projection")(label)
    projection = layers.Dot(axes=1, dtype="float32")([class_vectors, features])  # (N, 1)
    logits = layers.Add(dtype="float32", name="projected_logits")([logits, projection])
    return keras.Model([images, label], logits, name="discriminator")


def seed_convolutions(images, *, batch_norm: bool = False) -> tf.Tensor:
    """The seed discriminator's convolutional trunk: images -> `(N, 1024)` flattened maps."""
    x = layers.Conv2D(32, 5)(images)  # (N, 24, 24, 32)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.MaxPooling2D(2, strides=2)(x)  # (N, 12, 12, 32)
    x = layers.Conv2D(64, 5)(x)  # (N, 8, 8, 64)
    if batch_norm:
        x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.MaxPooling2D(2, strides=2)(x)  # (N, 4, 4, 64)
    return layers.Flatten()(x)  # (N, 1024)
