"""Image grids and GIFs from generator output.

numpy only at import time, so the light sampler can use it; Pillow is imported by the functions
that read or write image files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.storage.files import write_atomically


def from_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 `(N, 28, 28)` -> float32 `(N, 28, 28, 1)` in [-1, 1], as the generator draws them
    (and every network here reads them)."""
    return (images.astype(np.float32) / 127.5 - 1.0)[..., np.newaxis]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1] -> uint8 in [0, 255], rounding to nearest."""
    scaled = (np.clip(images, -1.0, 1.0) + 1.0) * 127.5
    return np.rint(scaled).astype(np.uint8)


def make_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """uint8 `(N, H, W)` or `(N, H, W, 1)` -> one `(rows*(H+p)+p, cols*(W+p)+p)` uint8 image."""
    images = images.reshape(images.shape[:3])
    count, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.zeros(
        (rows * (height + padding) + padding, columns * (width + padding) + padding), np.uint8
    )
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def paired_grid(above: np.ndarray, below: np.ndarray, columns: int) -> np.ndarray:
    """One uint8 grid of two aligned sets of images in [-1, 1] `(N, 28, 28, 1)`: rows of
    `columns` of `above`, each over the row of their partners in `below` (an image and its
    reconstruction, a generated digit and its nearest training digit)."""
    rows = []
    for start in range(0, len(above), columns):
        part = slice(start, start + columns)
        pad = columns - len(above[part])
        for images in (above[part], below[part]):
            padded = np.concatenate([images, np.full((pad, *images.shape[1:]), -1.0, np.float32)])
            rows.append(padded)
    return make_grid(to_uint8(np.concatenate(rows))[..., 0], columns)


def save_png(grid: np.ndarray, path: Path, scale: int = 2) -> None:
    """Write a grey image atomically (temporary file + rename), enlarged `scale` times."""
    write_atomically(path, lambda handle: _grey_image(grid, scale).save(handle, format="PNG"))


def png_bytes(grid: np.ndarray, scale: int = 1) -> bytes:
    """A grey image as the bytes of a PNG file, enlarged `scale` times."""
    buffer = io.BytesIO()
    _grey_image(grid, scale).save(buffer, format="PNG")
    return buffer.getvalue()


def _grey_image(grid: np.ndarray, scale: int):
    from PIL import Image

    image = Image.fromarray(grid)
    if scale > 1:
        image = image.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    return image


def load_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def save_gif(frames: Sequence[np.ndarray], path: Path, scale: int = 2, ms_per_frame: int = 200):
    """Write an animated GIF of grey frames atomically; the last frame is held longer."""
    from PIL import Image

    images = [
        Image.fromarray(frame).resize(
            (frame.shape[1] * scale, frame.shape[0] * scale), Image.NEAREST
        )
        for frame in frames
    ]
    durations = [ms_per_frame] * (len(images) - 1) + [ms_per_frame * 10]
    write_atomically(
        path,
        lambda handle: images[0].save(
            handle,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,
        ),
    )


def save_labelled_grid(
    images: np.ndarray, labels: Sequence[int], path: Path, columns: int, scale: int = 3
) -> None:
    """A grid of uint8 images, each with its label (e.g. the predicted digit) in a corner."""
    from PIL import Image, ImageDraw

    padding = 2
    grid = make_grid(images, columns, padding)
    image = Image.fromarray(grid).convert("RGB")
    image = image.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(image)
    cell = (images.shape[1] + padding) * scale
    for index, label in enumerate(labels):
        top = padding * scale + (index // columns) * cell
        left = padding * scale + (index % columns) * cell
        draw.text((left + 2, top + 1), str(int(label)), fill=(255, 80, 80))
    write_atomically(path, lambda handle: image.save(handle, format="PNG"))
