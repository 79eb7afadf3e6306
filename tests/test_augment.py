"""DiffAugment-style translation (whole-pixel shifts, background filled in) and InfoGAN's jitter
(small rotations, scalings and shifts): both differentiable."""

import numpy as np
import pytest
import tensorflow as tf

from pipeline.gan import augment


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


def blob_at(row: int, column: int, count: int = 64) -> np.ndarray:
    """`count` images, background but a lit 3x3 square centred at (row, column)."""
    images = np.full((count, 28, 28, 1), -1.0, np.float32)
    images[:, row - 1 : row + 2, column - 1 : column + 2, 0] = 1.0
    return images


def centroids(images: np.ndarray) -> np.ndarray:
    """Each image's ink-weighted centre (row, column)."""
    ink = images[..., 0] + 1.0
    rows, columns = np.mgrid[:28, :28]
    total = ink.sum(axis=(1, 2))
    return (
        np.stack([(ink * rows).sum(axis=(1, 2)), (ink * columns).sum(axis=(1, 2))], 1)
        / total[:, None]
    )


def test_jitter_without_range_gives_the_images_back(monkeypatch):
    for name in ("JITTER_DEGREES", "JITTER_SCALE", "JITTER_SHIFT"):
        monkeypatch.setattr(augment, name, 0.0)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
    kept = augment.jitter(tf.constant(images), tf.random.Generator.from_seed(0)).numpy()
    np.testing.assert_allclose(kept, images, atol=1e-6)


def test_jitter_rotates_about_the_centre_within_its_angle(monkeypatch):
    """Rotation alone keeps a blob's distance to the centre (13.5, 13.5) and turns it by no
    more than the largest angle, each image by its own."""
    monkeypatch.setattr(augment, "JITTER_SCALE", 0.0)
    monkeypatch.setattr(augment, "JITTER_SHIFT", 0.0)
    images = blob_at(14, 22)  # to the right of the centre
    turned = centroids(
        augment.jitter(tf.constant(images), tf.random.Generator.from_seed(1)).numpy()
    )
    before = centroids(images)[0] - 13.5
    after = turned - 13.5
    np.testing.assert_allclose(np.hypot(*after.T), np.hypot(*before), atol=0.05)
    angles = np.degrees(np.arctan2(after[:, 0], after[:, 1]) - np.arctan2(*before))
    assert np.abs(angles).max() <= augment.JITTER_DEGREES + 0.5
    assert np.abs(angles).max() > augment.JITTER_DEGREES / 2 and np.std(angles) > 3


def test_jitter_keeps_a_digit_in_frame_and_the_background_empty():
    images = blob_at(14, 14)
    moved = augment.jitter(tf.constant(images), tf.random.Generator.from_seed(2)).numpy()
    assert moved.shape == images.shape and moved.dtype == images.dtype
    offsets = centroids(moved) - centroids(images)
    # The shift is in the input's pixels: up to (1 + scale) times it in the output's, plus
    # what turning and scaling do to a blob half a pixel off the centre.
    reach = augment.JITTER_SHIFT * (1 + augment.JITTER_SCALE) + 0.5
    assert np.abs(offsets).max() <= reach
    assert len({tuple(np.round(o, 2)) for o in offsets}) > 50  # per image
    ink = (moved[..., 0] + 1.0).sum(axis=(1, 2)) / (images[0, ..., 0] + 1.0).sum()
    scale = 1.0 + augment.JITTER_SCALE
    assert ink.min() >= 1 / scale**2 - 0.05 and ink.max() <= scale**2 + 0.05  # area ~ scale^2
    assert (moved[:, :4, :4] == -1.0).all()  # corners stay background


@pytest.mark.parametrize("dtype", [tf.float32, pytest.param(tf.bfloat16, marks=pytest.mark.bf16)])
def test_gradients_flow_through_the_jitter(dtype):
    images = tf.Variable(tf.cast(tf.random.uniform((4, 28, 28, 1), -1.0, 1.0, seed=0), dtype))
    with tf.GradientTape() as tape:
        moved = augment.jitter(images, tf.random.Generator.from_seed(3))
        total = tf.reduce_sum(tf.cast(moved, tf.float32))
    assert moved.dtype == dtype
    gradient = tf.cast(tape.gradient(total, images), tf.float32).numpy()
    assert np.isfinite(gradient).all() and gradient.sum() > 0


def test_translation_moves_each_image_by_the_shifts_its_generator_draws():
    """Non-square images, each moved down by its first drawn shift and right by its second, the
    draws read from a twin of the generator: up to round(side / 8) each way."""
    images = np.full((256, 8, 16, 1), -1.0, np.float32)
    images[:, 3, 7, 0] = 1.0
    moved = augment.translate(tf.constant(images), tf.random.Generator.from_seed(5)).numpy()
    shifts = tf.random.Generator.from_seed(5).uniform((256, 2), -1, 2, dtype=tf.int32).numpy()
    for image, (down, across) in zip(moved[..., 0], shifts, strict=True):
        expected = np.full((8, 16), -1.0, np.float32)
        expected[3 + down, 7 + across] = 1.0
        np.testing.assert_array_equal(image, expected)
    assert {tuple(s) for s in shifts} == {(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)}


def bilinear_reference(image, angle, scale, shift):
    """What `jitter` should give, computed by hand: output pixel (x, y) reads the input at
    A (p - c) + c + shift (A: rotation by -angle scaled by 1 / scale), bilinearly, with
    background outside."""
    height, width = image.shape
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    out = np.full_like(image, -1.0)
    for y in range(height):
        for x in range(width):
            sx = cos * (x - cx) - sin * (y - cy) + cx + shift[0]
            sy = sin * (x - cx) + cos * (y - cy) + cy + shift[1]
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            value = 0.0
            for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
                weight = (1 - abs(sx - (x0 + dx))) * (1 - abs(sy - (y0 + dy)))
                inside = 0 <= y0 + dy < height and 0 <= x0 + dx < width
                value += weight * (image[y0 + dy, x0 + dx] if inside else -1.0)
            out[y, x] = value
    return out


def test_jitter_applies_the_rotation_scale_and_shift_its_generator_draws():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (6, 9, 13, 1)).astype(np.float32)  # not square
    moved = augment.jitter(tf.constant(images), tf.random.Generator.from_seed(3)).numpy()
    twin = tf.random.Generator.from_seed(3)
    degrees, scale, shift = augment.JITTER_DEGREES, augment.JITTER_SCALE, augment.JITTER_SHIFT
    angles = twin.uniform((6,), -degrees, degrees).numpy() * np.pi / 180
    scales = twin.uniform((6,), 1 - scale, 1 + scale).numpy()
    shifts = twin.uniform((6, 2), -shift, shift).numpy()
    assert (scales < 1).any() and (scales > 1).any() and (shifts < 0).any()
    draws = zip(images, angles, scales, shifts, moved, strict=True)
    for image, angle, factor, offset, got in draws:
        expected = bilinear_reference(image[..., 0], angle, factor, offset)
        np.testing.assert_allclose(got[..., 0], expected, atol=2e-5)
