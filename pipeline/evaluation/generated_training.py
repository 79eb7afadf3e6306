"""Classification Accuracy Score (Ravuri and Vinyals 2019, "Classification Accuracy Score for
Conditional Generative Models"): a classifier trained only on a conditional generator's
digits, each labelled with the digit asked for, then tested on the real test split.

It asks what the Frechet distance does not: do the digits drawn for each label carry
everything a classifier needs to know that digit, across its whole variety? The same
classifier (the evaluation classifier's network and training, `fit_classifier`) trained on as
many real training digits gives the reference, so the gap is the generator's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.config import ClassifierConfig
from pipeline.evaluation.classifier import fit_classifier
from pipeline.storage.images import from_uint8


def accuracy_on(model, test: tuple[np.ndarray, np.ndarray]) -> float:
    _, accuracy = model.evaluate(from_uint8(test[0]), test[1], verbose=0)
    return round(float(accuracy), 5)


def classification_accuracy_score(
    generated: tuple[np.ndarray, np.ndarray],
    real: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    config: ClassifierConfig,
) -> dict[str, Any]:
    """Each argument is (uint8 images `(N, 28, 28)`, labels `(N,)`): the generated digits with
    the labels they were drawn for, real training digits (as many are used), the test split.
    Both classifiers train for `config.epochs` over their images with the same seed."""
    count = len(generated[0])
    on_generated, _ = fit_classifier(*generated, config)
    on_real, _ = fit_classifier(real[0][:count], real[1][:count], config)
    return {
        "trained_on_generated": accuracy_on(on_generated, test),
        "trained_on_real": accuracy_on(on_real, test),
        "digits": count,
        "epochs": config.epochs,
    }
