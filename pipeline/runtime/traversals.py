"""Images across a generator's inputs, as figures show them: an InfoGAN code swept from one
end of its range to the other, every class drawn from the same noise, latent walks.

Like `pipeline.runtime.sampler`, numpy and onnxruntime only; each function takes a `Sampler`
and returns uint8 arrays, which `pipeline.runtime.sample_files` writes to files.
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import SamplerError
from pipeline.runtime import contract
from pipeline.runtime.sampler import (
    DEFAULT_BATCH_SIZE,
    MAX_GRID_IMAGES,
    Sampler,
    check_count,
    codes_text,
)
from pipeline.storage.images import to_uint8

MAX_WALK_FRAMES = 1000


def sweep(
    sampler: Sampler, code: str, rows: int, *, seed: int = 0, columns: int = 10, codes=None
) -> np.ndarray:
    """uint8 images `(rows, columns, 28, 28)`: each row one noise vector (and category,
    in turn, unless fixed), each column a value of `code`: every category, or a continuous
    code from one end of its range to the other, the other codes as drawn or fixed by
    `codes`. The figure InfoGAN is known for."""
    fixed = sampler.check_codes(codes)
    if code not in sampler.contract.code_names:
        raise SamplerError(
            f"cannot sweep {code!r}: this model's codes are {codes_text(sampler.contract)}"
            if sampler.infogan
            else f"{sampler.path} takes no codes to sweep (train.model: infogan does)"
        )
    if code in fixed:
        raise SamplerError(f"code {code} is swept: do not also fix it")
    check_count(rows, seed, DEFAULT_BATCH_SIZE)
    values = (
        np.asarray(sampler.classes, np.float64)
        if code == "category"
        else np.linspace(*contract.CONTINUOUS_CODE_RANGE, max(columns, 2))
    )
    if rows * len(values) > MAX_GRID_IMAGES:
        raise SamplerError(
            f"{rows} x {len(values)} images are too many (at most {MAX_GRID_IMAGES})"
        )
    noise, labels = sampler.with_codes(
        sampler.seeded_noise(seed, rows), sampler.labels_in_turn(rows, None), fixed
    )
    noise, labels = np.repeat(noise, len(values), axis=0), np.repeat(labels, len(values))
    for column, value in enumerate(values):
        swept = {code: int(value) if code == "category" else float(value)}
        part = slice(column, None, len(values))
        noise[part], labels[part] = sampler.with_codes(noise[part], labels[part], swept)
    images = to_uint8(sampler.generate(noise, labels))[..., 0]
    return images.reshape(rows, len(values), *contract.IMAGE_SHAPE[:2])


def each_class(sampler: Sampler, per_class: int, *, seed: int = 0) -> np.ndarray:
    """uint8 images `(classes * per_class, 28, 28)`: `per_class` of the first class, then
    of the next... Image j of every class has the same noise, so a grid with `per_class`
    columns shows each noise vector (a writing style) as every digit."""
    sampler.require_conditional()
    check_count(per_class, seed, DEFAULT_BATCH_SIZE)
    if per_class * len(sampler.classes) > MAX_GRID_IMAGES:
        raise SamplerError(
            f"{per_class} images of each of {len(sampler.classes)} classes are too many "
            f"(at most {MAX_GRID_IMAGES // len(sampler.classes)} each)"
        )
    noise = np.tile(sampler.seeded_noise(seed, per_class), (len(sampler.classes), 1))
    labels = np.repeat(np.asarray(sampler.classes, np.int64), per_class)
    return to_uint8(sampler.generate(noise, labels))[..., 0]


def walk(
    sampler: Sampler,
    n: int,
    *,
    seed: int = 0,
    points: int = 4,
    steps: int = 12,
    label: int | None = None,
) -> np.ndarray:
    """`n` latent walks side by side: uint8 frames `(points * steps, n, 28, 28)`.

    Each walk visits `points` random noise vectors and returns to the first, `steps` frames
    from one to the next, along great circles (spherical interpolation keeps the noise at
    the norms the generator was trained on; for uniform noise each frame is clipped to the
    noise range). Frame `k * steps` is exactly the image of point k. A conditional model
    also morphs between digits: walk i visits the classes i, i + 1, ... in turn (or stays
    at `label`), the class weights going linearly from one to the next.
    """
    check_count(n, seed, DEFAULT_BATCH_SIZE)
    if points < 2 or steps < 1:
        raise SamplerError(f"a walk needs at least 2 points and 1 step, got {points}, {steps}")
    if points * steps > MAX_WALK_FRAMES:
        raise SamplerError(
            f"{points} points x {steps} steps = {points * steps} frames; at most {MAX_WALK_FRAMES}"
        )
    label = sampler.checked_label(label)
    stops = sampler.seeded_noise(seed, points * n).reshape(points, n, -1)
    weights = _class_weights(sampler, n, points, label)  # (points, n, classes) or None
    noise, mixes = [], []
    for k in range(points):
        for t in np.arange(steps) / steps:
            noise.append(slerp(stops[k], stops[(k + 1) % points], t))
            if weights is not None:
                mixes.append((1 - t) * weights[k] + t * weights[(k + 1) % points])
    noise = np.concatenate(noise).astype(np.float32)
    spec = sampler.contract.noise
    if spec.distribution == "uniform":
        noise = np.clip(noise, spec.low, spec.high)
    mixes = np.concatenate(mixes) if mixes else None
    # Every frame's memory at once: a walk too large for memory fails before any work.
    frames = np.empty((len(noise), *contract.IMAGE_SHAPE[:2]), np.uint8)
    for i in range(0, len(noise), DEFAULT_BATCH_SIZE):
        batch = noise[i : i + DEFAULT_BATCH_SIZE]
        if mixes is None:
            images = sampler.generate(batch)
        else:  # label_mix rows, which the labels 0, 1, ... pick one per image
            mix = mixes[i : i + DEFAULT_BATCH_SIZE]
            images = sampler.generate(batch, np.arange(len(batch)), label_mix=mix)
        frames[i : i + len(batch)] = to_uint8(images)[..., 0]
    return frames.reshape(points * steps, n, *contract.IMAGE_SHAPE[:2])


def _class_weights(sampler: Sampler, n: int, points: int, label: int | None) -> np.ndarray | None:
    """One-hot class weights `(points, n, classes)` of each walk's points (walk i at point
    k: class i + k, or `label`); None for an unconditional model."""
    if not sampler.conditional:
        return None
    classes = len(sampler.classes)
    if label is not None:
        index = np.full((points, n), sampler.classes.index(label))
    else:
        index = (np.arange(points)[:, None] + np.arange(n)[None, :]) % classes
    return np.eye(classes)[index]


def slerp(start: np.ndarray, end: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between rows of `start` and `end` (linear where they are
    parallel), exact at t = 0 and t = 1."""
    start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
    norms = np.linalg.norm(start, axis=-1, keepdims=True) * np.linalg.norm(
        end, axis=-1, keepdims=True
    )
    cosine = np.sum(start * end, axis=-1, keepdims=True) / np.maximum(norms, 1e-12)
    angle = np.arccos(np.clip(cosine, -1.0, 1.0))
    sine = np.sin(angle)
    parallel = sine < 1e-6
    safe = np.where(parallel, 1.0, sine)
    a = np.where(parallel, 1.0 - t, np.sin((1.0 - t) * angle) / safe)
    b = np.where(parallel, t, np.sin(t * angle) / safe)
    return a * start + b * end
