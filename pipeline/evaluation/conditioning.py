"""How well a model that takes the digit obeys it: the evaluation classifier's accuracy against
the requested labels (does asking for a 7 give a 7?) and the Frechet distance of each class to
the test images of that class, beside the same measures of real training images."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.evaluation import quality


def conditioning(
    requested: np.ndarray,
    logits: np.ndarray,
    features: np.ndarray,
    reference: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: tuple[int, ...],
) -> dict[str, Any]:
    """Label accuracy and per-class Frechet distance of images drawn for `requested` labels;
    `reference` is (labels, logits, features) of real images, `test` (labels, features). A
    class with fewer than two images on either side has no distance (None)."""
    test_labels, test_features = test

    def per_class(labels, logits, features) -> tuple[dict[str, float], dict[str, float | None]]:
        right = logits.argmax(axis=1) == labels
        accuracy, distance = {}, {}
        for c in classes:
            mine, theirs = labels == c, test_labels == c
            accuracy[str(c)] = round(float(right[mine].mean()), 5) if mine.any() else None
            distance[str(c)] = (
                quality.frechet_distance_of(features[mine], test_features[theirs])
                if min(mine.sum(), theirs.sum()) >= 2
                else None
            )
        return accuracy, distance

    def mean(values) -> float | None:
        known = [v for v in values if v is not None]
        return float(np.mean(known)) if known else None

    accuracy, distance = per_class(requested, logits, features)
    _, real_distance = per_class(*reference)
    return {
        "label_accuracy": float(np.mean(logits.argmax(axis=1) == requested)),
        "label_accuracy_per_class": accuracy,
        "mean_class_frechet_distance": mean(distance.values()),
        "class_frechet_distance": distance,
        "real_reference_label_accuracy": float(
            np.mean(reference[1].argmax(axis=1) == reference[0])
        ),
        "real_reference_mean_class_frechet_distance": mean(real_distance.values()),
    }
