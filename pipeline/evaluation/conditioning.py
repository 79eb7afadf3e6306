"""What is measured of every model that takes the digit as an input: how well it obeys it (the
evaluation classifier's accuracy against the requested labels: does asking for a 7 give a 7?
and the Frechet distance of each class to the test images of that class, beside the same
measures of real training images), and its Classification Accuracy Score
(`pipeline.evaluation.generated_training`)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.evaluation import generated_training, quality
from pipeline.evaluation.family_measures import Evaluation

log = logging.getLogger(__name__)


def measure_labels(evaluation: Evaluation) -> dict[str, Any]:
    """`conditioning` of the generated digits (the classes in turn, as the stage drew them);
    with a classifier section, `classification_accuracy_score`."""
    requested = evaluation.sampler.labels(evaluation.config.samples)
    generated, reference, test = evaluation.generated, evaluation.reference, evaluation.test
    obeyed = conditioning(
        requested,
        generated.logits,
        generated.features,
        (reference.labels, reference.logits, reference.features),
        (test.labels, test.features),
        evaluation.sampler.classes,
    )
    log.info(
        "conditioning: label accuracy %.4f (real %.4f), mean per-class Frechet distance "
        "%.3f (real %.3f)",
        obeyed["label_accuracy"],
        obeyed["real_reference_label_accuracy"],
        obeyed["mean_class_frechet_distance"],
        obeyed["real_reference_mean_class_frechet_distance"],
    )
    if evaluation.classifier_config is None:
        return {"conditioning": obeyed}
    score = generated_training.classification_accuracy_score(
        (generated.images, requested),
        (reference.images, reference.labels),
        (test.images, test.labels),
        evaluation.classifier_config,
    )
    log.info(
        "classification accuracy score: %.4f trained on generated digits, %.4f on as many "
        "real ones",
        score["trained_on_generated"],
        score["trained_on_real"],
    )
    return {"conditioning": obeyed, "classification_accuracy_score": score}


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
