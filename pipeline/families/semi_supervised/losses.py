"""The semi-supervised GAN's losses: the real/fake logit of its class logits, the labelled
images' cross-entropy, and the generator's feature matching."""

from __future__ import annotations

import tensorflow as tf


def implicit_fake_logit(class_logits: tf.Tensor) -> tf.Tensor:
    """The real/fake logit `(N, 1)` of K class logits `(N, K)` with an implicit fake class
    whose logit is 0 (Salimans et al. 2016): D(x) = Z / (Z + 1) with Z = sum exp(logits), so
    D(x) = sigmoid(log Z) and the real/fake cross-entropy of `gan_discriminator_loss` on
    log Z is the paper's unsupervised loss (twice it: the paper halves each term)."""
    return tf.reduce_logsumexp(class_logits, axis=1, keepdims=True)


def supervised_loss(class_logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Cross-entropy of the labelled images' classes among the K real ones: the fake class's
    probability cancels from p(y | x, real), so it is the softmax of the K logits alone."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels, tf.int32), logits=class_logits
        )
    )


def feature_matching_loss(real_features: tf.Tensor, fake_features: tf.Tensor) -> tf.Tensor:
    """The generator's objective of Salimans et al. 2016: the squared distance between the
    mean discriminator features of a real and a generated batch, mean over the features.
    It asks the generator to match statistics the classifier uses rather than to fool it,
    which is what helps the classifier (and why the samples look worse)."""
    difference = tf.reduce_mean(real_features, axis=0) - tf.reduce_mean(fake_features, axis=0)
    return tf.reduce_mean(tf.square(difference))
