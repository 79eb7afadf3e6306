"""The `evaluate` stage: sample quality of the exported ONNX generator, with real-data references.

The generated images come through the sampler from `generator.onnx`, so the file users embed is
the one measured. Every measure is computed twice the same way: for the generated samples and for
as many real training images (the reference: what "perfect" scores look like), both against the
10,000 test images in the classifier's feature space.

`memorization` says whether the generator copies training digits
(`pipeline.evaluation.memorization`): how near its digits come to a training image beside how
near held-out test digits do; the closest pairs are drawn to `closest_pairs.png`.

What is particular to a family is measured by the family that trained the model (named by the
model's `train_params`; `pipeline.evaluation.family_measures`), written under keys of its own:
`docs/EVALUATION.md` lists them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from pipeline.config import ClassifierConfig, EvaluateConfig
from pipeline.data.datasets import load_split
from pipeline.evaluation import classifier, memorization, quality
from pipeline.evaluation.any_generator import AnyGenerator, Stated, open_generator
from pipeline.evaluation.classifier import load_feature_model
from pipeline.evaluation.family_measures import Described, Evaluation, MeasuredFamily
from pipeline.runtime.contract import trained_family
from pipeline.runtime.sampler import Sampler
from pipeline.storage.images import from_uint8, paired_grid, save_labelled_grid, save_png

log = logging.getLogger(__name__)

CLOSEST_PAIRS_FILE = "closest_pairs.png"  # generated digits over their nearest training digits
# Generated digits, and twice as many held-out ones, whose nearest training image is sought
# (each search a pass over the 60,000 training images in pixels and in features).
MEMORIZATION_SAMPLES = 2000


def describe(feature_model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classifier features and logits of uint8 images, 500 at a time."""
    return classifier.describe(feature_model, images, batch_size=500)


def measures(
    features, logits, test_features, test_logits, test_radii, config: EvaluateConfig
) -> dict:
    """Every generator's measures of one set's classifier features and logits against the
    test images' (`test_radii`: their manifold's, `quality.kth_neighbour_radii`)."""
    probabilities = quality.softmax(logits)
    score, score_std = quality.classifier_score(probabilities, config.splits)
    precision, recall = quality.precision_recall(
        test_features, features, config.neighbours, real_radii=test_radii
    )
    kernel, kernel_std = quality.kernel_distance(features, test_features, seed=config.seed)
    return {
        "frechet_distance": quality.frechet_distance_of(features, test_features),
        "kernel_distance": kernel,
        "kernel_distance_std": kernel_std,
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
    family_models: Path | None = None,
    families: Mapping[str, MeasuredFamily] = MappingProxyType({}),
    classifier_config: ClassifierConfig | None = None,
    stated: Stated | None = None,
) -> dict[str, Any]:
    """Measure, write the labelled sample grid to `figure`, and return the metrics.

    With `int8_path`, its samples from the same noise are measured too (`generated_int8`), and
    their Frechet distance relative to the float32 model's. `families`: the families by name;
    the one that trained the model adds its own measures, reading its exported models from
    `family_models`. With `classifier_config`, a family may train digit classifiers as that
    section says. `stated`: what the user says of a generator made elsewhere
    (`pipeline.evaluation.any_generator`); without it, a model that does not carry this
    project's contract is measured as one that follows it.
    """
    started = time.perf_counter()
    sampler = open_generator(onnx_path, stated)
    # a generator made elsewhere has no family of this project's
    ours = not isinstance(sampler, AnyGenerator)
    family = families.get(trained_family(sampler.session) or "") if ours else None
    sets = [("generated", sampler.sample(config.samples, seed=config.seed))]
    if int8_path is not None:
        sets.append(("generated_int8", Sampler(int8_path).sample(config.samples, seed=config.seed)))
    test_images, test_labels = load_split(data, "test")
    train_images, train_labels = load_split(data, "train")
    picked = np.random.default_rng(config.seed).choice(
        len(train_images), min(config.samples, len(train_images)), replace=False
    )
    feature_model = load_feature_model(classifier_path)
    test_features, test_logits = describe(feature_model, test_images)
    test_radii = quality.kth_neighbour_radii(test_features, config.neighbours)
    results = {}
    described = {}
    sets.append(("real_reference", train_images[picked]))
    for name, images in sets:
        features, logits = describe(feature_model, images)
        described[name] = features, logits
        results[name] = measures(features, logits, test_features, test_logits, test_radii, config)
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
    results["memorization"] = measure_memorization(
        (sets[0][1], described["generated"][0]),
        (test_images, test_features),
        train_images,
        feature_model,
        figure.with_name(CLOSEST_PAIRS_FILE),
        config.grid_size,
    )
    if family is not None:
        results |= family.measure(
            Evaluation(
                sampler=sampler,
                config=config,
                describe=lambda images: describe(feature_model, images),
                generated=Described(sets[0][1], *described["generated"]),
                reference=Described(
                    train_images[picked], *described["real_reference"], train_labels[picked]
                ),
                train=(train_images, train_labels),
                test=Described(test_images, test_features, test_logits, test_labels),
                models=family_models,
                plots=figure.parent,
                classifier_config=classifier_config,
            )
        )
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


def measure_memorization(generated, held_out, train_images, feature_model, figure, columns):
    """`pipeline.evaluation.memorization` of the first `MEMORIZATION_SAMPLES` generated digits
    and twice as many held-out ones against every training image; the generated digits
    nearest to a training image drawn over it, the closest first, to `figure`."""
    count = MEMORIZATION_SAMPLES
    generated = generated[0][:count], generated[1][:count]
    held_out = held_out[0][: 2 * count], held_out[1][: 2 * count]
    train_features, _ = describe(feature_model, train_images)
    metrics, index, distance = memorization.memorization(
        generated, held_out, (train_images, train_features)
    )
    closest = np.argsort(distance, kind="stable")[: columns * (columns // 2)]
    grid = paired_grid(
        from_uint8(generated[0][closest]), from_uint8(train_images[index[closest]]), columns
    )
    save_png(grid, figure, scale=3)
    log.info(
        "memorization: %.4f of generated digits nearer to a training digit than %.0f%% of "
        "held-out ones (held-out: %.4f)",
        metrics["generated"]["copy_share"],
        100 * (1 - metrics["quantile"]),
        metrics["held_out"]["copy_share"],
    )
    return metrics
