"""The `evaluate` stage: sample quality of the exported ONNX generator, with real-data references.

The generated images come through the sampler from `generator.onnx`, so the file users embed is
the one measured. Every measure is computed twice the same way: for the generated samples and for
as many real training images (the reference: what "perfect" scores look like), both against the
10,000 test images in the classifier's feature space.

`memorization` says whether the generator copies training digits
(`pipeline.evaluation.memorization`): how near its digits come to a training image beside how
near held-out test digits do; the closest pairs are drawn to `closest_pairs.png`.

A conditional model draws the classes in turn (the same number of each), and `conditioning`
says how well it obeys: the classifier's accuracy against the requested labels (does asking for a
7 give a 7?) and the Frechet distance of each class to the test images of that class, beside the
same measures of real training images.

An InfoGAN model draws its categorical code in turn, and `codes` says what its codes control
(`pipeline.evaluation.codes`): the categorical code's accuracy as a clusterer of digits, and each
continuous code's rank correlation with slant, width and ink.

A semi-supervised model's classifiers (`pipeline.families.semi_supervised`) are measured
where they are meant to be used: `semi_supervised` gives the test error of its exported
classifier and of the supervised-only baseline trained on the same labels, both through
onnxruntime.

A BiGAN model's encoder (`pipeline.families.bigan`) is measured as `pipeline.evaluation.encoding`
says, through its ONNX model with the ONNX generator, under `bigan`; its reconstructions of
the first test images are drawn beside them (`reconstructions.png` beside the sample grid).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ClassifierConfig, EvaluateConfig
from pipeline.data.datasets import load_split
from pipeline.evaluation import (
    classifier,
    codes,
    encoding,
    generated_training,
    memorization,
    quality,
)
from pipeline.evaluation.any_generator import AnyGenerator, Stated, open_generator
from pipeline.evaluation.classifier import load_feature_model
from pipeline.runtime.classify import BASELINE_FILE, CLASSIFIER_FILE, LABELLED_FILE, Classifier
from pipeline.runtime.encode import ENCODER_FILE, Encoder
from pipeline.runtime.images import from_uint8, paired_grid, save_labelled_grid, save_png, to_uint8
from pipeline.runtime.sampler import Sampler

log = logging.getLogger(__name__)

RECONSTRUCTIONS_FILE = "reconstructions.png"  # a BiGAN model's, beside the sample grid
CLOSEST_PAIRS_FILE = "closest_pairs.png"  # generated digits over their nearest training digits
# Generated digits, and twice as many held-out ones, whose nearest training image is sought
# (each search a pass over the 60,000 training images in pixels and in features).
MEMORIZATION_SAMPLES = 2000


def describe(feature_model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classifier features and logits of uint8 images, 500 at a time."""
    return classifier.describe(feature_model, images, batch_size=500)


def measures(features, logits, test_features, test_logits, config: EvaluateConfig) -> dict:
    probabilities = quality.softmax(logits)
    score, score_std = quality.classifier_score(probabilities, config.splits)
    precision, recall = quality.precision_recall(test_features, features, config.neighbours)
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


def evaluate(
    onnx_path: Path,
    classifier_path: Path,
    data: Path,
    config: EvaluateConfig,
    figure: Path,
    *,
    int8_path: Path | None = None,
    classifiers: Path | None = None,
    classifier_config: ClassifierConfig | None = None,
    stated: Stated | None = None,
) -> dict[str, Any]:
    """Measure, write the labelled sample grid to `figure`, and return the metrics.

    With `int8_path`, its samples from the same noise are measured too (`generated_int8`), and
    their Frechet distance relative to the float32 model's. With `classifiers`, a folder the
    semi-supervised model filled (empty for the others), its classifiers' test errors. With
    `classifier_config`, a model that takes a digit label is given its Classification
    Accuracy Score, classifiers trained as that section says. `stated`: what the user says
    of a generator made elsewhere (`pipeline.evaluation.any_generator`); without it, a model
    that does not carry this project's contract is measured as one that follows it.
    """
    started = time.perf_counter()
    sampler = open_generator(onnx_path, stated)
    if isinstance(sampler, AnyGenerator):
        classifiers = None  # models/family belongs to this project's own generator
    # The classes in turn; None unless conditional.
    requested = sampler.labels(config.samples) if sampler.conditional else None
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
    results = {}
    described = {}
    sets.append(("real_reference", train_images[picked]))
    for name, images in sets:
        features, logits = describe(feature_model, images)
        described[name] = features, logits
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
    if requested is not None:
        features, logits = described["generated"]
        real_features, real_logits = described["real_reference"]
        results["conditioning"] = conditioning(
            requested,
            logits,
            features,
            (train_labels[picked], real_logits, real_features),
            (test_labels, test_features),
            sampler.classes,
        )
        log.info(
            "conditioning: label accuracy %.4f (real %.4f), mean per-class Frechet distance "
            "%.3f (real %.3f)",
            results["conditioning"]["label_accuracy"],
            results["conditioning"]["real_reference_label_accuracy"],
            results["conditioning"]["mean_class_frechet_distance"],
            results["conditioning"]["real_reference_mean_class_frechet_distance"],
        )
    results["memorization"] = measure_memorization(
        (sets[0][1], described["generated"][0]),
        (test_images, test_features),
        train_images,
        feature_model,
        figure.with_name(CLOSEST_PAIRS_FILE),
        config.grid_size,
    )
    if requested is not None and classifier_config is not None:
        results["classification_accuracy_score"] = generated_training.classification_accuracy_score(
            (sets[0][1], requested),
            (train_images[picked], train_labels[picked]),
            (test_images, test_labels),
            classifier_config,
        )
        log.info(
            "classification accuracy score: %.4f trained on generated digits, %.4f on as many "
            "real ones",
            results["classification_accuracy_score"]["trained_on_generated"],
            results["classification_accuracy_score"]["trained_on_real"],
        )
    if sampler.infogan:
        results["codes"] = measure_codes(sampler, feature_model, config.seed)
    if classifiers is not None and (classifiers / CLASSIFIER_FILE).exists():
        results["semi_supervised"] = classifier_errors(classifiers, test_images, test_labels)
    if classifiers is not None and (classifiers / ENCODER_FILE).exists():
        results["bigan"] = measure_encoder(
            classifiers / ENCODER_FILE,
            sampler,
            feature_model,
            (train_images, train_labels),
            (test_images, test_labels),
            config,
            figure.with_name(RECONSTRUCTIONS_FILE),
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


def measure_encoder(path, sampler, feature_model, train, test, config, figure) -> dict:
    """`pipeline.evaluation.encoding.measure_encoder` of the encoder at `path` with the ONNX
    generator, the classifier naming the digits; the first test images and their
    reconstructions drawn to `figure`."""
    encoder = Encoder(path)
    encoder.check_pairs_with(sampler, path)
    metrics, reconstructed = encoding.measure_encoder(
        encoder,
        sampler,
        lambda images: describe(feature_model, images)[1].argmax(axis=1),
        train,
        test,
        config.seed,
    )
    shown = config.grid_size**2 // 2
    originals = from_uint8(test[0][:shown])
    grid = paired_grid(originals, reconstructed[:shown], config.grid_size)
    save_png(grid, figure, scale=3)
    return metrics


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


def classifier_errors(folder: Path, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Test error of the semi-supervised classifier and of its supervised-only baseline."""
    errors = {
        "test_error": Classifier(folder / CLASSIFIER_FILE).error_rate(images, labels),
        "baseline_test_error": Classifier(folder / BASELINE_FILE).error_rate(images, labels),
    }
    labelled = json.loads((folder / LABELLED_FILE).read_text())
    errors |= {"labelled": len(labelled["indices"]), "label_seed": labelled["label_seed"]}
    log.info(
        "semi-supervised: test error %.4f with %d labels (supervised-only baseline %.4f)",
        errors["test_error"],
        errors["labelled"],
        errors["baseline_test_error"],
    )
    return errors


def measure_codes(sampler: Sampler, feature_model, seed: int) -> dict[str, Any]:
    """`pipeline.evaluation.codes.measure_codes` on the ONNX model, the classifier naming the
    digits."""

    def draw(latent: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        parts = [
            to_uint8(sampler.generate(latent[i : i + 1000], categorical[i : i + 1000]))[..., 0]
            for i in range(0, len(latent), 1000)
        ]
        return np.concatenate(parts)

    measured = codes.measure_codes(
        draw,
        lambda images: describe(feature_model, images)[1].argmax(axis=1),
        noise_dim=sampler.contract.noise_dim,
        categorical=sampler.contract.categorical_codes,
        continuous=sampler.contract.continuous_codes,
        seed=seed,
    )
    log.info("InfoGAN codes: %s", codes.meanings(measured))
    return measured
