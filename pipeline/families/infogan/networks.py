"""InfoGAN's discriminator with its auxiliary head Q. The generator is the conditional one
(`pipeline.gan.networks.build_generator` with the categorical code as its label)."""

from __future__ import annotations

import keras
from keras import layers

from pipeline.runtime.contract import IMAGE_SHAPE, IMAGES_OUTPUT

Q_UNITS = 128  # InfoGAN's auxiliary head: one hidden layer, as in Chen et al. 2016 (MNIST)
INFOGAN_LEAKY_SLOPE = 0.1  # the paper's discriminator's


def build_infogan_discriminator(
    categorical: int, continuous: int, *, synchronized: bool = False
) -> keras.Model:
    """Images `(N, 28, 28, 1)` in [-1, 1] -> [logit `(N, 1)`, code logits `(N, categorical)`,
    continuous code means `(N, continuous)` (when there are any)]: InfoGAN's discriminator and
    auxiliary head Q, as in Chen et al. 2016 (Table 1, MNIST). Q shares every layer but its
    own (the extra cost is negligible).

    Not the seed discriminator: on it the generator learnt to ignore its noise (each code
    drew one image) and the categorical code matched digits at 72%; the paper's stride-2
    convolutions with batch norm, whose batch statistics let the discriminator see a batch
    that lacks variety, measured 81% with real variety (docs/FAMILIES.md, InfoGAN). `synchronized`:
    batch statistics over the global batch under a `tf.distribute` strategy."""
    images = keras.Input(IMAGE_SHAPE, name=IMAGES_OUTPUT)
    x = layers.Conv2D(64, 4, strides=2, padding="same")(images)  # (N, 14, 14, 64)
    x = layers.LeakyReLU(INFOGAN_LEAKY_SLOPE)(x)
    x = layers.Conv2D(128, 4, strides=2, padding="same")(x)  # (N, 7, 7, 128)
    x = layers.BatchNormalization(synchronized=synchronized)(x)
    x = layers.LeakyReLU(INFOGAN_LEAKY_SLOPE)(x)
    x = layers.Flatten()(x)  # (N, 6272)
    x = layers.Dense(1024)(x)
    x = layers.BatchNormalization(synchronized=synchronized)(x)
    features = layers.LeakyReLU(INFOGAN_LEAKY_SLOPE)(x)  # (N, 1024)
    logits = layers.Dense(1, dtype="float32", name="logits")(features)
    q = layers.Dense(Q_UNITS, name="q_hidden")(features)
    q = layers.BatchNormalization(synchronized=synchronized)(q)
    q = layers.LeakyReLU(INFOGAN_LEAKY_SLOPE)(q)
    outputs = [logits, layers.Dense(categorical, dtype="float32", name="q_categorical")(q)]
    if continuous:
        outputs.append(layers.Dense(continuous, dtype="float32", name="q_continuous")(q))
    return keras.Model(images, outputs, name="discriminator")
