"""What the evaluate stage hands a family so that it measures what is particular to it.

The stage measures every generator the same way, then asks the family that trained it (named
by the model's `train_params`) for its own measures: each family's `measure` returns them
under keys of its own, which the stage writes beside the common ones. The stage never names
a family; a family never repeats the common measures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.config import ClassifierConfig, EvaluateConfig


@dataclass(frozen=True)
class Described:
    """uint8 images `(N, 28, 28)` with the classifier's features and logits of them, and
    their labels where they are known (None for generated images)."""

    images: np.ndarray
    features: np.ndarray
    logits: np.ndarray
    labels: np.ndarray | None = None


@dataclass(frozen=True)
class Evaluation:
    """One evaluate run as a family's measures read it."""

    sampler: Any  # the ONNX generator (`pipeline.runtime.sampler.Sampler`)
    config: EvaluateConfig
    # the evaluation classifier's features and logits of uint8 images
    describe: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    generated: Described  # `config.samples` images, the sampler's at `config.seed`
    reference: Described  # as many training images, with their labels
    train: tuple[np.ndarray, np.ndarray]  # the training split: uint8 images, labels
    test: Described  # the test split
    models: Path | None  # the family's exported models (`models/family`); None: not ours
    plots: Path  # the folder the stage's figures go to
    classifier_config: ClassifierConfig | None = None  # how to train a digit classifier

    def digits(self, images: np.ndarray) -> np.ndarray:
        """The digit the evaluation classifier reads in each uint8 image."""
        return self.describe(images)[1].argmax(axis=1)


class MeasuredFamily(Protocol):
    """A family as the evaluate stage asks it (`pipeline.families.base.Family`)."""

    @classmethod
    def measure(cls, evaluation: Evaluation) -> dict[str, Any]: ...
