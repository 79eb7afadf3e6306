"""The memorization measure on hand-checkable points and on generators that copy or do not."""

import numpy as np
import pytest

from pipeline.evaluation import memorization


def test_nearest_by_hand():
    references = np.array([[0.0, 0.0], [6.0, 8.0], [3.0, 0.0]])
    distances, indices = memorization.nearest(np.array([[0.0, 0.0], [3.0, 4.0]]), references)
    np.testing.assert_allclose(distances, [0.0, 4.0])  # (3, 4) to (3, 0); 5 to the others
    np.testing.assert_array_equal(indices, [0, 2])


def test_an_exact_match_is_zero_whatever_the_rounding():
    points = np.random.default_rng(0).uniform(0, 1, (50, 784)) * 255
    distances, indices = memorization.nearest(points, points)
    np.testing.assert_array_equal(distances, 0.0)
    np.testing.assert_array_equal(indices, np.arange(50))


def test_blocks_give_the_brute_force_answer(monkeypatch):
    rng = np.random.default_rng(1)
    queries, references = rng.normal(size=(7, 5)), rng.normal(size=(11, 5))
    monkeypatch.setattr(memorization, "BLOCK", 3)
    distances, indices = memorization.nearest(queries, references)
    brute = np.linalg.norm(queries[:, None] - references[None], axis=2)
    np.testing.assert_array_equal(indices, brute.argmin(axis=1))
    np.testing.assert_allclose(distances, brute.min(axis=1), rtol=1e-5)


def digits(rng, count):
    """Images and features from one distribution, as real digits are to each other."""
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    return images, images.reshape(count, -1)[:, :16].astype(np.float64)


def test_a_generator_that_returns_training_images_is_flagged():
    rng = np.random.default_rng(2)
    train, held_out = digits(rng, 500), digits(rng, 400)
    copies = train[0][:100], train[1][:100]
    metrics, index, distance = memorization.memorization(copies, held_out, train)
    assert metrics["generated"]["copy_share"] == 1.0
    assert metrics["generated"]["median_nearest_pixels"] == 0.0
    assert metrics["generated"]["median_nearest_features"] == 0.0
    np.testing.assert_array_equal(index, np.arange(100))
    np.testing.assert_array_equal(distance, 0.0)


def test_a_generator_of_new_digits_copies_as_rarely_as_held_out_digits():
    rng = np.random.default_rng(3)
    train, held_out, generated = digits(rng, 500), digits(rng, 2000), digits(rng, 1000)
    metrics, _, _ = memorization.memorization(generated, held_out, train)
    assert metrics["quantile"] == memorization.QUANTILE
    for name in ("generated", "held_out"):
        assert metrics[name]["copy_share"] == pytest.approx(memorization.QUANTILE, abs=0.03)
    assert metrics["generated"]["samples"] == 1000 and metrics["held_out"]["samples"] == 1000
    medians = [metrics[name]["median_nearest_pixels"] for name in ("generated", "held_out")]
    assert medians[0] == pytest.approx(medians[1], rel=0.01)
