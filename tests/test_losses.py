"""Every loss on a handful of logits whose values can be checked by hand: GAN, LSGAN, Softmax
GAN, WGAN-GP and R1, and the families' own terms (InfoGAN, semi-supervised, BiGAN)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from pipeline.families.bigan import losses as bigan_losses
from pipeline.families.infogan import losses as infogan_losses
from pipeline.families.semi_supervised import losses as ssl_losses
from pipeline.gan import losses


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

    def test_smoothed_real_target_is_cross_entropy_against_it(self):
        real, fake, target = np.array([2.0, -1.0]), np.array([-3.0]), 0.9
        expected = (target * softplus(-real) + (1 - target) * softplus(real)).mean() + softplus(
            fake
        ).mean()
        d = losses.gan_discriminator_loss(logits(*real), logits(*fake), target)
        assert float(d) == pytest.approx(expected, rel=1e-6)

    def test_smoothing_makes_the_best_real_logit_finite(self):
        # the minimum of t softplus(-x) + (1 - t) softplus(x) is at sigmoid(x) = t
        best = math.log(0.9 / 0.1)
        around = [best - 0.1, best, best + 0.1]
        values = [
            float(losses.gan_discriminator_loss(logits(x), logits(-50.0), 0.9)) for x in around
        ]
        assert values[1] < values[0] and values[1] < values[2]


class TestLsgan:
    def test_hand_computed_values(self):
        # 0.5 * mean((1-1)^2, (3-1)^2) + 0.5 * mean(0^2, 2^2) = 0.5 * 2 + 0.5 * 2
        d = losses.lsgan_discriminator_loss(logits(1.0, 3.0), logits(0.0, 2.0))
        assert float(d) == pytest.approx(2.0)
        # 0.5 * mean((0-1)^2, (2-1)^2)
        assert float(losses.lsgan_generator_loss(logits(0.0, 2.0))) == pytest.approx(0.5)

    def test_smoothed_real_target(self):
        # 0.5 * (0.9 - 0.9)^2 + 0.5 * 0^2
        assert float(losses.lsgan_discriminator_loss(logits(0.9), logits(0.0), 0.9)) == 0.0
        assert float(losses.lsgan_discriminator_loss(logits(1.0), logits(0.0), 0.9)) == (
            pytest.approx(0.5 * 0.1**2)
        )

    def test_perfect_discriminator_and_generator_cost_nothing(self):
        assert float(losses.lsgan_discriminator_loss(logits(1.0), logits(0.0))) == 0.0
        assert float(losses.lsgan_generator_loss(logits(1.0))) == 0.0


def test_an_unknown_loss_is_a_one_line_error_naming_every_objective():
    from pipeline.config import TrainConfig
    from pipeline.errors import ConfigError
    from pipeline.families import resolve

    with pytest.raises(
        ConfigError,
        match=r"^p.yaml: train.loss: expected one of gan, lsgan, softmax, wgan, wgan-gp, "
        r"got 'hinge'$",
    ):
        resolve(TrainConfig(loss="hinge"), "p.yaml")


class TestSoftmax:
    """Lin 2017 on logits one can add up by hand: the batch's softmax over every logit."""

    def test_equal_logits_cost_log_of_the_batch_size(self):
        """Two reals and two fakes at 0: Z = 4, and -mean is 0 for both players."""
        zeros = logits(0.0, 0.0)
        assert float(losses.softmax_discriminator_loss(zeros, zeros)) == pytest.approx(math.log(4))
        assert float(losses.softmax_generator_loss(zeros, zeros)) == pytest.approx(math.log(4))

    def test_the_discriminator_targets_the_reals_the_generator_the_whole_batch(self):
        """Real 1, fake 0: Z = e + 1. The discriminator pays -1 + log Z, the generator
        -(1 + 0) / 2 + log Z."""
        real, fake = logits(1.0), logits(0.0)
        z = math.e + 1
        assert float(losses.softmax_discriminator_loss(real, fake)) == pytest.approx(
            -1 + math.log(z)
        )
        assert float(losses.softmax_generator_loss(fake, real)) == pytest.approx(-0.5 + math.log(z))

    def test_the_generator_is_best_off_when_fakes_score_like_reals(self):
        """-mean + logsumexp is least when every logit is equal (Jensen)."""
        real = logits(2.0, 2.0)
        at_par = float(losses.softmax_generator_loss(logits(2.0, 2.0), real))
        assert at_par == pytest.approx(math.log(4))
        assert float(losses.softmax_generator_loss(logits(0.0, 5.0), real)) > at_par

    def test_the_objective_hands_the_generator_the_real_logits(self):
        method = losses.OBJECTIVES["softmax"]
        real, fake = logits(1.0), logits(0.0)
        assert float(method.generator(fake, real)) == pytest.approx(-0.5 + math.log(math.e + 1))
        assert float(losses.OBJECTIVES["gan"].generator(fake, None)) == pytest.approx(math.log(2))


class TestWgan:
    def test_the_method_is_the_papers_clipped_critic_with_batch_norm_and_adam(self):
        """Arjovsky et al. 2017, Algorithm 1: c = 0.01, n_critic = 5; the critic with batch
        norm as the authors' DCGAN critic, trained with Adam where the paper takes RMSProp
        (presets/wgan-paper.yaml keeps RMSProp at 5e-5)."""
        method = losses.OBJECTIVES["wgan"]
        assert (method.critic_steps, method.clip) == (5, 0.01)
        assert (method.optimizer, method.critic_norm) == ("adam", "batch")
        assert method.prescribed == {
            "learning_rate": 2e-4,
            "discriminator_learning_rate": 2e-4,
            "beta1": 0.5,
            "beta2": 0.9,
        }
        assert method.penalty_weight == 0.0 and not method.takes_r1
        assert method.discriminator_loss is losses.wasserstein_critic_loss


class TestWganGp:
    def test_wasserstein_losses(self):
        real, fake = logits(2.0, 4.0), logits(-1.0, 0.0)
        assert float(losses.wasserstein_critic_loss(real, fake)) == pytest.approx(-0.5 - 3.0)
        assert float(losses.wasserstein_generator_loss(fake)) == pytest.approx(0.5)

    @pytest.mark.parametrize("weights", [[3.0, 4.0, 0.0, 0.0], [0.6, 0.0, 0.0, 0.8], [0.1] * 4])
    def test_a_linear_critic_has_its_weight_norm_as_gradient_norm(self, weights):
        """f(x) = w . x + b: the gradient is w everywhere, so the penalty is (|w| - 1)^2."""
        w = tf.constant(np.array(weights, np.float32).reshape(1, 2, 2, 1))

        def critic(images, training=False):
            return tf.reduce_sum(images * w, axis=[1, 2, 3])[:, None] + 7.0

        rng = np.random.default_rng(0)
        real, fake = (tf.constant(rng.normal(size=(5, 2, 2, 1)), tf.float32) for _ in range(2))
        mix = tf.constant(rng.uniform(size=(5, 1, 1, 1)), tf.float32)
        expected = (np.linalg.norm(weights) - 1.0) ** 2
        assert float(losses.gradient_penalty(critic, real, fake, mix)) == pytest.approx(
            expected, rel=1e-5, abs=1e-6
        )

    def test_the_penalty_is_taken_at_the_mix_of_real_and_fake(self):
        """f(x) = sum x^2 / 2 has gradient x: the penalty is (|x| - 1)^2 at the mixed image
        itself, so any other point (mix * real - (1 - mix) * fake, (2 - mix) * fake, ...)
        gives another value. Each image is one pixel here: |x| = |x|."""

        def critic(images, training=False):
            return 0.5 * tf.reduce_sum(tf.square(images), axis=[1, 2, 3])[:, None]

        real = tf.constant(np.array([3.0, 2.0, -1.0], np.float32).reshape(3, 1, 1, 1))
        fake = tf.constant(np.array([1.0, -2.0, 5.0], np.float32).reshape(3, 1, 1, 1))
        mix = tf.constant(np.array([0.5, 0.25, 0.75], np.float32).reshape(3, 1, 1, 1))
        # mixed: 0.5 * 3 + 0.5 * 1 = 2; 0.25 * 2 + 0.75 * -2 = -1; 0.75 * -1 + 0.25 * 5 = 0.5
        # (mix * real - (1 - mix) * fake would give 1, 2, -2: a mean of 2/3 instead.)
        expected = ((2 - 1) ** 2 + (1 - 1) ** 2 + (0.5 - 1) ** 2) / 3
        assert float(losses.gradient_penalty(critic, real, fake, mix)) == pytest.approx(
            expected, abs=1e-5
        )

    def test_a_flat_critic_has_a_penalty_of_one_not_nan(self):
        """A zero gradient is where the norm's square root needs its epsilon."""

        def critic(images, training=False):
            return tf.reduce_sum(0.0 * images, axis=[1, 2, 3])[:, None]

        real = tf.ones((2, 2, 2, 1))
        penalty = losses.gradient_penalty(critic, real, -real, tf.fill((2, 1, 1, 1), 0.5))
        assert float(penalty) == pytest.approx(1.0, abs=1e-5)

    def test_the_method_fixes_its_training_settings(self):
        method = losses.OBJECTIVES["wgan-gp"]
        assert (method.critic_steps, method.penalty_weight, method.updates_scale) == (1, 10.0, 2)
        assert method.prescribed == {
            "learning_rate": 5e-4,
            "discriminator_learning_rate": 1e-3,
            "beta1": 0.5,
            "beta2": 0.9,
            "lr_schedule": "anneal",
        }
        assert losses.OBJECTIVES["gan"].critic_steps == 1


def doubled_in_training(images, training=False):
    """sum x^2 / 2, twice as steep when called in training mode (as a critic with dropout
    differs there): only `training=True` gives gradient 2x."""
    scale = 2.0 if training is True else 1.0
    return scale * 0.5 * tf.reduce_sum(tf.square(images), axis=[1, 2, 3])[:, None]


def test_both_penalties_are_taken_on_the_critic_in_training_mode():
    """At x = 1 (one pixel) the training-mode gradient is 2: WGAN-GP (2 - 1)^2 = 1, R1 4."""
    one = tf.ones((1, 1, 1, 1))
    penalty = losses.gradient_penalty(doubled_in_training, one, one, tf.fill((1, 1, 1, 1), 0.5))
    assert float(penalty) == pytest.approx(1.0)
    scores, r1 = losses.real_gradient_penalty(doubled_in_training, one)
    assert (float(scores[0, 0]), float(r1)) == pytest.approx((1.0, 4.0))


class TestRealGradientPenalty:
    def test_it_is_the_mean_squared_gradient_norm_at_the_real_images(self):
        """f(x) = sum x^2 / 2 has gradient x: the penalty is the mean of |x|^2 over the real
        images themselves, and the logits are f's."""

        def critic(images, training=False):
            return 0.5 * tf.reduce_sum(tf.square(images), axis=[1, 2, 3])[:, None]

        real = tf.constant(np.array([[3.0, 4.0], [1.0, 0.0]], np.float32).reshape(2, 1, 2, 1))
        scores, penalty = losses.real_gradient_penalty(critic, real)
        np.testing.assert_allclose(scores.numpy()[:, 0], [12.5, 0.5])
        assert float(penalty) == pytest.approx((25.0 + 1.0) / 2)

    def test_its_gradient_in_the_critic_weights_is_second_order(self):
        """f(x) = w sum x: the penalty is w^2 |x|^2 per image... = w^2 * pixels, whose
        derivative in w is 2 w * pixels; an outer tape must see it."""
        w = tf.Variable(3.0)

        def critic(images, training=False):
            return w * tf.reduce_sum(images, axis=[1, 2, 3])[:, None]

        real = tf.ones((4, 2, 2, 1))
        with tf.GradientTape() as tape:
            _, penalty = losses.real_gradient_penalty(critic, real)
        assert float(penalty) == pytest.approx(9.0 * 4)
        assert float(tape.gradient(penalty, w)) == pytest.approx(2 * 3.0 * 4)


class TestInformationLoss:
    def test_uniform_logits_cost_log_k_and_exact_means_nothing_more(self):
        logits = tf.zeros((4, 10))
        codes_ = tf.constant([0, 3, 7, 9])
        continuous = tf.constant([[0.5, -0.5]] * 4)
        value = infogan_losses.information_loss(logits, codes_, continuous, continuous)
        assert float(value) == pytest.approx(math.log(10), rel=1e-6)

    def test_hand_computed_value(self):
        """Two codes of two values: cross-entropies log(1 + e^-2) and log(1 + e^2), plus
        0.5 * ((1 - 0)^2 + (0.5 - 0)^2) for the first row's continuous codes, 0 for the
        second's; means over the two rows."""
        logits = tf.constant([[2.0, 0.0], [2.0, 0.0]])
        categorical = tf.constant([0, 1])
        codes_ = tf.constant([[1.0, 0.5], [0.0, 0.0]])
        predicted = tf.zeros((2, 2))
        expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(2))) / 2 + 0.5 * 1.25 / 2
        value = infogan_losses.information_loss(logits, categorical, predicted, codes_)
        assert float(value) == pytest.approx(expected, rel=1e-6)

    def test_the_continuous_weight_scales_only_the_continuous_part(self):
        logits = tf.constant([[2.0, 0.0]])
        categorical = tf.constant([0])
        codes_ = tf.constant([[1.0, 0.5]])
        predicted = tf.zeros((1, 2))
        expected = math.log1p(math.exp(-2)) + 0.1 * 0.5 * 1.25
        value = infogan_losses.information_loss(logits, categorical, predicted, codes_, 0.1)
        assert float(value) == pytest.approx(expected, rel=1e-6)

    def test_without_continuous_codes_it_is_the_cross_entropy(self):
        logits = tf.constant([[0.0, math.log(3.0)]])
        assert float(infogan_losses.information_loss(logits, tf.constant([1]))) == pytest.approx(
            math.log(4 / 3), rel=1e-6
        )


class TestSemiSupervisedLosses:
    def test_the_implicit_fake_class_has_logit_zero(self):
        """Ten logits of 0: Z = 10, so D(x) = Z / (Z + 1) = 10/11 = sigmoid(log 10)."""
        logit = ssl_losses.implicit_fake_logit(tf.zeros((1, 10)))
        assert float(logit[0, 0]) == pytest.approx(math.log(10), rel=1e-6)
        two = ssl_losses.implicit_fake_logit(
            tf.constant([[math.log(11.0)] + [0.0] * 9, [0.0] * 10])
        )
        np.testing.assert_allclose(two.numpy(), [[math.log(20)], [math.log(10)]], rtol=1e-6)
        assert float(tf.sigmoid(logit)[0, 0]) == pytest.approx(10 / 11, rel=1e-6)

    def test_the_real_fake_loss_on_it_is_minus_log_d(self):
        """A real image with Z = e^2 + 9 costs -log(Z / (Z + 1)); a fake with Z = 10 costs
        -log(1 / (Z + 1)) = log 11."""
        real = ssl_losses.implicit_fake_logit(tf.constant([[2.0] + [0.0] * 9]))
        fake = ssl_losses.implicit_fake_logit(tf.zeros((1, 10)))
        z = math.exp(2) + 9
        expected = -math.log(z / (z + 1)) + math.log(11)
        assert float(losses.gan_discriminator_loss(real, fake)) == pytest.approx(expected, 1e-6)

    def test_the_supervised_loss_ignores_the_fake_class(self):
        """Logits (log 3, 0 x 9): p(digit 0 | real) = 3 / 12, whatever Z + 1 would add."""
        logits = tf.constant([[math.log(3.0)] + [0.0] * 9])
        value = ssl_losses.supervised_loss(logits, tf.constant([0]))
        assert float(value) == pytest.approx(-math.log(0.25), rel=1e-6)

    def test_feature_matching_compares_batch_means(self):
        real = tf.constant([[1.0, 0.0], [3.0, 2.0]])  # mean (2, 1): each feature its own
        fake = tf.constant([[0.0, 1.0], [0.0, 1.0]])  # mean (0, 1)
        assert float(ssl_losses.feature_matching_loss(real, fake)) == pytest.approx((4 + 0) / 2)
        shuffled = tf.constant([[3.0, 2.0], [1.0, 0.0]])
        assert float(ssl_losses.feature_matching_loss(real, shuffled)) == 0.0


class TestBiganLosses:
    def test_the_reconstruction_loss_is_the_mean_absolute_difference(self):
        images = tf.constant([[0.0, 1.0], [-1.0, 0.5]])
        redrawn = tf.constant([[0.5, 0.5], [1.0, 0.0]])
        assert float(bigan_losses.reconstruction_loss(images, redrawn)) == pytest.approx(3.5 / 4)

    def test_even_logits_cost_log_2_on_each_side(self):
        even = tf.zeros((4, 1))
        assert float(bigan_losses.bigan_generator_loss(even, even)) == pytest.approx(
            2 * math.log(2)
        )

    def test_generated_pairs_called_real_and_encoded_pairs_called_fake(self):
        """Fake logit 2 costs softplus(-2); real logit -1 costs softplus(-1); the reverse
        costs more on both sides."""
        fake, real = tf.constant([[2.0]]), tf.constant([[-1.0]])
        expected = math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))
        assert float(bigan_losses.bigan_generator_loss(fake, real)) == pytest.approx(expected, 1e-6)
        assert float(bigan_losses.bigan_generator_loss(real, fake)) > expected
