"""What a BiGAN encoder learnt, measured on the test split through its ONNX model:

- 1-nearest-neighbour digit accuracy in its feature space, fitted on the training split: the
  codes E(x) and the layer before them (Donahue et al. 2016 report the latter on MNIST);
- the reconstruction ratio mean ||x - G(E(x))|| / mean ||x' - G(E(x))||, x' another test
  image: below 1 when G(E(x)) is closer to its own image than to another;
- the share of test images whose reconstruction the evaluation classifier reads as the
  image's own digit.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.storage.images import from_uint8, to_uint8

log = logging.getLogger(__name__)

CHUNK = 1000  # test rows per distance block: 1000 x 60000 float32 is 240 MB


def nearest_neighbour_accuracy(
    fitted: np.ndarray, fitted_labels: np.ndarray, queries: np.ndarray, query_labels: np.ndarray
) -> float:
    """Share of `queries` whose nearest `fitted` row (Euclidean) carries their label."""
    fitted = fitted.astype(np.float32)
    squared = np.einsum("ij,ij->i", fitted, fitted)
    right = 0
    for start in range(0, len(queries), CHUNK):
        block = queries[start : start + CHUNK].astype(np.float32)
        # ||q - f||^2 = ||q||^2 - 2 q.f + ||f||^2; ||q||^2 does not change the argmin.
        distances = squared[np.newaxis, :] - 2.0 * block @ fitted.T
        nearest = distances.argmin(axis=1)
        right += int(np.sum(fitted_labels[nearest] == query_labels[start : start + CHUNK]))
    return right / len(queries)


def derangement(count: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(count) that moves every index (one cycle)."""
    order = rng.permutation(count)
    partner = np.empty(count, np.int64)
    partner[order] = np.roll(order, -1)
    return partner


def reconstruction_ratio(images: np.ndarray, reconstructed: np.ndarray, partner: np.ndarray):
    """mean ||x - G(E(x))|| / mean ||x' - G(E(x))||, with x' = images[partner]; both float
    `(N, 28, 28, 1)` in [-1, 1]. Returns (ratio, own distance, other distance)."""
    flat = images.reshape(len(images), -1)
    drawn = reconstructed.reshape(len(reconstructed), -1)
    own = float(np.linalg.norm(flat - drawn, axis=1).mean())
    other = float(np.linalg.norm(flat[partner] - drawn, axis=1).mean())
    return own / other, own, other


def measure_encoder(
    encoder,
    sampler,
    classify,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """The three measures of `encoder` (`pipeline.runtime.encode.Encoder`) with the generator
    `sampler` runs; `classify`: uint8 images -> predicted digits; `train`, `test`: (uint8
    images, labels). Returns the metrics and the test images' reconstructions in [-1, 1]."""
    (train_images, train_labels), (test_images, test_labels) = train, test
    train_x, test_x = from_uint8(train_images), from_uint8(test_images)
    accuracy = {}
    for name, features in (("codes", False), ("features", True)):
        fitted = encoder.encode(train_x, features=features)
        queries = encoder.encode(test_x, features=features)
        accuracy[name] = nearest_neighbour_accuracy(fitted, train_labels, queries, test_labels)
    reconstructed = encoder.reconstruct(sampler, test_x)
    partner = derangement(len(test_x), np.random.default_rng(seed))
    ratio, own, other = reconstruction_ratio(test_x, reconstructed, partner)
    kept = float(np.mean(classify(to_uint8(reconstructed)[..., 0]) == test_labels))
    metrics = {
        "nearest_neighbour_accuracy_features": accuracy["features"],
        "nearest_neighbour_accuracy_codes": accuracy["codes"],
        "reconstruction_ratio": ratio,
        "reconstruction_distance": own,
        "other_image_distance": other,
        "digit_kept": kept,
        "train_images": len(train_x),
        "test_images": len(test_x),
    }
    log.info(
        "BiGAN encoder: 1-NN accuracy %.4f (features), %.4f (codes); reconstruction ratio "
        "%.3f; digit kept by %.4f of reconstructions",
        accuracy["features"],
        accuracy["codes"],
        ratio,
        kept,
    )
    return metrics, reconstructed
