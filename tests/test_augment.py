"""DiffAugment-style translation: whole-pixel shifts, background filled in, differentiable."""

import numpy as np
import tensorflow as tf

from pipeline import augment


def test_shift_matrices_move_a_vector_and_drop_what_falls_off():
    vector = tf.constant([1.0, 2.0, 3.0, 4.0])[:, None]
    moved = tf.matmul(augment.shift_matrices(tf.constant([1, -2, 0]), 4), tf.stack([vector] * 3))
    np.testing.assert_array_equal(moved.numpy()[..., 0], [[0, 1, 2, 3], [3, 4, 0, 0], [1, 2, 3, 4]])


def test_each_image_moves_by_its_own_shift_within_an_eighth():
    images = np.full((64, 28, 28, 1), -1.0, np.float32)
    images[:, 14, 14, 0] = 1.0  # one lit pixel in the middle
    moved = augment.translate(tf.constant(images), tf.random.Generator.from_seed(1)).numpy()
    assert moved.shape == images.shape
    lit = [np.argwhere(image[..., 0] > 0) for image in moved]
    assert all(len(pixel) == 1 for pixel in lit)  # moved, not blurred or lost
    offsets = np.array([pixel[0] - 14 for pixel in lit])
    assert np.abs(offsets).max() <= 4  # round(28 / 8) = 4 pixels at most
    assert len({tuple(o) for o in offsets}) > 10  # per image, not one shift for the batch
    assert set(np.unique(moved)) <= {-1.0, 1.0}  # pixels moved in are background


def test_gradients_flow_through_to_the_images():
    images = tf.Variable(tf.random.uniform((4, 28, 28, 1), -1.0, 1.0, seed=0))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(augment.translate(images, tf.random.Generator.from_seed(2)))
    gradient = tape.gradient(total, images).numpy()
    assert set(np.unique(gradient)) <= {0.0, 1.0} and gradient.sum() > 0  # kept pixels count once
