"""Reader for the IDX format of MNIST-style datasets (only the unsigned-byte type is used there).

Layout: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then one big-endian
uint32 per dimension, then the data in C order. MNIST images are magic 2051 (3 dims), labels 2049
(1 dim).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from pipeline.errors import DataFormatError

UBYTE_TYPE = 0x08


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Validate the header against the length of `data` and return a read-only uint8 array."""
    if len(data) < 4:
        raise DataFormatError(f"{name}: not an IDX file ({len(data)} bytes, shorter than a header)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise DataFormatError(f"{name}: not an IDX file (magic number {data[:4].hex()})")
    if type_code != UBYTE_TYPE:
        raise DataFormatError(
            f"{name}: IDX element type 0x{type_code:02x} is not unsigned byte (0x08)"
        )
    if ndim == 0:
        raise DataFormatError(f"{name}: IDX header declares zero dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataFormatError(f"{name}: truncated IDX header ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected = header_size + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataFormatError(
            f"{name}: {problem}: header says {'x'.join(map(str, shape))} "
            f"({expected} bytes) but the file has {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    """Read an uncompressed IDX file; every format problem raises `DataFormatError` naming it."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataFormatError(f"{path}: cannot read ({error.strerror or error})") from error
    return parse_idx(data, str(path))
