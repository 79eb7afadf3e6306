"""Differentiable augmentation of what the discriminator sees (DiffAugment, Zhao et al. 2020).

Real and generated images are augmented the same way, in both networks' steps, so the
discriminator cannot tell them apart by the augmentation and the generator's gradient flows
through it. Only translation is offered: it is the one DiffAugment policy that keeps a digit a
digit (colour changes mean little for grey digits, and cutout can erase the stroke that makes
a 7 a 1).
"""

from __future__ import annotations

import tensorflow as tf

BACKGROUND = -1.0  # the [-1, 1] value of an empty MNIST pixel
MAX_SHIFT_SHARE = 0.125  # DiffAugment's translation: up to 1/8 of the image side


def shift_matrices(shifts: tf.Tensor, size: int) -> tf.Tensor:
    """`(N, size, size)` 0/1 matrices M with (M v)[i] = v[i - shift] (0 where that is outside)."""
    rows = tf.range(size)[None, :, None]
    columns = tf.range(size)[None, None, :]
    return tf.cast(rows - shifts[:, None, None] == columns, tf.float32)


def translate(images: tf.Tensor, rng: tf.random.Generator) -> tf.Tensor:
    """Each image `(N, H, W, 1)` moved by its own whole-pixel shift of up to 1/8 of its side in
    each direction; pixels moved in are background. As two batched matrix products it is
    differentiable and runs on any device."""
    count, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    most = round(height * MAX_SHIFT_SHARE)
    shifts = rng.uniform((count, 2), -most, most + 1, dtype=tf.int32)  # batch axis first
    dtype = images.dtype
    lifted = tf.cast(images[..., 0], tf.float32) - BACKGROUND  # background 0
    down = shift_matrices(shifts[:, 0], height)
    across = shift_matrices(shifts[:, 1], width)
    moved = tf.matmul(tf.matmul(down, lifted), across, transpose_b=True)
    return tf.cast(moved + BACKGROUND, dtype)[..., tf.newaxis]
