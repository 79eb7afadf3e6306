"""Sample-quality measures on classifier features and predictions (numpy only, float64).

- Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, "FID" when
  the features come from Inception; here from an MNIST classifier, as in TF-GAN's MNIST metrics).
- Kernel distance (KID, Binkowski et al. 2018): the unbiased squared maximum mean discrepancy
  under a cubic polynomial kernel, over random subsets (mean and spread): no bias at small
  sample counts, where the Frechet distance reads high.
- Classifier score: exp E_x KL(p(y|x) || p(y)), the MNIST analogue of the Inception score
  (Salimans et al. 2016); 1 for a constant prediction, at most the number of classes.
- Class coverage: how the predicted classes are spread (mode collapse shows as a small share).
- Precision and recall of k-nearest-neighbour manifolds (Kynkaanniemi et al. 2019).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof 1) of `(N, D)` features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features.T)  # np.cov: rows are variables, N - 1


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
    """||m1 - m2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)).

    tr((C1 C2)^(1/2)) is computed as tr((C1^(1/2) C2 C1^(1/2))^(1/2)), a symmetric positive
    semi-definite matrix whose square root comes from an eigendecomposition: no complex parts,
    no iterative `sqrtm`, stable when the covariances are singular.
    """
    mean1, cov1, mean2, cov2 = (np.asarray(a, np.float64) for a in (mean1, cov1, mean2, cov2))
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * trace_root
    return float(max(distance, 0.0))


def frechet_distance_of(features1: np.ndarray, features2: np.ndarray) -> float:
    return frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))


def _squared_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-sized samples under k(a, b) = (a.b / d + 1)^3: the mean
    kernel within each sample without its diagonal, less twice the mean across them. The dot
    products are float32 (a sum of d products: relative error about 1e-7 sqrt(d)), the kernels
    and their sums float64, where the difference of means that are far larger than it is taken."""
    dimensions, count = x.shape[1], len(x)

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        base = (a @ b.T).astype(np.float64)
        base /= dimensions
        base += 1
        return base * base * base

    within_x, within_y, across = kernel(x, x), kernel(y, y), kernel(x, y)
    off_diagonal = (within_x.sum() - np.trace(within_x) + within_y.sum() - np.trace(within_y)) / (
        count * (count - 1)
    )
    return float(off_diagonal - 2 * across.mean())


def kernel_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: mean and standard deviation of `_squared_mmd` over `subsets` pairs of random
    subsets of `subset_size` rows (fewer when a sample is smaller; at least 2), drawn without
    replacement within a subset, as torch-fidelity and clean-fid draw them."""
    features1, features2 = (np.asarray(f, np.float32) for f in (features1, features2))
    size = min(subset_size, len(features1), len(features2))
    if size < 2:
        raise ValueError("the kernel distance needs at least 2 rows in each sample")
    rng = np.random.default_rng(seed)
    values = [
        _squared_mmd(
            features1[rng.choice(len(features1), size, replace=False)],
            features2[rng.choice(len(features2), size, replace=False)],
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def classifier_score(probabilities: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation over `splits` equal parts of exp(mean KL(p(y|x) || p(y)))."""
    probabilities = np.asarray(probabilities, np.float64)
    scores = []
    for part in np.array_split(probabilities, splits):
        marginal = part.mean(axis=0)
        kl = np.sum(part * (np.log(part + 1e-12) - np.log(marginal + 1e-12)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def class_coverage(probabilities: np.ndarray, unsure_below: float = 0.5) -> dict[str, Any]:
    """Share of samples per predicted class, its entropy, extremes, and the unsure share."""
    # Arg-maxes, counts and comparisons with a threshold: the same in any float precision.
    probabilities = np.asarray(probabilities)
    classes = probabilities.shape[1]
    shares = np.bincount(probabilities.argmax(axis=1), minlength=classes) / len(probabilities)
    nonzero = shares[shares > 0]
    return {
        "class_shares": [round(float(share), 5) for share in shares],
        "class_entropy": float(-(nonzero * np.log(nonzero)).sum()),
        "class_entropy_max": float(np.log(classes)),
        "smallest_class_share": float(shares.min()),
        "largest_class_share": float(shares.max()),
        "unsure_share": float(np.mean(probabilities.max(axis=1) < unsure_below)),
    }


def _squared_distances(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """||r||^2 + ||c||^2 - 2 r.c, floored at 0, in two arrays of the result's size (the
    doubling is exact, so the values are those of the expression as written)."""
    distances = np.sum(rows**2, axis=1)[:, None] + np.sum(columns**2, axis=1)[None, :]
    products = rows @ columns.T
    products *= 2
    np.subtract(distances, products, out=distances)
    return np.maximum(distances, 0.0, out=distances)


def kth_neighbour_radii(points: np.ndarray, k: int, block: int = 1000) -> np.ndarray:
    """Squared distance from each point (float64) to its k-th nearest other point: the radii
    of its manifold, which `precision_recall` takes for a real set it measures against more
    than once."""
    # Position 0 after partition is the point itself (distance 0); k is the k-th other one.
    return np.concatenate(
        [
            np.partition(_squared_distances(points[start : start + block], points), k)[:, k]
            for start in range(0, len(points), block)
        ]
    )


def _covered_share(queries: np.ndarray, manifold: np.ndarray, radii: np.ndarray, block: int):
    """Share of `queries` inside at least one ball (centre in `manifold`, squared radius)."""
    inside = 0
    for start in range(0, len(queries), block):
        distances = _squared_distances(queries[start : start + block], manifold)
        inside += int(np.any(distances <= radii[None, :], axis=1).sum())
    return inside / len(queries)


def precision_recall(
    real: np.ndarray,
    generated: np.ndarray,
    k: int = 3,
    block: int = 1000,
    real_radii: np.ndarray | None = None,
) -> tuple[float, float]:
    """Precision: share of generated points inside the real manifold (fidelity). Recall: share
    of real points inside the generated manifold (diversity). Each manifold is the union of
    balls reaching each point's k-th nearest neighbour in its own set; `real_radii`: the real
    set's `kth_neighbour_radii`, when they are known."""
    real, generated = (np.asarray(points, np.float64) for points in (real, generated))
    if real_radii is None:
        real_radii = kth_neighbour_radii(real, k, block)
    generated_radii = kth_neighbour_radii(generated, k, block)
    precision = _covered_share(generated, real, real_radii, block)
    recall = _covered_share(real, generated, generated_radii, block)
    return precision, recall
