"""What an InfoGAN model's codes control, measured, so "controls slant" is a number, not a claim.

- The categorical code as a clusterer: images drawn for each code value, the classifier's
  predicted digit for each, and the one-to-one matching of code values to digits that
  explains the most images (the Hungarian criterion, solved exactly by dynamic programming
  over sets of digits: 10 digits are 1,024 sets). Its accuracy is the share of images whose
  predicted digit is their code's matched digit.
- Each continuous code swept from one end of its range to the other with everything else
  fixed, on many noise vectors: the Spearman correlation between the code's value and a
  property measured on the image (slant, width, ink from the image moments), one per sweep,
  averaged over the sweeps. The property with the largest |mean| is what the code controls.

numpy only, shared by the train stage (on the Keras generator, for the model's metadata) and
the evaluate stage (on the ONNX file, for the metrics).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.runtime.contract import CLASSES, CONTINUOUS_CODE_RANGE
from pipeline.runtime.noise import TRAINING_NOISE


def image_properties(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per uint8 image `(N, 28, 28)`, from the moments of its ink (pixel / 255):
    `slant`, the horizontal shift of the ink per pixel upward (-mu11 / mu02: positive leans
    right, as in "/"); `width`, the ink's horizontal standard deviation in pixels; `ink`, the
    total ink in pixels (thicker or larger strokes). A blank image measures 0 throughout."""
    weights = np.asarray(images) / 255.0
    rows, columns = np.mgrid[0 : weights.shape[1], 0 : weights.shape[2]]
    mass = weights.sum(axis=(1, 2))
    x = _ratio((weights * columns).sum(axis=(1, 2)), mass)
    y = _ratio((weights * rows).sum(axis=(1, 2)), mass)
    dx = columns[None] - x[:, None, None]
    dy = rows[None] - y[:, None, None]
    mu20 = _ratio((weights * dx * dx).sum(axis=(1, 2)), mass)
    mu02 = _ratio((weights * dy * dy).sum(axis=(1, 2)), mass)
    mu11 = _ratio((weights * dx * dy).sum(axis=(1, 2)), mass)
    slant = _ratio(-mu11, mu02)
    return {"slant": slant, "width": np.sqrt(mu20), "ink": mass}


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (a blank image, a constant row)."""
    return np.divide(
        numerator, denominator, out=np.zeros(np.shape(numerator)), where=denominator > 0
    )


def ranks(values: np.ndarray) -> np.ndarray:
    """float64 ranks 1..n along the last axis, ties sharing their mean rank."""
    values = np.asarray(values)
    ranked = np.empty(values.shape)
    np.put_along_axis(ranked, np.argsort(values), np.arange(1, values.shape[-1] + 1), -1)
    for index in np.ndindex(values.shape[:-1]):
        _, inverse, counts = np.unique(values[index], return_inverse=True, return_counts=True)
        ranked[index] = (np.bincount(inverse, weights=ranked[index]) / counts)[inverse]
    return ranked


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's correlation of each row of `x` with the same row of `y` (the Pearson
    correlation of their ranks); 0 where either row is constant."""
    centre = (np.shape(x)[-1] + 1) / 2  # the mean rank of every row, ties or not
    a, b = ranks(x) - centre, ranks(y) - centre
    scale = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    return _ratio((a * b).sum(axis=-1), scale)


def best_matching(counts: np.ndarray) -> list[int | None]:
    """For a table `counts[code, digit]`, the digit of each code (None for a code left out
    when there are more codes than digits) in the one-to-one matching with the largest total
    count. Exact: the best total for the first i codes and each set of used digits."""
    codes, digits = counts.shape
    best = {0: (0.0, [])}  # set of used digits (bits) -> (total, digits of the codes so far)
    for code in range(codes):
        following: dict[int, tuple[float, list]] = {}
        for used, (total, chosen) in best.items():
            # A code goes without a digit only when there are more codes than digits.
            options = [(used, total, None)] if codes > digits else []
            options += [
                (used | 1 << d, total + counts[code, d], d)
                for d in range(digits)
                if not used >> d & 1
            ]
            for key, value, digit in options:
                if key not in following or value > following[key][0]:
                    following[key] = (value, [*chosen, digit])
        best = following
    return max(best.values(), key=lambda entry: entry[0])[1]


Draw = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (latent, codes) -> uint8 images


def measure_codes(
    draw: Draw,
    classify: Callable[[np.ndarray], np.ndarray],
    *,
    noise_dim: int,
    categorical: int,
    continuous: int,
    seed: int = 0,
    per_code: int = 500,
    sweeps: int = 200,
    values: int = 9,
) -> dict[str, Any]:
    """The categorical code's matching and accuracy, and each continuous code's correlations.

    `draw` maps latent rows (the noise, then the continuous codes) and categorical codes to
    uint8 images; `classify` maps images to predicted digits. Latent rows are the contract's
    seeded noise of `seed`, so the train and evaluate stages measure on the same inputs.
    """
    width = noise_dim + continuous
    latent = TRAINING_NOISE.seeded(seed, per_code * categorical, width)
    code_of = np.repeat(np.arange(categorical), per_code)
    predicted = np.asarray(classify(draw(latent, code_of)))
    counts = np.bincount(code_of * CLASSES + predicted, minlength=categorical * CLASSES)
    counts = counts.reshape(categorical, CLASSES)
    digits = best_matching(counts)
    matched = sum(counts[c, d] for c, d in enumerate(digits) if d is not None)
    result: dict[str, Any] = {
        "categorical": {
            "accuracy": round(float(matched / counts.sum()), 4),
            "digit_of_code": digits,
            "images_per_code": per_code,
        },
        "continuous": [],
    }
    sweep = np.linspace(*CONTINUOUS_CODE_RANGE, values)
    base = TRAINING_NOISE.seeded(seed, sweeps, width, first_row=per_code * categorical)
    base_codes = np.arange(sweeps) % categorical
    for k in range(continuous):
        rows = np.repeat(base, values, axis=0)
        rows[:, noise_dim + k] = np.tile(sweep, sweeps)
        images = draw(rows.astype(np.float32), np.repeat(base_codes, values))
        measured = image_properties(images)
        correlations = {
            name: round(
                float(spearman(np.tile(sweep, (sweeps, 1)), value.reshape(sweeps, values)).mean()),
                4,
            )
            for name, value in measured.items()
        }
        controls = max(correlations, key=lambda name: abs(correlations[name]))
        result["continuous"].append(
            {"code": f"c{k + 1}", "spearman": correlations, "controls": controls, "sweeps": sweeps}
        )
    return result


def meanings(measured: dict[str, Any]) -> str:
    """The metadata's `code_meanings`: each code's measured role, as compact JSON."""
    summary: dict[str, Any] = {
        "category": {
            "digit_of_code": measured["categorical"]["digit_of_code"],
            "accuracy": measured["categorical"]["accuracy"],
        }
    }
    for code in measured["continuous"]:
        controls = code["controls"]
        summary[code["code"]] = {"controls": controls, "spearman": code["spearman"][controls]}
    return json.dumps(summary, separators=(",", ":"))
