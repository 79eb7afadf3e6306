"""BiGAN's own networks: the encoder E, images to the noise, and the discriminator of (image,
noise) pairs. The generator is the seed's (`pipeline.gan.networks`)."""

from __future__ import annotations

import keras
from keras import layers

from pipeline.gan.networks import LEAKY_SLOPE, seed_convolutions
from pipeline.runtime.contract import (
    CODES_OUTPUT,
    FEATURES_OUTPUT,
    IMAGE_SHAPE,
    IMAGES_OUTPUT,
    NOISE_INPUT,
)


def build_encoder(noise_dim: int) -> keras.Model:
    """Images `(N, 28, 28, 1)` in [-1, 1] -> [codes `(N, noise_dim)`, features `(N, 1024)`]:
    BiGAN's encoder E, the seed discriminator's layers with a linear head in the noise space.
    The codes are not squashed into the noise's range: the joint discriminator sees them
    beside drawn noise and pushes them there. The features, the layer before the head, are
    what a downstream task reads (docs/FAMILIES.md, BiGAN)."""
    images = keras.Input(IMAGE_SHAPE, name=IMAGES_OUTPUT)
    x = seed_convolutions(images)
    x = layers.Dense(4 * 4 * 64)(x)  # (N, 1024)
    features = layers.LeakyReLU(LEAKY_SLOPE, dtype="float32", name=FEATURES_OUTPUT)(x)
    codes = layers.Dense(noise_dim, dtype="float32", name=CODES_OUTPUT)(features)
    return keras.Model(images, [codes, features], name="encoder")


def build_joint_discriminator(noise_dim: int, *, unary: bool = False) -> keras.Model:
    """[images `(N, 28, 28, 1)`, noise `(N, noise_dim)`] -> one logit `(N, 1)`: BiGAN's
    discriminator on (x, z) pairs, real ones (x, E(x)) against generated ones (G(z), z). The
    image goes through the seed discriminator's layers, the noise through one dense layer of
    the same width; the two meet in a dense layer before the logit (Donahue et al. 2016).

    `unary`: three logits `(N, 3)`, the joint one, one of the image's branch alone and one of
    the noise's (BigBiGAN, Donahue and Simonyan 2019). An elementwise GAN loss on them is the
    mean of the three scores' losses: the image's alone gives the generator an ordinary
    image GAN's signal, the noise's alone pulls E(x) toward the noise's distribution."""
    images = keras.Input(IMAGE_SHAPE, name=IMAGES_OUTPUT)
    noise = keras.Input((noise_dim,), name=NOISE_INPUT)
    seen = seed_convolutions(images)
    seen = layers.LeakyReLU(LEAKY_SLOPE)(layers.Dense(4 * 4 * 64)(seen))
    drawn = layers.LeakyReLU(LEAKY_SLOPE)(layers.Dense(4 * 4 * 64)(noise))
    x = layers.Concatenate()([seen, drawn])  # (N, 2048)
    x = layers.LeakyReLU(LEAKY_SLOPE)(layers.Dense(4 * 4 * 64)(x))
    logits = layers.Dense(1, dtype="float32", name="logits")(x)
    if unary:
        image_alone = layers.Dense(1, dtype="float32", name="image_logits")(seen)
        noise_alone = layers.Dense(1, dtype="float32", name="noise_logits")(drawn)
        logits = layers.Concatenate(dtype="float32", name="scores")(
            [logits, image_alone, noise_alone]
        )
    return keras.Model([images, noise], logits, name="discriminator")
