"""The `evaluate` stage: sample quality of the exported ONNX generator, with real-data references.

The generated images come through the sampler from `generator.onnx`, so the file users embed is
the one measured. Every measure is computed twice the same way: for the generated samples and for
as many real training images (the reference: what "perfect" scores look like), both against the
10,000 test images in the classifier's feature space.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import quality
from pipeline.classifier import load_feature_model, to_model_input
from pipeline.config import EvaluateConfig
from pipeline.datasets import load_split
from pipeline.images import save_labelled_grid
from pipeline.sampler import Sampler

log = logging.getLogger(__name__)


def describe(feature_model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classifier features `(N, 128)` and logits `(N, 10)` of uint8 images `(N, 28, 28)`."""
    features, logits = feature_model.predict(to_model_input(images), batch_size=500, verbose=0)
    return np.asarray(features, np.float64), np.asarray(logits, np.float64)


def measures(features, logits, test_features, test_logits, config: EvaluateConfig) -> dict:
    probabilities = quality.softmax(logits)
    score, score_std = quality.classifier_score(probabilities, config.splits)
    precision, recall = quality.precision_recall(test_features, features, config.neighbours)
    return {
        "frechet_distance": quality.frechet_distance_of(features, test_features),
        "frechet_distance_logits": quality.frechet_distance_of(logits, test_logits),
        "classifier_score": score,
        "classifier_score_std": score_std,
        "precision": precision,
        "recall": recall,
        **quality.class_coverage(probabilities),
    }


def evaluate(
    onnx_path: Path,
    classifier_path: Path,
    data: Path,
    config: EvaluateConfig,
    figure: Path,
    *,
    int8_path: Path | None = None,
) -> dict[str, Any]:
    """Measure, write the labelled sample grid to `figure`, and return the metrics.

    With `int8_path`, its samples from the same noise are measured too (`generated_int8`), and
    their Frechet distance relative to the float32 model's.
    """
    started = time.perf_counter()
    generated = Sampler(onnx_path).sample(config.samples, seed=config.seed)
    sets = [("generated", generated)]
    if int8_path is not None:
        sets.append(("generated_int8", Sampler(int8_path).sample(config.samples, seed=config.seed)))
    test_images, _ = load_split(data, "test")
    train_images, _ = load_split(data, "train")
    picked = np.random.default_rng(config.seed).choice(
        len(train_images), min(config.samples, len(train_images)), replace=False
    )
    feature_model = load_feature_model(classifier_path)
    test_features, test_logits = describe(feature_model, test_images)
    results = {}
    sets.append(("real_reference", train_images[picked]))
    for name, images in sets:
        features, logits = describe(feature_model, images)
        results[name] = measures(features, logits, test_features, test_logits, config)
        log.info(
            "%s: Frechet distance %.3f, classifier score %.3f, precision %.3f, recall %.3f",
            name,
            results[name]["frechet_distance"],
            results[name]["classifier_score"],
            results[name]["precision"],
            results[name]["recall"],
        )
        if name == "generated":
            shown = config.grid_size**2
            predicted = logits[:shown].argmax(axis=1)
            save_labelled_grid(images[:shown], predicted, figure, columns=config.grid_size)
    if int8_path is not None:
        results["int8_frechet_distance_ratio"] = round(
            results["generated_int8"]["frechet_distance"]
            / results["generated"]["frechet_distance"],
            4,
        )
    return {
        **results,
        "samples": config.samples,
        "test_images": len(test_images),
        "seconds": round(time.perf_counter() - started, 1),
    }
