"""InfoGAN's information term."""

from __future__ import annotations

import tensorflow as tf


def information_loss(
    categorical_logits: tf.Tensor,
    categorical_codes: tf.Tensor,
    continuous_predicted: tf.Tensor | None = None,
    continuous_codes: tf.Tensor | None = None,
    continuous_weight: float = 1.0,
) -> tf.Tensor:
    """InfoGAN's term (Chen et al. 2016): minus the variational lower bound on the mutual
    information between the codes and the images, up to constants. The auxiliary head Q
    predicts the codes back from a generated image: cross-entropy for the categorical code
    `(N,)` against Q's logits `(N, K)`, plus for continuous codes `(N, C)` the negative log
    likelihood of a unit-variance Gaussian centred on Q's prediction, 0.5 sum (c - mu)^2 (the
    original code's fixed-variance choice), times `continuous_weight`; means over the batch."""
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(categorical_codes, tf.int32), logits=categorical_logits
        )
    )
    if continuous_codes is not None:
        squared = tf.square(continuous_codes - continuous_predicted)
        loss += continuous_weight * 0.5 * tf.reduce_mean(tf.reduce_sum(squared, axis=1))
    return loss
