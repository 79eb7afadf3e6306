"""The Classification Accuracy Score on made-up digits a classifier learns in seconds: a bar
across the image whose height is the digit."""

import numpy as np
import pytest

from pipeline.config import ClassifierConfig
from pipeline.evaluation.generated_training import classification_accuracy_score

CONFIG = ClassifierConfig(epochs=2, batch_size=32)


def bars(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Images of noise with a bright bar two rows high at rows 4 + 2 * label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    images = rng.integers(0, 96, (count, 28, 28), dtype=np.uint8)
    for image, label in zip(images, labels, strict=True):
        image[4 + 2 * label : 6 + 2 * label] = 255
    return images, labels


@pytest.fixture(scope="module")
def test_split():
    return bars(2, 200)


def test_digits_that_teach_the_digit_score_like_real_ones(test_split):
    score = classification_accuracy_score(bars(0, 200), bars(1, 200), test_split, CONFIG)
    assert score["trained_on_generated"] >= 0.9 and score["trained_on_real"] >= 0.9
    assert (score["digits"], score["epochs"]) == (200, 2)


def test_digits_drawn_for_the_wrong_label_score_near_chance(test_split):
    images, labels = bars(0, 200)
    wrong = (images, np.random.default_rng(3).permutation(labels))
    score = classification_accuracy_score(wrong, bars(1, 200), test_split, CONFIG)
    assert score["trained_on_generated"] <= 0.3
    assert score["trained_on_real"] >= 0.9


def test_as_many_real_digits_as_generated_and_the_same_training(test_split):
    """Generated digits that are the real ones score exactly as the real ones: the same
    count, the same seed, the same steps."""
    same = bars(0, 200)
    longer = np.concatenate([same[0], bars(5, 100)[0]]), np.concatenate([same[1], bars(5, 100)[1]])
    score = classification_accuracy_score(same, longer, test_split, CONFIG)
    assert score["trained_on_generated"] == score["trained_on_real"]
