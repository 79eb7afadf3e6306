"""A `Sampler`'s images written to files: a PNG grid, a `.npy` array, a GIF of latent walks.

Each writer asks the sampler for its arrays first (so bad arguments fail before any file is
touched), then writes atomically: a failed or interrupted call leaves the previous file as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import SamplerError
from pipeline.runtime import traversals
from pipeline.runtime.contract import IMAGE_SHAPE
from pipeline.runtime.sampler import DEFAULT_BATCH_SIZE, MAX_GRID_IMAGES, Sampler
from pipeline.storage.files import require_free_space, write_atomically
from pipeline.storage.images import make_grid, save_gif, save_png

SWEEP_FRAMES = 16  # values of a continuous code in a sweep's GIF, one way


def save_npy(
    sampler: Sampler,
    path: Path,
    n: int,
    *,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    label: int | None = None,
    codes: dict[str, object] | None = None,
) -> None:
    """Write `n` images `(n, 28, 28)` uint8 to a `.npy`, a batch at a time: memory stays
    bounded. The folder's free space is checked first; the file is written with plain writes,
    not a memory map, so a disk that fills anyway is an error, not a SIGBUS."""
    batches = sampler.batches(n, seed=seed, batch_size=batch_size, label=label, codes=codes)
    shape = (n, *IMAGE_SHAPE[:2])
    require_free_space(Path(path).parent, n * IMAGE_SHAPE[0] * IMAGE_SHAPE[1], Path(path))

    def write(handle) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "shape": shape}
        np.lib.format.write_array_header_1_0(handle, {**header, "fortran_order": False})
        for batch in batches:
            handle.write(np.ascontiguousarray(batch, np.uint8).tobytes())

    write_atomically(Path(path), write)


def save_grid(
    sampler: Sampler,
    path: Path,
    n: int,
    *,
    seed: int = 0,
    columns: int | None = None,
    label: int | None = None,
    codes: dict[str, object] | None = None,
) -> None:
    """Write `n` images as one PNG grid."""
    if n > MAX_GRID_IMAGES:
        raise SamplerError(
            f"{n} images are too many for one PNG grid (at most {MAX_GRID_IMAGES}); "
            "write a .npy instead"
        )
    images = sampler.sample(n, seed=seed, label=label, codes=codes)
    save_png(make_grid(images, columns), Path(path))


def save_each_class(sampler: Sampler, path: Path, per_class: int, *, seed: int = 0) -> None:
    """Write `traversals.each_class` as a PNG grid, one row per class, or as a `.npy`."""
    path = Path(path)
    images = traversals.each_class(sampler, per_class, seed=seed)
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
    """Write `traversals.walk` as an animated GIF, each frame a grid of the `n` walks."""
    if n > MAX_GRID_IMAGES:
        raise SamplerError(f"{n} walks are too many for one GIF (at most {MAX_GRID_IMAGES})")
    frames = traversals.walk(sampler, n, seed=seed, points=points, steps=steps, label=label)
    save_gif([make_grid(frame) for frame in frames], Path(path), scale=2, ms_per_frame=80)


def save_sweep(
    sampler: Sampler,
    path: Path,
    code: str,
    rows: int,
    *,
    seed: int = 0,
    codes: dict[str, object] | None = None,
) -> None:
    """Write `traversals.sweep` of an InfoGAN `code`: a PNG grid (one row per noise vector, one
    column per value), or for a `.gif` an animation of the `rows` images as the code goes from
    one end to the other and back."""
    path = Path(path)
    if path.suffix.lower() != ".gif":
        images = traversals.sweep(sampler, code, rows, seed=seed, codes=codes)
        save_png(make_grid(images.reshape(-1, *IMAGE_SHAPE[:2]), images.shape[1]), path)
        return
    images = traversals.sweep(sampler, code, rows, seed=seed, columns=SWEEP_FRAMES, codes=codes)
    frames = [make_grid(images[:, k]) for k in range(images.shape[1])]
    save_gif(frames + frames[-2:0:-1], path, scale=2, ms_per_frame=80)
