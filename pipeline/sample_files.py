"""A `Sampler`'s images written to files: a PNG grid, a `.npy` array, a GIF of latent walks.

Each writer asks the sampler for its arrays first (so bad arguments fail before any file is
touched), then writes atomically: a failed or interrupted call leaves the previous file as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.contract import IMAGE_SHAPE
from pipeline.errors import SamplerError
from pipeline.files import write_atomically, write_path_atomically
from pipeline.images import make_grid, save_gif, save_png
from pipeline.sampler import DEFAULT_BATCH_SIZE, MAX_GRID_IMAGES, Sampler


def save_npy(
    sampler: Sampler,
    path: Path,
    n: int,
    *,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    label: int | None = None,
) -> None:
    """Write `n` images `(n, 28, 28)` uint8 to a `.npy`, a batch at a time: memory stays bounded."""
    batches = sampler.batches(n, seed=seed, batch_size=batch_size, label=label)

    def write(temporary: Path) -> None:
        array = np.lib.format.open_memmap(
            temporary, mode="w+", dtype=np.uint8, shape=(n, *IMAGE_SHAPE[:2])
        )
        start = 0
        for batch in batches:
            array[start : start + len(batch)] = batch
            start += len(batch)
        array.flush()

    write_path_atomically(Path(path), write)


def save_grid(
    sampler: Sampler,
    path: Path,
    n: int,
    *,
    seed: int = 0,
    columns: int | None = None,
    label: int | None = None,
) -> None:
    """Write `n` images as one PNG grid."""
    if n > MAX_GRID_IMAGES:
        raise SamplerError(
            f"{n} images are too many for one PNG grid (at most {MAX_GRID_IMAGES}); "
            "write a .npy instead"
        )
    save_png(make_grid(sampler.sample(n, seed=seed, label=label), columns), Path(path))


def save_each_class(sampler: Sampler, path: Path, per_class: int, *, seed: int = 0) -> None:
    """Write `Sampler.sample_each_class` as a PNG grid, one row per class, or as a `.npy`."""
    path = Path(path)
    images = sampler.sample_each_class(per_class, seed=seed)
    if path.suffix.lower() == ".npy":
        write_atomically(path, lambda handle: np.save(handle, images, allow_pickle=False))
    else:
        save_png(make_grid(images, columns=per_class), path)


def save_walk(
    sampler: Sampler,
    path: Path,
    n: int,
    *,
    seed: int = 0,
    points: int = 4,
    steps: int = 12,
    label: int | None = None,
) -> None:
    """Write `Sampler.walk` as an animated GIF, each frame a grid of the `n` walks."""
    if n > MAX_GRID_IMAGES:
        raise SamplerError(f"{n} walks are too many for one GIF (at most {MAX_GRID_IMAGES})")
    frames = sampler.walk(n, seed=seed, points=points, steps=steps, label=label)
    save_gif([make_grid(frame) for frame in frames], Path(path), scale=2, ms_per_frame=80)
