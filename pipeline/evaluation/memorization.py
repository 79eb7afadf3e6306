"""Does the generator copy its training digits? The nearest-neighbour check (as StudioGAN
draws it; Meehan et al. 2020 make a test of it), numpy only.

For each generated digit and each held-out real digit (test images, which training never
saw), the Euclidean distance to its nearest training image, in pixels (values in [0, 1]) and
in the classifier's features. A generator that learnt the distribution draws digits about as
far from the training set as new real digits are; one that memorised draws many much nearer.

`copy_share` is the share of digits nearer to a training image, in pixels, than all but
`QUANTILE` of one half of the held-out digits are: for the generated ones, and, as the real
floor, for the other half of the held-out digits (about `QUANTILE` whatever the generator). A
generator that returns training images scores 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

QUANTILE = 0.05  # the held-out digits' distance under which a digit counts as a copy
BLOCK = 1000  # queries per distance matrix: (BLOCK, training images) float32 at a time


def nearest(queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Euclidean distance `(N,)` of each row of `queries` `(N, D)` to its nearest row of
    `references` `(M, D)`, and that row's index. The search ranks ||r||^2 - 2 q.r, each
    block's matrix product one float32 GEMM; the distance to the row found is then taken
    directly, in float64, so an exact copy measures 0."""
    queries = np.asarray(queries).reshape(len(queries), -1)
    references = np.asarray(references).reshape(len(references), -1)
    search = references.astype(np.float32)
    norms = np.einsum("ij,ij->i", search, search)

    def ranked(block: np.ndarray) -> np.ndarray:
        scores = block.astype(np.float32) @ search.T
        scores *= -2.0  # exact; then norms - 2 q.r, in the one array
        scores += norms
        return scores.argmin(axis=1)

    indices = np.concatenate(
        [ranked(queries[i : i + BLOCK]) for i in range(0, len(queries), BLOCK)]
    )
    difference = queries.astype(np.float64) - references[indices].astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", difference, difference)), indices


def pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images `(N, 28, 28)` -> float32 rows `(N, 784)` in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def memorization(
    generated: tuple[np.ndarray, np.ndarray],
    held_out: tuple[np.ndarray, np.ndarray],
    train: tuple[np.ndarray, np.ndarray],
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Each argument is (uint8 images `(N, 28, 28)`, features `(N, D)`); `held_out` is split
    in halves, the first setting the copy threshold and the second measured as real digits.
    Returns the metrics, and the generated digits' nearest training images' indices and
    pixel distances (for the grid of the closest pairs)."""
    half = len(held_out[0]) // 2
    train_pixels = pixels(train[0])
    measured = {}
    for name, (images, features) in {
        "generated": generated,
        "held_out": (held_out[0][half:], held_out[1][half:]),
        "threshold": (held_out[0][:half], held_out[1][:half]),
    }.items():
        pixel_distance, index = nearest(pixels(images), train_pixels)
        feature_distance, _ = nearest(features, train[1])
        measured[name] = pixel_distance, feature_distance, index
    threshold = float(np.quantile(measured["threshold"][0], QUANTILE))
    metrics: dict[str, Any] = {
        "copy_threshold_pixels": threshold,
        "quantile": QUANTILE,
        "training_images": len(train_pixels),
    }
    for name in ("generated", "held_out"):
        pixel_distance, feature_distance, _ = measured[name]
        metrics[name] = {
            "copy_share": float(np.mean(pixel_distance < threshold)),
            "median_nearest_pixels": float(np.median(pixel_distance)),
            "median_nearest_features": float(np.median(feature_distance)),
            "samples": len(pixel_distance),
        }
    pixel_distance, _, index = measured["generated"]
    return metrics, index, pixel_distance
