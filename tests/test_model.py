"""The networks' shapes, output ranges and sizes, as the design notes give them."""

import keras
import numpy as np
import pytest

from pipeline.gan.networks import build_discriminator, build_generator


@pytest.fixture(scope="module")
def generator():
    return build_generator(96)


def test_generator_maps_noise_to_images_in_range(generator):
    noise = np.random.default_rng(0).uniform(-1, 1, (5, 96)).astype(np.float32)
    images = np.asarray(generator(noise, training=False))
    assert images.shape == (5, 28, 28, 1)
    assert images.dtype == np.float32
    assert images.min() >= -1.0
    assert images.max() <= 1.0


def test_generator_has_about_6_6_million_parameters(generator):
    assert generator.count_params() == pytest.approx(6.6e6, rel=0.02)
    assert generator.input_shape == (None, 96)


def test_discriminator_returns_one_logit_per_image():
    discriminator = build_discriminator()
    logits = discriminator(np.zeros((3, 28, 28, 1), np.float32))
    assert logits.shape == (3, 1)
    assert [
        layer.output.shape[1:] for layer in discriminator.layers if "pooling" in layer.name
    ] == [
        (12, 12, 32),
        (4, 4, 64),
    ]


def test_last_layers_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        generator, discriminator = build_generator(8), build_discriminator()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    images = generator(np.zeros((2, 8), np.float32))
    assert images.dtype == "float32"
    assert discriminator(images).dtype == "float32"
    assert generator.layers[1].compute_dtype == "bfloat16"
