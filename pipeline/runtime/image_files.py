"""Images people and apps hand to the exported models, read into the models' input: 28x28
grey PNGs, `.npy` arrays and IDX files, each checked before anything is allocated for it.

Like the rest of `pipeline.runtime`: numpy only at import time, Pillow inside the PNG reader.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pipeline.errors import DataFormatError, ImageInputError
from pipeline.runtime.contract import IMAGE_SHAPE
from pipeline.storage.idx import parse_idx
from pipeline.storage.images import from_uint8

IDX_SUFFIXES = (".idx", "-ubyte", ".idx3")  # MNIST's own names end in idx3-ubyte


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY"


def read_images(paths: list[Path]) -> tuple[list[str], np.ndarray]:
    """Names and the models' input, float32 `(N, 28, 28, 1)` in [-1, 1], for 28x28 grey PNGs
    (colour is made grey), `.npy` arrays (uint8 `(28, 28)` or `(N, 28, 28)`, or float
    `(N, 28, 28[, 1])` in [-1, 1]) and IDX image files (uint8 `(N, 28, 28)`, as MNIST's). An
    array's images are named `file.npy[i]`."""
    names: list[str] = []
    batches: list[np.ndarray] = []
    for path in map(Path, paths):
        if path.suffix.lower() == ".npy":
            images = _read_array(path, str(path))
        elif path.name.lower().endswith(IDX_SUFFIXES):
            images = _read_idx(path)
        else:
            images = _read_png(path, str(path))
            names.append(str(path))
            batches.append(images)
            continue
        names += [f"{path}[{i}]" for i in range(len(_some(images, str(path))))]
        batches.append(images)
    if not batches:
        raise ImageInputError("no images given")
    return names, np.concatenate(batches)


def decode_images(data: bytes, name: str) -> np.ndarray:
    """The models' input from the bytes of one PNG or `.npy` file (an HTTP request's body),
    told apart by their first bytes; `name` is what messages call it."""
    if data.startswith(PNG_MAGIC):
        return _read_png(io.BytesIO(data), name)
    if data.startswith(NPY_MAGIC):
        return _some(_read_array(io.BytesIO(data), name), name)
    raise ImageInputError(f"{name}: not a PNG or .npy file")


def _some(images: np.ndarray, name: str) -> np.ndarray:
    """An array or IDX file of no images is refused where it is read: every command and the
    API would otherwise answer an empty request with nothing, or fail deep inside a model."""
    if not len(images):
        raise ImageInputError(f"{name}: holds no images")
    return images


def _read_png(source: Path | BinaryIO, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            # the header's size, checked before a pixel is decoded: a small file may claim a
            # huge image
            if image.size != IMAGE_SHAPE[1::-1]:
                width, height = image.size
                raise ImageInputError(
                    f"{name}: the image is {width}x{height} pixels, expected 28x28"
                )
            pixels = np.asarray(image.convert("L"))
    except FileNotFoundError:
        raise ImageInputError(f"{name}: no such file") from None
    except Image.DecompressionBombError:
        raise ImageInputError(f"{name}: the image claims far more pixels than 28x28") from None
    except (OSError, UnidentifiedImageError) as error:
        raise ImageInputError(f"{name}: not a readable PNG, .npy or IDX file ({error})") from None
    return from_uint8(pixels[np.newaxis])


def _read_idx(path: Path) -> np.ndarray:
    try:
        array = parse_idx(path.read_bytes(), str(path))
    except FileNotFoundError:
        raise ImageInputError(f"{path}: no such file") from None
    except OSError as error:
        raise ImageInputError(f"{path}: unreadable ({error.strerror or error})") from None
    except DataFormatError as error:
        raise ImageInputError(str(error)) from None
    if array.ndim != 3 or array.shape[1:] != IMAGE_SHAPE[:2]:
        raise ImageInputError(f"{path}: IDX array of shape {array.shape}, expected (N, 28, 28)")
    return from_uint8(array)


def _check_npy_header(handle: BinaryIO, name: str) -> None:
    """Read a `.npy` header and check, before anything is allocated for it, that its data is
    numbers and fills the rest of the file exactly: a small file cannot claim 10^9 images.
    Leaves `handle` where the header was."""
    start = handle.tell()
    version = np.lib.format.read_magic(handle)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, dtype = read_header(handle)
    if dtype.hasobject or dtype.kind not in "uif":
        raise ImageInputError(f"{name}: {dtype} array, expected uint8 pixels or floats in [-1, 1]")
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    data_start = handle.tell()
    available = handle.seek(0, io.SEEK_END) - data_start
    if claimed != available:
        raise ImageInputError(
            f"{name}: the header claims shape {shape} ({claimed:,} bytes), the file holds "
            f"{available:,}"
        )
    handle.seek(start)


def _read_array(source: Path | BinaryIO, name: str) -> np.ndarray:
    try:
        with source.open("rb") if isinstance(source, Path) else contextlib.nullcontext(source) as f:
            _check_npy_header(f, name)
            array = np.lib.format.read_array(f, allow_pickle=False)
    except FileNotFoundError:
        raise ImageInputError(f"{name}: no such file") from None
    except (OSError, ValueError, EOFError) as error:
        raise ImageInputError(f"{name}: not a readable .npy array ({error})") from None
    if array.dtype == np.uint8:
        if array.shape == IMAGE_SHAPE[:2]:
            array = array[np.newaxis]
        if array.ndim != 3 or array.shape[1:] != IMAGE_SHAPE[:2]:
            raise ImageInputError(
                f"{name}: uint8 array of shape {array.shape}, expected (N, 28, 28)"
            )
        return from_uint8(array)
    if array.dtype.kind != "f":
        raise ImageInputError(
            f"{name}: {array.dtype} array, expected uint8 pixels or floats in [-1, 1]"
        )
    if array.ndim == 3:
        array = array[..., np.newaxis]
    if array.ndim != 4 or array.shape[1:] != IMAGE_SHAPE:
        raise ImageInputError(
            f"{name}: float array of shape {array.shape}, expected (N, 28, 28, 1)"
        )
    if not np.all(np.isfinite(array)) or array.min(initial=0) < -1 or array.max(initial=0) > 1:
        raise ImageInputError(f"{name}: float pixels must be finite and in [-1, 1]")
    return array.astype(np.float32)
