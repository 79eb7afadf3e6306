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


@pytest.mark.bf16
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


def batch_norm_pair(rank: int):
    """A Keras batch norm and a fused one with the same weights, built for `rank`-d inputs."""
    import tensorflow as tf  # noqa: F401  (the layers below need its backend)

    from pipeline.gan.networks import FusedBatchNormalization

    shape = (None, 6) if rank == 2 else (None, 3, 3, 6)
    plain, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
    for layer in (plain, fused):
        layer.build(shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, 6))
        layer.beta.assign(np.linspace(-1.0, 1.0, 6))
        layer.moving_mean.assign(np.full(6, 0.3))
        layer.moving_variance.assign(np.full(6, 2.0))
    return plain, fused


@pytest.mark.parametrize("rank", [2, 4])
def test_the_fused_batch_norm_trains_as_keras_batch_norm_does(rank):
    """Outputs, moving statistics (the biased batch variance) and gradients of the fused
    training pass equal Keras's own to float32 rounding; inference is Keras's."""
    import tensorflow as tf

    plain, fused = batch_norm_pair(rank)
    shape = (32, 6) if rank == 2 else (4, 3, 3, 6)
    x = tf.constant(np.random.default_rng(rank).normal(2.0, 3.0, shape), tf.float32)
    weights = tf.constant(np.random.default_rng(9).normal(size=shape), tf.float32)
    results = []
    for layer in (plain, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * weights)
        gradients = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append([y, *gradients, layer.moving_mean, layer.moving_variance])
    for expected, got in zip(*results, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-4, atol=1e-5)
    # The moving variance moved by the biased variance of the batch: by hand.
    rows = np.asarray(x, np.float64).reshape(-1, 6)
    np.testing.assert_allclose(
        fused.moving_variance.numpy(), 0.99 * 2.0 + 0.01 * rows.var(0), rtol=1e-5
    )
    np.testing.assert_array_equal(
        np.asarray(fused(x, training=False)), np.asarray(plain(x, training=False))
    )


def test_only_the_trained_generator_has_the_fused_batch_norm():
    """What a run saves (the average, the best, a copy) is built without `trained`: Keras's
    layers only, which any Keras loads and the export folds."""
    from pipeline.gan.networks import FusedBatchNormalization

    def kinds(network):
        return [type(layer) for layer in network.layers if "Normalization" in type(layer).__name__]

    assert kinds(build_generator(96, trained=True)) == [FusedBatchNormalization] * 3
    assert kinds(build_generator(96)) == [keras.layers.BatchNormalization] * 3
    # Under a strategy the statistics are the global batch's: Keras's synchronized layer.
    synchronized = build_generator(96, synchronized=True, trained=True)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 96)).astype(np.float32)
    assert np.asarray(synchronized(x, training=True)).shape == (8, 28, 28, 1)
