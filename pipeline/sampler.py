"""Draw digits from the exported ONNX generator with onnxruntime and numpy alone.

This is the module apps embed: it imports neither TensorFlow nor click, and reads everything it
needs (noise size and distribution) from the model file itself:

    from pipeline.sampler import Sampler
    images = Sampler("models/generator.onnx").sample(16, seed=0)  # uint8 (16, 28, 28)

Memory stays bounded whatever `n` is: noise and images are made one batch at a time, and `.npy`
files are written batch by batch.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.errors import SamplerError
from pipeline.files import write_path_atomically
from pipeline.images import make_grid, save_gif, save_png, to_uint8

IMAGE_SIZE = 28
DEFAULT_BATCH_SIZE = 256
MAX_GRID_IMAGES = 4096
MAX_WALK_FRAMES = 1000
NOISE_DISTRIBUTIONS = ("uniform", "normal")


class Sampler:
    """An onnxruntime session on a generator: noise `z` `(N, noise_dim)` -> images `(N, 28, 28, 1)`
    in [-1, 1]."""

    def __init__(
        self, model_path: str | os.PathLike, *, threads: int = 0, quick_start: bool = False
    ):
        """`quick_start` skips onnxruntime's packing of the weights for its matrix kernels: the
        session opens about 60 ms sooner (half its time), batches of 64 or more then run up to
        15% slower. Worth it for a one-shot call of a few thousand images or fewer."""
        path = Path(model_path)
        if not path.is_file():
            raise SamplerError(f"{path}: no such model file")
        try:
            data = path.read_bytes()
        except OSError as error:
            raise SamplerError(f"{path}: cannot read ({error.strerror or error})") from error
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only: no warnings on stderr for callers
        if quick_start:
            options.add_session_config_entry("session.disable_prepacking", "1")
        try:
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own, unexported exception types
            reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(error).strip())
            reason = reason.splitlines()[0][:200] if reason else type(error).__name__
            raise SamplerError(f"{path}: not a usable ONNX model ({reason})") from error
        self.path = path
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.input_name, self.noise_dim = self._check_input()
        self.output_name = self._check_output()
        self.distribution, self.low, self.high = self._noise_spec()

    def _check_input(self) -> tuple[str, int]:
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise SamplerError(f"{self.path}: not a generator: expected one input, got {names}")
        noise = inputs[0]
        if noise.type != "tensor(float)" or len(noise.shape) != 2:
            raise SamplerError(
                f"{self.path}: not a generator: input {noise.name!r} should be float32 "
                f"(N, noise_dim), got {noise.type} of shape {_shape_text(noise.shape)}"
            )
        declared = self.metadata.get("noise_dim")
        dim = noise.shape[1]
        if isinstance(dim, int):
            return noise.name, dim
        if declared and declared.isdigit():
            return noise.name, int(declared)
        raise SamplerError(f"{self.path}: the noise dimension is neither fixed nor in the metadata")

    def _check_output(self) -> str:
        outputs = self.session.get_outputs()
        image = outputs[0]
        known = image.shape[1:]
        if len(image.shape) != 4 or any(
            isinstance(size, int) and size != expected
            for size, expected in zip(known, (IMAGE_SIZE, IMAGE_SIZE, 1), strict=True)
        ):
            raise SamplerError(
                f"{self.path}: not a generator: output {image.name!r} should be (N, 28, 28, 1), "
                f"got {_shape_text(image.shape)}"
            )
        return image.name

    def _noise_spec(self) -> tuple[str, float, float]:
        distribution = self.metadata.get("noise_distribution", "uniform")
        if distribution not in NOISE_DISTRIBUTIONS:
            raise SamplerError(f"{self.path}: unknown noise distribution {distribution!r}")
        try:
            low = float(self.metadata.get("noise_low", -1.0))
            high = float(self.metadata.get("noise_high", 1.0))
        except ValueError as error:
            raise SamplerError(f"{self.path}: unreadable noise range in the metadata") from error
        return distribution, low, high

    def noise(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """`count` noise vectors as the model was trained on (normal: mean 0, std 1)."""
        if self.distribution == "normal":
            return rng.standard_normal((count, self.noise_dim), dtype=np.float32)
        return rng.uniform(self.low, self.high, (count, self.noise_dim)).astype(np.float32)

    def generate(self, noise: np.ndarray) -> np.ndarray:
        """Raw generator output for the given noise: float32 `(N, 28, 28, 1)` in [-1, 1]."""
        return self.session.run([self.output_name], {self.input_name: noise})[0]

    def batches(
        self, n: int, *, seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[np.ndarray]:
        """uint8 images `(b, 28, 28)` in batches of at most `batch_size`, `n` in all.

        The noise is one stream from `seed`, so the images do not depend on `batch_size`
        beyond onnxruntime's float rounding, and the same arguments give the same bytes.
        """
        _check_count(n, seed, batch_size)
        rng = np.random.default_rng(seed)
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            yield to_uint8(self.generate(self.noise(rng, count)))[..., 0]

    def sample(self, n: int, *, seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """`n` uint8 images `(n, 28, 28)` in memory (use `batches` or `save_npy` for very many)."""
        return np.concatenate(list(self.batches(n, seed=seed, batch_size=batch_size)))

    def save_npy(
        self, path: Path, n: int, *, seed: int = 0, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        """Write `n` images `(n, 28, 28)` uint8 to a `.npy`, a batch at a time, atomically."""
        path = Path(path)
        _check_count(n, seed, batch_size)

        def write(temporary: Path) -> None:
            array = np.lib.format.open_memmap(
                temporary, mode="w+", dtype=np.uint8, shape=(n, IMAGE_SIZE, IMAGE_SIZE)
            )
            start = 0
            for batch in self.batches(n, seed=seed, batch_size=batch_size):
                array[start : start + len(batch)] = batch
                start += len(batch)
            array.flush()

        write_path_atomically(path, write)

    def save_grid(self, path: Path, n: int, *, seed: int = 0, columns: int | None = None) -> None:
        """Write `n` images as one PNG grid."""
        if n > MAX_GRID_IMAGES:
            raise SamplerError(
                f"{n} images are too many for one PNG grid (at most {MAX_GRID_IMAGES}); "
                "write a .npy instead"
            )
        save_png(make_grid(self.sample(n, seed=seed), columns), Path(path))

    def walk(self, n: int, *, seed: int = 0, points: int = 4, steps: int = 12) -> np.ndarray:
        """`n` latent walks side by side: uint8 frames `(points * steps, n, 28, 28)`.

        Each walk visits `points` random noise vectors and returns to the first, `steps` frames
        from one to the next, along great circles (spherical interpolation keeps the noise at
        the norms the generator was trained on; for uniform noise each frame is clipped to the
        noise range). Frame `k * steps` is exactly the image of point k.
        """
        _check_count(n, seed, DEFAULT_BATCH_SIZE)
        if points < 2 or steps < 1:
            raise SamplerError(f"a walk needs at least 2 points and 1 step, got {points}, {steps}")
        if points * steps > MAX_WALK_FRAMES:
            raise SamplerError(
                f"{points} points x {steps} steps = {points * steps} frames; at most "
                f"{MAX_WALK_FRAMES}"
            )
        stops = self.noise(np.random.default_rng(seed), points * n).reshape(points, n, -1)
        noise = []
        for start, end in zip(stops, np.roll(stops, -1, axis=0), strict=True):
            for t in np.arange(steps) / steps:
                noise.append(slerp(start, end, t))
        noise = np.concatenate(noise).astype(np.float32)
        if self.distribution == "uniform":
            noise = np.clip(noise, self.low, self.high)
        frames = [
            to_uint8(self.generate(noise[i : i + DEFAULT_BATCH_SIZE]))[..., 0]
            for i in range(0, len(noise), DEFAULT_BATCH_SIZE)
        ]
        return np.concatenate(frames).reshape(points * steps, n, IMAGE_SIZE, IMAGE_SIZE)

    def save_walk(self, path: Path, n: int, *, seed: int = 0, points: int = 4, steps: int = 12):
        """Write `walk` as an animated GIF, each frame a grid of the `n` walks."""
        if n > MAX_GRID_IMAGES:
            raise SamplerError(f"{n} walks are too many for one GIF (at most {MAX_GRID_IMAGES})")
        frames = self.walk(n, seed=seed, points=points, steps=steps)
        save_gif([make_grid(frame) for frame in frames], Path(path), scale=2, ms_per_frame=80)


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


def _check_count(n: int, seed: int, batch_size: int) -> None:
    if n <= 0:
        raise SamplerError(f"the number of images must be positive, got {n}")
    if seed < 0:
        raise SamplerError(f"the seed must be >= 0, got {seed}")
    if batch_size <= 0:
        raise SamplerError(f"the batch size must be positive, got {batch_size}")


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(size) for size in shape) + ")"
