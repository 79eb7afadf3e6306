"""The generator's weight average and the batch-norm statistics recomputed for it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.gan.averaging import WeightAverage, batch_norm_layers, recalibrate_batch_norm


def two_norm_network() -> keras.Model:
    """x (3) -> Dense 2 -> batch norm -> Dense 2 -> batch norm: small enough to compute by hand."""
    x = keras.Input((3,))
    h = keras.layers.Dense(2, name="first")(x)
    h = keras.layers.BatchNormalization(epsilon=1e-3, name="norm1")(h)
    h = keras.layers.Dense(2, name="second")(h)
    out = keras.layers.BatchNormalization(epsilon=1e-3, name="norm2")(h)
    return keras.Model(x, out)


def test_recalibration_sets_the_statistics_inference_meets_layer_by_layer():
    network = two_norm_network()
    first, second = network.get_layer("first"), network.get_layer("second")
    first.set_weights([np.array([[1.0, 0.0], [2.0, -1.0], [0.0, 3.0]]), np.array([0.5, -2.0])])
    second.set_weights([np.array([[1.0, 2.0], [-1.0, 0.5]]), np.array([0.0, 1.0])])
    norm1, norm2 = network.get_layer("norm1"), network.get_layer("norm2")
    norm1.gamma.assign([2.0, 0.5])
    norm1.beta.assign([1.0, -1.0])
    # Stale statistics, as averaging would leave them.
    for norm in (norm1, norm2):
        norm.moving_mean.assign([9.0, -9.0])
        norm.moving_variance.assign([40.0, 0.01])
    inputs = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)

    recalibrate_batch_norm(network, tf.constant(inputs))

    x = inputs.astype(np.float64)
    h1 = x @ first.get_weights()[0] + first.get_weights()[1]
    np.testing.assert_allclose(norm1.moving_mean.numpy(), h1.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm1.moving_variance.numpy(), h1.var(axis=0), rtol=1e-5)
    # The second layer sees the first normalised with the new statistics, as at inference.
    normed = (h1 - h1.mean(axis=0)) / np.sqrt(h1.var(axis=0) + 1e-3) * [2.0, 0.5] + [1.0, -1.0]
    h2 = normed @ second.get_weights()[0] + second.get_weights()[1]
    np.testing.assert_allclose(norm2.moving_mean.numpy(), h2.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm2.moving_variance.numpy(), h2.var(axis=0), rtol=1e-4)
    # So inference output is normalised: mean beta (0), variance about gamma^2 (1).
    out = network(inputs, training=False).numpy()
    np.testing.assert_allclose(out.mean(axis=0), [0.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(out.var(axis=0), [1.0, 1.0], rtol=1e-2)


def test_a_network_without_batch_norm_is_left_alone():
    x = keras.Input((2,))
    network = keras.Model(x, keras.layers.Dense(1)(x))
    before = [w.copy() for w in network.get_weights()]
    recalibrate_batch_norm(network, tf.ones((4, 2)))
    for kept, now in zip(before, network.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)
    assert batch_norm_layers(network) == []


def dense_pair():
    def build():
        x = keras.Input((1,))
        return keras.Model(x, keras.layers.Dense(1, use_bias=False)(x))

    return build(), build()


def test_the_average_follows_the_warmed_up_exponential_formula():
    source, averaged = dense_pair()
    source.set_weights([np.array([[0.0]])])
    average = WeightAverage(source, averaged, decay=0.9, horizon=0.5)
    expected = 0.0
    for t, value in enumerate([4.0, 8.0, -2.0, 6.0, 1.0, 3.0], start=1):
        source.set_weights([np.array([[value]])])
        average.update()
        decay = min(0.9, 1 - 1 / (1 + 0.5 * t))
        expected = decay * expected + (1 - decay) * value
        assert float(averaged.get_weights()[0][0, 0]) == pytest.approx(expected, rel=1e-6)
    # From t = 18 on, 1 - 1 / (1 + 0.5 t) passes 0.9: the cap holds.
    average.updates.assign(100)
    assert float(average.current_decay()) == pytest.approx(0.9)


def test_the_first_update_keeps_most_of_the_new_weights():
    """No bias toward the initial weights: at t = 1 the decay is 1 - 1 / (1 + horizon)."""
    source, averaged = dense_pair()
    source.set_weights([np.array([[0.0]])])
    average = WeightAverage(source, averaged, decay=0.999, horizon=0.1)
    source.set_weights([np.array([[11.0]])])
    average.update()
    assert float(averaged.get_weights()[0][0, 0]) == pytest.approx(11.0 * (1 / 1.1), rel=1e-6)


def test_the_average_starts_as_a_copy_and_leaves_the_source_alone():
    source, averaged = dense_pair()
    source.set_weights([np.array([[2.5]])])
    average = WeightAverage(source, averaged, decay=0.5, horizon=1.0)
    assert averaged.get_weights()[0][0, 0] == 2.5
    source.set_weights([np.array([[7.0]])])
    average.update()
    assert source.get_weights()[0][0, 0] == 7.0


def test_a_convolutions_statistics_are_per_channel_over_every_position():
    """A 4-D batch norm input (N, H, W, C): one mean and variance per channel, over the batch
    and every position."""
    x = keras.Input((5, 7, 1))
    h = keras.layers.Conv2D(3, 2, name="conv")(x)  # (N, 4, 6, 3)
    network = keras.Model(x, keras.layers.BatchNormalization(name="norm")(h))
    inputs = np.random.default_rng(1).normal(size=(64, 5, 7, 1)).astype(np.float32)
    recalibrate_batch_norm(network, tf.constant(inputs))
    activations = network.get_layer("conv")(inputs).numpy().astype(np.float64)
    norm = network.get_layer("norm")
    np.testing.assert_allclose(norm.moving_mean.numpy(), activations.mean(axis=(0, 1, 2)), 1e-5)
    np.testing.assert_allclose(
        norm.moving_variance.numpy(), activations.var(axis=(0, 1, 2)), rtol=1e-5
    )


def test_statistics_accumulate_in_float64():
    """Activations far from zero with a small spread (mean 1000, standard deviation 0.01):
    float32 sums would lose the spread; the float64 ones give it to float32 precision."""
    x = keras.Input((1,))
    h = keras.layers.Dense(1, name="offset")(x)
    network = keras.Model(x, keras.layers.BatchNormalization(name="norm")(h))
    network.get_layer("offset").set_weights([np.array([[0.01]]), np.array([1000.0])])
    inputs = np.random.default_rng(2).normal(size=(200_000, 1)).astype(np.float32)
    recalibrate_batch_norm(network, tf.constant(inputs))
    activations = network.get_layer("offset")(inputs).numpy().astype(np.float64)
    norm = network.get_layer("norm")
    np.testing.assert_allclose(norm.moving_mean.numpy(), activations.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(norm.moving_variance.numpy(), activations.var(axis=0), rtol=1e-6)


def test_the_update_count_is_a_checkpointed_int64_not_a_trained_weight():
    network = two_norm_network()
    average = WeightAverage(network, two_norm_network(), decay=0.999, horizon=0.1)
    assert average.updates.dtype == tf.int64  # counts past 2**31 steps
    assert not average.updates.trainable


def test_the_mean_accumulates_in_float64():
    """Activations 1e8, 1, -1e8, 1, ... (exact in float32): their mean is 0.5, which a float32
    running sum loses (1e8 + 1 rounds to 1e8)."""
    x = keras.Input((1,))
    h = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="identity")(x)
    network = keras.Model(x, keras.layers.BatchNormalization(name="norm")(h))
    inputs = np.tile(np.array([1e8, 1.0, -1e8, 1.0], np.float32), 1000)[:, None]
    recalibrate_batch_norm(network, tf.constant(inputs))
    assert network.get_layer("norm").moving_mean.numpy()[0] == 0.5
