"""The semi-supervised GAN's discriminator: a classifier of the digits with an implicit fake
class. The generator is the seed's."""

from __future__ import annotations

import keras
from keras import layers

from pipeline.gan.networks import LEAKY_SLOPE
from pipeline.runtime.contract import CLASSES, IMAGE_SHAPE, IMAGES_OUTPUT

# The semi-supervised discriminator's regularisers: Gaussian noise on its input and dropout
# after each block (their CIFAR network's). Salimans et al. 2016 put std 0.3 on MNIST images in
# [0, 1], 0.6 on these in [-1, 1]; 0.15 gave the lowest test error over three label draws
# (docs/FAMILIES.md, Semi-supervised GAN).
INPUT_NOISE_STD = 0.15
CONV_DROPOUT = 0.2
FEATURE_DROPOUT = 0.5


def build_classifier_discriminator(classes: int = CLASSES) -> keras.Model:
    """Images `(N, 28, 28, 1)` in [-1, 1] -> [class logits `(N, classes)`, features `(N, 1024)`]:
    the semi-supervised GAN's discriminator (Salimans et al. 2016). The fake class is implicit
    (its logit fixed at 0, `pipeline.gan.losses.implicit_fake_logit`); the features, its last hidden
    layer as training sees it (dropout included), are what the generator's feature matching
    compares.

    The seed discriminator's layers, so it is the same network as the other models', plus
    the paper's regularisers: with 100 labels an unregularised network memorises them. Keras'
    noise and dropout layers draw from their own seed state, which the checkpoint keeps."""
    images = keras.Input(IMAGE_SHAPE, name=IMAGES_OUTPUT)
    x = layers.GaussianNoise(INPUT_NOISE_STD)(images)
    x = layers.Conv2D(32, 5)(x)  # (N, 24, 24, 32)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.MaxPooling2D(2, strides=2)(x)  # (N, 12, 12, 32)
    x = layers.Dropout(CONV_DROPOUT)(x)
    x = layers.Conv2D(64, 5)(x)  # (N, 8, 8, 64)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.MaxPooling2D(2, strides=2)(x)  # (N, 4, 4, 64)
    x = layers.Dropout(CONV_DROPOUT)(x)
    x = layers.Flatten()(x)  # (N, 1024)
    x = layers.Dense(4 * 4 * 64)(x)  # (N, 1024)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    features = layers.Dropout(FEATURE_DROPOUT)(x)
    logits = layers.Dense(classes, dtype="float32", name="class_logits")(features)
    features = layers.Activation("linear", dtype="float32", name="features")(features)
    return keras.Model(images, [logits, features], name="discriminator")
