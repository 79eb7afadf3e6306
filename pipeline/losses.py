"""GAN objectives on discriminator logits, named after the side they train.

Each objective is a pair (discriminator loss, generator loss) of functions of float32 logits
`(N, 1)`; `OBJECTIVES` maps the `train.loss` name to it. A new objective (e.g. WGAN-GP, whose
critic loss also needs the critic and the images for its gradient penalty) adds an entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf


def gan_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Sigmoid cross-entropy, real -> 1 and fake -> 0: mean softplus(-real) + mean softplus(fake).

    Goodfellow et al. 2014.
    """
    return tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(
        tf.nn.softplus(fake_logits)
    )


def gan_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating: mean softplus(-fake), i.e. cross-entropy of fakes against 1.

    Minimising log(1 - D(G(z))) instead saturates once the discriminator wins (Goodfellow 2014).
    """
    return tf.reduce_mean(tf.nn.softplus(-fake_logits))


def lsgan_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Least squares on raw scores: 0.5 mean (real - 1)^2 + 0.5 mean fake^2 (Mao et al. 2017)."""
    return 0.5 * tf.reduce_mean(tf.square(real_logits - 1.0)) + 0.5 * tf.reduce_mean(
        tf.square(fake_logits)
    )


def lsgan_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Least squares: 0.5 mean (fake - 1)^2 (Mao et al. 2017)."""
    return 0.5 * tf.reduce_mean(tf.square(fake_logits - 1.0))


@dataclass(frozen=True)
class Objective:
    discriminator_loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    generator_loss: Callable[[tf.Tensor], tf.Tensor]


OBJECTIVES = {
    "gan": Objective(gan_discriminator_loss, gan_generator_loss),
    "lsgan": Objective(lsgan_discriminator_loss, lsgan_generator_loss),
}
