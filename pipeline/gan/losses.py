"""GAN objectives on discriminator logits, named after the side they train.

Each objective is a pair (discriminator loss, generator loss) of functions of float32 logits
`(N, 1)`, plus what the method fixes about training: discriminator (critic) steps per generator
step, the weight of a gradient penalty or the clip of the critic's weights, the optimizer and
the settings its `auto` means, and which regularisers apply. `OBJECTIVES` maps the
`train.loss` name to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import tensorflow as tf


def gan_discriminator_loss(
    real_logits: tf.Tensor, fake_logits: tf.Tensor, real_target: float = 1.0
) -> tf.Tensor:
    """Sigmoid cross-entropy, real -> `real_target` and fake -> 0 (Goodfellow et al. 2014):
    mean [t softplus(-real) + (1 - t) softplus(real)] + mean softplus(fake).

    A target below 1 for real images only is one-sided label smoothing (Salimans et al. 2016):
    it stops the discriminator from growing ever more confident on real images, whose
    gradient would otherwise steer the generator toward a few easy modes.
    """
    real_loss = real_target * tf.nn.softplus(-real_logits)
    real_loss += (1.0 - real_target) * tf.nn.softplus(real_logits)
    return tf.reduce_mean(real_loss) + tf.reduce_mean(tf.nn.softplus(fake_logits))


def gan_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating: mean softplus(-fake), i.e. cross-entropy of fakes against 1.

    Minimising log(1 - D(G(z))) instead saturates once the discriminator wins (Goodfellow 2014).
    """
    return tf.reduce_mean(tf.nn.softplus(-fake_logits))


def lsgan_discriminator_loss(
    real_logits: tf.Tensor, fake_logits: tf.Tensor, real_target: float = 1.0
) -> tf.Tensor:
    """Least squares on raw scores: 0.5 mean (real - t)^2 + 0.5 mean fake^2, t = `real_target`
    (Mao et al. 2017; t < 1 is one-sided label smoothing)."""
    return 0.5 * tf.reduce_mean(tf.square(real_logits - real_target)) + 0.5 * tf.reduce_mean(
        tf.square(fake_logits)
    )


def lsgan_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Least squares: 0.5 mean (fake - 1)^2 (Mao et al. 2017)."""
    return 0.5 * tf.reduce_mean(tf.square(fake_logits - 1.0))


def softmax_discriminator_loss(
    real_logits: tf.Tensor, fake_logits: tf.Tensor, real_target: float = 1.0
) -> tf.Tensor:
    """Softmax GAN (Lin 2017): a softmax over the whole batch, real and fake, of the logits
    (the paper's energies negated); the discriminator's target puts the mass on the reals,
    1/|reals| each: -mean real + log sum exp over every logit. It has no label to smooth:
    `real_target` must be 1 (the config checks it)."""
    every = tf.concat([tf.reshape(real_logits, [-1]), tf.reshape(fake_logits, [-1])], axis=0)
    return -tf.reduce_mean(real_logits) + tf.reduce_logsumexp(every)


def softmax_generator_loss(fake_logits: tf.Tensor, real_logits: tf.Tensor) -> tf.Tensor:
    """The generator's target spreads the mass evenly over the batch, 1/|batch| each: -mean
    of every logit + log sum exp over them, least when the discriminator cannot tell the
    fakes from the reals."""
    every = tf.concat([tf.reshape(real_logits, [-1]), tf.reshape(fake_logits, [-1])], axis=0)
    return -tf.reduce_mean(every) + tf.reduce_logsumexp(every)


def wasserstein_critic_loss(
    real_scores: tf.Tensor, fake_scores: tf.Tensor, real_target: float = 1.0
) -> tf.Tensor:
    """The critic's estimate of minus the Wasserstein-1 distance: mean fake - mean real
    (Arjovsky et al. 2017); weight clipping or the gradient penalty keeps the critic near
    Lipschitz. A score has no target to smooth: `real_target` must be 1 (the config checks
    it)."""
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def wasserstein_generator_loss(fake_scores: tf.Tensor) -> tf.Tensor:
    """-mean fake: raise the critic's score of the generated images."""
    return -tf.reduce_mean(fake_scores)


def gradient_penalty(critic, real: tf.Tensor, fake: tf.Tensor, mix: tf.Tensor) -> tf.Tensor:
    """mean (||grad_x critic(x)||_2 - 1)^2 at x = mix * real + (1 - mix) * fake, one `mix` in
    [0, 1] per image `(N, 1, 1, 1)` (Gulrajani et al. 2017). Differentiable in the critic's
    weights when called under an outer tape. Each image's score depends on that image alone
    (no batch norm in the critic), so the gradient of the summed scores is per image."""
    mixed = mix * real + (1.0 - mix) * fake
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        scores = critic(mixed, training=True)
    gradients = tape.gradient(scores, mixed)
    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


def real_gradient_penalty(critic, real: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The critic's logits on `real` and mean ||grad_x critic(x)||_2^2 over those images: R1
    (Mescheder et al. 2018). Penalising the gradient on real data only pulls the
    discriminator toward flat at the data, where the training game converges instead of
    circling; differentiable in the critic's weights under an outer tape."""
    with tf.GradientTape() as tape:
        tape.watch(real)
        logits = critic(real, training=True)
    gradients = tape.gradient(logits, real)
    return logits, tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))


@dataclass(frozen=True)
class Objective:
    # (real logits, fake logits, real target) -> loss
    discriminator_loss: Callable[[tf.Tensor, tf.Tensor, float], tf.Tensor]
    # (fake logits) -> loss, or (fake logits, real logits) with `generator_sees_real`
    generator_loss: Callable[..., tf.Tensor]
    generator_sees_real: bool = False  # the generator's loss compares its fakes with reals
    # What `auto` means for `train.critic_steps`: discriminator updates per generator update,
    # each on its own batch.
    critic_steps: int = 1
    penalty_weight: float = 0.0  # of `gradient_penalty` in the discriminator loss
    clip: float = 0.0  # after each discriminator update, every weight clipped to [-clip, clip]
    optimizer: str = "adam"  # what `auto` means for train.optimizer (both networks)
    critic_norm: str = "none"  # ... and for train.critic_norm: batch norm in the critic or not
    # What `auto` means under this loss for the train keys the method prescribes (its
    # optimizer), over the family's own defaults.
    prescribed: dict[str, float | str | None] = field(default_factory=dict)
    # The generator updates `auto` epochs give, as a multiple of the family's: the family's
    # epochs hold one discriminator step per update, so a loss of several critic steps takes
    # that many times the epochs for the same updates, and this many times more.
    updates_scale: float = 1.0
    takes_r1: bool = True  # False: the critic has its own Lipschitz constraint
    smooths: bool = True  # whether a real target below 1 (train.label_smoothing) means anything
    distributes: bool = True  # whether it trains under a tf.distribute strategy

    def generator(self, fake_logits: tf.Tensor, real_logits: tf.Tensor | None) -> tf.Tensor:
        """The generator's loss; `real_logits` is read only with `generator_sees_real`."""
        if self.generator_sees_real:
            return self.generator_loss(fake_logits, real_logits)
        return self.generator_loss(fake_logits)


RMSPROP_RHO = 0.99  # the WGAN authors' code: PyTorch's RMSprop, whose decay is 0.99

OBJECTIVES = {
    "gan": Objective(gan_discriminator_loss, gan_generator_loss),
    "lsgan": Objective(lsgan_discriminator_loss, lsgan_generator_loss),
    # Lin 2017's softmax is over the whole batch, reals and fakes: over 64 of each it drew
    # better digits than over the seed's 128, with twice the generator updates in the same
    # epochs (docs/FAMILIES.md#losses).
    "softmax": Objective(
        softmax_discriminator_loss,
        softmax_generator_loss,
        generator_sees_real=True,
        prescribed={"batch_size": 64},
        smooths=False,
    ),
    # Arjovsky et al. 2017's clipped critic (c 0.01, 5 critic steps) with batch norm in it, as
    # the authors' DCGAN critic has, and Adam at 2e-4 with betas (0.5, 0.9) where their
    # Algorithm 1 takes RMSProp at 5e-5 (presets/wgan-paper.yaml): the paper's settings are
    # still noise after the default's generator updates (docs/FAMILIES.md#losses).
    "wgan": Objective(
        wasserstein_critic_loss,
        wasserstein_generator_loss,
        critic_steps=5,
        clip=0.01,
        critic_norm="batch",
        prescribed={
            "learning_rate": 2e-4,
            "discriminator_learning_rate": 2e-4,
            "beta1": 0.5,
            "beta2": 0.9,
        },
        takes_r1=False,
        smooths=False,
        # Clipping after each replica's update would need a cross-replica assignment.
        distributes=False,
    ),
    # Gulrajani et al. 2017's penalty (lambda 10) and Adam betas (0.5, 0.9), with one critic step
    # at twice the generator's rate (the two time-scale rule, Heusel et al. 2017) where their
    # Algorithm 1 takes five at equal rates of 1e-4 (presets/wgan-gp-paper.yaml): the same
    # generator updates for a third of the work; twice the default's updates, the rates held
    # for the first half and annealed to 0 (docs/FAMILIES.md#losses).
    "wgan-gp": Objective(
        wasserstein_critic_loss,
        wasserstein_generator_loss,
        critic_steps=1,
        penalty_weight=10.0,
        prescribed={
            "learning_rate": 5e-4,
            "discriminator_learning_rate": 1e-3,
            "beta1": 0.5,
            "beta2": 0.9,
            "lr_schedule": "anneal",
        },
        updates_scale=2.0,
        takes_r1=False,
        smooths=False,
    ),
}
