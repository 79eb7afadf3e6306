"""BiGAN's generator-side loss and its cycle terms' distance."""

from __future__ import annotations

import tensorflow as tf

from pipeline.gan.losses import gan_generator_loss


def bigan_generator_loss(fake_logits: tf.Tensor, real_logits: tf.Tensor) -> tf.Tensor:
    """BiGAN's generator and encoder together (Donahue et al. 2016), non-saturating: the
    generated pairs (G(z), z) called real and the encoded pairs (x, E(x)) called fake, mean
    softplus(-fake) + mean softplus(real). The discriminator's side is the GAN loss on the
    two kinds of pair."""
    return gan_generator_loss(fake_logits) + tf.reduce_mean(tf.nn.softplus(real_logits))


def reconstruction_loss(originals: tf.Tensor, redrawn: tf.Tensor) -> tf.Tensor:
    """Mean absolute difference between originals (images, or noise) and their
    reconstructions, in the originals' dtype."""
    return tf.reduce_mean(tf.abs(originals - tf.cast(redrawn, originals.dtype)))
