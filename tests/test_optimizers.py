"""FusedAdam: Keras's Adam, each weight updated by one fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.gan.optimizers import FusedAdam


def adam_by_hand(weights, gradients, rate, beta_1, beta_2, epsilon):
    """Adam (Kingma and Ba 2015, Algorithm 1 with the bias correction folded into the rate)
    in float64, with 1 - beta_2 taken of the float32 beta_2 as the kernel does."""
    beta_2 = float(np.float32(beta_2))
    m = np.zeros_like(weights)
    v = np.zeros_like(weights)
    for step, gradient in enumerate(gradients, start=1):
        m += (gradient - m) * (1 - beta_1)
        v += (gradient**2 - v) * (1 - beta_2)
        alpha = rate * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        weights = weights - alpha * m / (np.sqrt(v) + epsilon)
    return weights, m, v


def test_the_update_is_adams_and_its_moments_are_kept_where_keras_keeps_them():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 4))
    gradients = [rng.normal(size=(3, 4)) for _ in range(5)]
    weight = keras.Variable(start.astype(np.float32))
    optimizer = FusedAdam(0.01, beta_1=0.5, beta_2=0.99, epsilon=1e-3)
    optimizer.build([weight])

    @tf.function
    def step(gradient):
        optimizer.apply_gradients([(gradient, weight)])

    for gradient in gradients:
        step(tf.constant(gradient, tf.float32))

    expected, m, v = adam_by_hand(start, gradients, 0.01, 0.5, 0.99, 1e-3)
    np.testing.assert_allclose(weight.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(optimizer._momentums[0].numpy(), m, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(optimizer._velocities[0].numpy(), v, rtol=1e-5, atol=1e-7)
    assert int(optimizer.iterations.numpy()) == 5


def test_it_follows_keras_adam_and_a_learning_rate_schedule():
    """Against Keras's own Adam: the same to float32 rounding, step by step, with the rate a
    schedule reads from the step."""
    rng = np.random.default_rng(1)
    start = rng.normal(size=(64,)).astype(np.float32)
    schedule = keras.optimizers.schedules.PolynomialDecay(1e-2, decay_steps=10, end_learning_rate=0)
    fused_weight, keras_weight = keras.Variable(start), keras.Variable(start)
    fused, plain = FusedAdam(schedule, beta_1=0.5), keras.optimizers.Adam(schedule, beta_1=0.5)
    fused.build([fused_weight])
    plain.build([keras_weight])
    for _ in range(12):
        gradient = tf.constant(rng.normal(size=(64,)), tf.float32)
        fused.apply_gradients([(gradient, fused_weight)])
        plain.apply_gradients([(gradient, keras_weight)])
        np.testing.assert_allclose(fused_weight.numpy(), keras_weight.numpy(), rtol=0, atol=1e-6)
    # The schedule reached 0: the last steps moved neither.
    assert not np.array_equal(fused_weight.numpy(), start)


def test_a_checkpoint_of_keras_adam_restores_into_it(tmp_path):
    """The same variables in the same places: a run checkpointed with Keras's Adam resumes
    with FusedAdam."""
    saved_weight = keras.Variable(np.ones((2, 2), np.float32))
    plain = keras.optimizers.Adam(0.1)
    plain.build([saved_weight])
    plain.apply_gradients([(tf.constant([[1.0, -2.0], [3.0, 0.5]]), saved_weight)])
    path = tf.train.Checkpoint(optimizer=plain, weight=saved_weight).write(str(tmp_path / "ckpt"))

    weight = keras.Variable(np.zeros((2, 2), np.float32))
    fused = FusedAdam(0.1)
    fused.build([weight])
    tf.train.Checkpoint(optimizer=fused, weight=weight).read(path).assert_consumed()
    for restored, original in zip(fused.variables, plain.variables, strict=True):
        np.testing.assert_array_equal(restored.numpy(), original.numpy())
    assert int(fused.iterations.numpy()) == 1


def test_amsgrad_is_refused():
    with pytest.raises(ValueError, match="amsgrad"):
        FusedAdam(0.1, amsgrad=True)
