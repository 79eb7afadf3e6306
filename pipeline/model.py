"""The DCGAN networks (CS231n style): two separate Keras models so the generator alone is saved.

Under a mixed-precision policy the last layer of each network is kept in float32, so the images
and the logits that the losses see are float32.
"""

from __future__ import annotations

import keras
from keras import layers

IMAGE_SHAPE = (28, 28, 1)
LEAKY_SLOPE = 0.01


def build_generator(noise_dim: int) -> keras.Model:
    """Noise `(N, noise_dim)` in [-1, 1] -> images `(N, 28, 28, 1)` in [-1, 1] (tanh)."""
    noise = keras.Input((noise_dim,), name="z")
    x = layers.Dense(1024, activation="relu")(noise)  # (N, 1024)
    x = layers.BatchNormalization()(x)
    x = layers.Dense(7 * 7 * 128, activation="relu")(x)  # (N, 6272)
    x = layers.BatchNormalization()(x)
    x = layers.Reshape((7, 7, 128))(x)  # (N, 7, 7, 128)
    x = layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)  # (N, 14, 14, 64)
    images = layers.Conv2DTranspose(
        1, 4, strides=2, padding="same", activation="tanh", dtype="float32", name="images"
    )(x)  # (N, 28, 28, 1)
    return keras.Model(noise, images, name="generator")


def build_discriminator() -> keras.Model:
    """Images `(N, 28, 28, 1)` in [-1, 1] -> one logit `(N, 1)` (no sigmoid: losses take logits)."""
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = layers.Conv2D(32, 5)(images)  # (N, 24, 24, 32)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.MaxPooling2D(2, strides=2)(x)  # (N, 12, 12, 32)
    x = layers.Conv2D(64, 5)(x)  # (N, 8, 8, 64)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.MaxPooling2D(2, strides=2)(x)  # (N, 4, 4, 64)
    x = layers.Flatten()(x)  # (N, 1024)
    x = layers.Dense(4 * 4 * 64)(x)  # (N, 1024)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    logits = layers.Dense(1, dtype="float32", name="logits")(x)  # (N, 1)
    return keras.Model(images, logits, name="discriminator")
