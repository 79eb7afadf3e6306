"""GAN and LSGAN losses on a handful of logits whose values can be checked by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from pipeline import losses


def logits(*values: float) -> tf.Tensor:
    return tf.constant(np.array(values, dtype=np.float32).reshape(-1, 1))


def softplus(x):
    return np.log1p(np.exp(x))


class TestGan:
    def test_undecided_discriminator_costs_log_2_per_side(self):
        zero = logits(0.0, 0.0)
        assert float(losses.gan_discriminator_loss(zero, zero)) == pytest.approx(2 * math.log(2))
        assert float(losses.gan_generator_loss(zero)) == pytest.approx(math.log(2))

    def test_matches_the_numpy_formula(self):
        real, fake = [2.0, -1.0, 0.5], [-3.0, 1.5, 0.0]
        expected_d = softplus(-np.array(real)).mean() + softplus(np.array(fake)).mean()
        expected_g = softplus(-np.array(fake)).mean()
        d = losses.gan_discriminator_loss(logits(*real), logits(*fake))
        assert float(d) == pytest.approx(expected_d, rel=1e-6)
        assert float(losses.gan_generator_loss(logits(*fake))) == pytest.approx(
            expected_g, rel=1e-6
        )

    def test_confident_logits_stay_finite(self):
        d = losses.gan_discriminator_loss(logits(100.0, -100.0), logits(-100.0, 100.0))
        assert float(d) == pytest.approx(100.0, rel=1e-6)  # the two wrong calls, 100 each / 2 * 2
        assert float(losses.gan_generator_loss(logits(-200.0))) == pytest.approx(200.0)


class TestLsgan:
    def test_hand_computed_values(self):
        # 0.5 * mean((1-1)^2, (3-1)^2) + 0.5 * mean(0^2, 2^2) = 0.5 * 2 + 0.5 * 2
        d = losses.lsgan_discriminator_loss(logits(1.0, 3.0), logits(0.0, 2.0))
        assert float(d) == pytest.approx(2.0)
        # 0.5 * mean((0-1)^2, (2-1)^2)
        assert float(losses.lsgan_generator_loss(logits(0.0, 2.0))) == pytest.approx(0.5)

    def test_perfect_discriminator_and_generator_cost_nothing(self):
        assert float(losses.lsgan_discriminator_loss(logits(1.0), logits(0.0))) == 0.0
        assert float(losses.lsgan_generator_loss(logits(1.0))) == 0.0


def test_every_configurable_loss_has_an_objective():
    from pipeline.config import LOSS_NAMES

    assert set(losses.OBJECTIVES) == set(LOSS_NAMES)
