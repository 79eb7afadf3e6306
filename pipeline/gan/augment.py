"""Differentiable augmentations of what the discriminator and InfoGAN's Q see.

`translate` is DiffAugment's translation (Zhao et al. 2020): real and generated images are
augmented the same way, in both networks' steps, so the discriminator cannot tell them apart by
the augmentation and the generator's gradient flows through it. Only translation is offered: it
is the one DiffAugment policy that keeps a digit a digit (colour changes mean little for grey
digits, and cutout can erase the stroke that makes a 7 a 1).

`jitter` is a small random rotation, scaling and shift: InfoGAN's Q reads the categorical code
from jittered fakes, so the code cannot be carried by what jitter changes (slant, size,
position) and has to be carried by what it keeps, the digit's shape; the invariance that
self-augmented clustering (IMSAT, Hu et al. 2017) builds into its classifier.
"""

from __future__ import annotations

import math

import tensorflow as tf

BACKGROUND = -1.0  # the [-1, 1] value of an empty MNIST pixel
MAX_SHIFT_SHARE = 0.125  # DiffAugment's translation: up to 1/8 of the image side
# `jitter`'s largest changes: enough to span the slants and sizes one digit is written at,
# too little to turn one digit into another (a 6 rotated 15 degrees is still no 9).
JITTER_DEGREES = 15.0
JITTER_SCALE = 0.1
JITTER_SHIFT = 2.0  # pixels


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


def jitter(images: tf.Tensor, rng: tf.random.Generator) -> tf.Tensor:
    """Each image `(N, H, W, 1)` in [-1, 1] rotated by up to `JITTER_DEGREES`, scaled by up to
    `JITTER_SCALE` and shifted by up to `JITTER_SHIFT` pixels about its centre, each by its own
    random amount (bilinear; pixels moved in are background); differentiable in the images."""
    count, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    angle = rng.uniform((count,), -JITTER_DEGREES, JITTER_DEGREES) * (math.pi / 180.0)
    scale = rng.uniform((count,), 1.0 - JITTER_SCALE, 1.0 + JITTER_SCALE)
    shift = rng.uniform((count, 2), -JITTER_SHIFT, JITTER_SHIFT)
    # The transform maps each output pixel p to the input point A (p - c) + c + shift, with A
    # the inverse rotation-and-scale and c the centre.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
    zeros = tf.zeros_like(cos)
    transforms = tf.stack(
        [
            cos,
            -sin,
            centre_x - cos * centre_x + sin * centre_y + shift[:, 0],
            sin,
            cos,
            centre_y - sin * centre_x - cos * centre_y + shift[:, 1],
            zeros,
            zeros,
        ],
        axis=1,
    )
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32),
        transforms=transforms,
        output_shape=[height, width],
        fill_value=BACKGROUND,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return tf.cast(moved, images.dtype)
