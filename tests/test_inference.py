"""The rewritten inference generator computes what the Keras generator computes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import FLOAT32_REORDERING
from pipeline.errors import ExportError
from pipeline.export.folding import folded_generator, packed_transposed, phase_kernel
from pipeline.gan.networks import build_generator


def trained_looking(generator, seed: int, *, negative_gammas: bool):
    """Random weights everywhere, batch norm statistics far from the identity, and (optionally)
    negative gammas: the cases the folding must get right, which fresh weights never show."""
    rng = np.random.default_rng(seed)
    for layer in generator.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if type(layer).__name__ == "BatchNormalization":
            size = weights[0].shape
            gamma = rng.uniform(0.5, 1.5, size)
            if negative_gammas:
                gamma *= rng.choice([-1.0, 1.0], size)
            beta, mean = rng.normal(0, 0.5, size), rng.normal(0, 0.5, size)
            variance = rng.uniform(0.2, 2.0, size)
            layer.set_weights([a.astype(np.float32) for a in (gamma, beta, mean, variance)])
        else:
            layer.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32) for w in weights])
    return generator


@pytest.mark.parametrize("negative_gammas", [False, True])
def test_folded_equals_keras(negative_gammas):
    generator = trained_looking(build_generator(8), 1, negative_gammas=negative_gammas)
    noise = np.random.default_rng(2).uniform(-1, 1, (64, 8)).astype(np.float32)
    expected = generator(noise, training=False).numpy()
    actual = folded_generator(generator)(noise).numpy()
    assert actual.shape == expected.shape == (64, 28, 28, 1)
    assert np.abs(actual - expected).max() < FLOAT32_REORDERING
    assert np.abs(expected).mean() > 0.05  # not a vacuous match of near-zero images


def test_folded_conditional_equals_keras_for_every_label():
    generator = trained_looking(build_generator(8, classes=10), 5, negative_gammas=True)
    noise = np.repeat(np.random.default_rng(6).uniform(-1, 1, (4, 8)), 10, axis=0)
    labels = np.tile(np.arange(10), 4)  # each noise vector under every label
    expected = generator([noise.astype(np.float32), labels.astype(np.int32)], training=False)
    expected = expected.numpy()
    actual = folded_generator(generator)(noise.astype(np.float32), labels.astype(np.int64))
    assert np.abs(actual.numpy() - expected).max() < FLOAT32_REORDERING
    assert np.abs(expected[0] - expected[1]).mean() > 0.01  # the label changes the image


def test_phase_kernels_reproduce_a_transposed_convolution():
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(4, 4, 5, 3)).astype(np.float32)  # (k, k, out, in)
    images = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
    expected = tf.nn.conv2d_transpose(images, kernel, (2, 12, 12, 5), 2, "SAME").numpy()
    for py, px in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        padding = [[0, 0], [1 - py, py], [1 - px, px], [0, 0]]
        phase = tf.nn.conv2d(images, phase_kernel(kernel, py, px), 1, padding).numpy()
        np.testing.assert_allclose(phase, expected[:, py::2, px::2], atol=FLOAT32_REORDERING)


def test_packed_kernel_reads_only_its_2x2_neighbourhood():
    kernel = np.random.default_rng(4).normal(size=(4, 4, 1, 2))
    packed, bias = packed_transposed(kernel, np.zeros((28, 28, 1)))
    assert packed.shape == (2, 2, 8, 16)
    assert bias.shape == (7, 7, 16)
    assert np.abs(packed).sum() > 0


def test_an_unknown_architecture_is_refused():
    noise = keras.Input((8,))
    other = keras.Model(noise, keras.layers.Dense(4)(noise))
    with pytest.raises(ExportError, match="cannot fold a generator made of Dense"):
        folded_generator(other)
