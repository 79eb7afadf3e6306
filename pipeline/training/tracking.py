"""Sample quality during training: the Frechet distance, the kernel distance (KID) and class
coverage of the generator that would be exported, against real images held out from the
classifier's training. KID has no bias at the tracking's small sample counts, where the
Frechet distance reads high.

The reference is the classifier stage's validation split (training images the classifier never
learnt from), never the test split, which stays for the final report. The generated side is
drawn from the same fixed noise at every measurement, so the curve shows the generator changing,
not the noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ClassifierConfig
from pipeline.evaluation import quality
from pipeline.evaluation.classifier import describe, load_feature_model, split_indices
from pipeline.runtime.noise import TRAINING_NOISE

QUALITY_COLUMNS = (
    "step",
    "train_seconds",
    "frechet_distance",
    "classifier_score",
    "smallest_class_share",
    "unsure_share",
    "kernel_distance",
)
# Subsets of the tracked KID (the evaluate stage takes 100): its mean moves little with more,
# and each measurement stays well under a second on two cores.
TRACKED_KID_SUBSETS = 10


@dataclass(frozen=True)
class Measurement:
    step: int
    train_seconds: float
    frechet_distance: float
    classifier_score: float
    smallest_class_share: float
    unsure_share: float
    kernel_distance: float = float("nan")  # nan in a checkpoint's history made without it

    def row(self) -> tuple:
        return tuple(getattr(self, column) for column in QUALITY_COLUMNS)

    @classmethod
    def from_row(cls, row) -> Measurement:
        step, *values = (float(value) for value in row)
        return cls(int(step), *values)


class QualityTracker:
    """Measures a generator (given as a function from noise and labels to uint8 images) against
    the held-out reference statistics."""

    def __init__(self, feature_model, reference_images: np.ndarray, noise: np.ndarray, labels):
        self.feature_model = feature_model
        features, _ = self._describe(reference_images)
        self.reference_features = features
        self.reference = quality.gaussian_statistics(features)
        self.noise = noise
        self.labels = labels

    @classmethod
    def from_classifier(
        cls,
        classifier_path: Path,
        train_images: np.ndarray,
        classifier_config: ClassifierConfig,
        *,
        samples: int,
        seed: int,
        noise_dim: int,
        classes: int,
    ) -> QualityTracker:
        """The classifier stage's model and its validation split of `train_images`; `samples`
        noise vectors drawn from `seed` (with the classes in turn for a conditional model)."""
        held_out = train_images[split_indices(len(train_images), classifier_config)[0]]
        noise = TRAINING_NOISE.draw(np.random.default_rng([seed, 1]), samples, noise_dim)
        labels = np.arange(samples, dtype=np.int32) % classes if classes else None
        return cls(load_feature_model(classifier_path), held_out, noise, labels)

    def _describe(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return describe(self.feature_model, images, batch_size=1000)

    def classify(self, images: np.ndarray) -> np.ndarray:
        """The classifier's digit for each uint8 image `(N, 28, 28)`."""
        return self._describe(images)[1].argmax(axis=1)

    def measure(
        self,
        draw: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
        step: int,
        train_seconds: float,
    ) -> Measurement:
        features, logits = self._describe(draw(self.noise, self.labels))
        probabilities = quality.softmax(logits)
        coverage = quality.class_coverage(probabilities)
        kernel, _ = quality.kernel_distance(
            features, self.reference_features, subsets=TRACKED_KID_SUBSETS
        )
        return Measurement(
            step=step,
            train_seconds=round(train_seconds, 2),
            frechet_distance=round(
                quality.frechet_distance(*quality.gaussian_statistics(features), *self.reference),
                4,
            ),
            classifier_score=round(quality.classifier_score(probabilities, splits=1)[0], 4),
            smallest_class_share=round(coverage["smallest_class_share"], 4),
            unsure_share=round(coverage["unsure_share"], 4),
            kernel_distance=round(kernel, 5),
        )


def summary(measurements: list[Measurement]) -> dict[str, Any]:
    """The last and the best tracked Frechet distance, and the last KID, for
    metrics/train.json."""
    if not measurements:
        return {}
    best = min(measurements, key=lambda m: m.frechet_distance)
    return {
        "validation_frechet_distance": measurements[-1].frechet_distance,
        "best_validation_frechet_distance": best.frechet_distance,
        "best_validation_step": best.step,
        "validation_kernel_distance": measurements[-1].kernel_distance,
    }
