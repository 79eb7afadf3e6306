"""A generator made elsewhere, measured as this project's are (docs/EVALUATION.md, "Bring
your own generator").

The minimal contract: one float32 input of noise `(N, D)`, one output of N images of 28 x 28
pixels in any layout (`(N, 28, 28, 1)`, `(N, 1, 28, 28)`, `(N, 28, 28)` or `(N, 784)`) whose
values span a stated range. What the model does not say, the user states (`Stated`): how the
noise is drawn, its width when the input leaves it open, the range of the output.
onnxruntime and numpy only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import SamplerError
from pipeline.runtime.contract import MAX_NOISE_DIM, MODEL_KIND, kind_of
from pipeline.runtime.noise import TRAINING_NOISE, Noise

log = logging.getLogger(__name__)

PIXELS = 28 * 28
BATCH = 500  # images per onnxruntime call


@dataclass(frozen=True)
class Stated:
    """What the user says of a generator made elsewhere; the defaults are this project's."""

    noise: Noise = TRAINING_NOISE
    noise_dim: int | None = None  # None: the input's own width
    output_range: tuple[float, float] = (-1.0, 1.0)

    def describe(self) -> str:
        noise = self.noise
        drawn = (
            "standard normal noise"
            if noise.distribution == "normal"
            else f"uniform noise in [{noise.low:g}, {noise.high:g}]"
        )
        low, high = self.output_range
        return f"{drawn}, images read as values in [{low:g}, {high:g}]"


class AnyGenerator:
    """An onnxruntime session on a generator that follows the minimal contract: draws the
    seeded noise `Stated` says and returns uint8 images `(N, 28, 28)`, as `Sampler.sample`."""

    conditional = False
    infogan = False

    def __init__(self, path: Path, stated: Stated, session=None):
        """`session`: an onnxruntime session already open on `path` (`open_session`)."""
        from pipeline.runtime.sampler import open_session

        self.session = session or open_session(path)
        self.path, self.stated = path, stated
        self.noise_input, self.noise_dim = self._noise_input(stated.noise_dim)
        self.output = self.session.get_outputs()[0]
        sizes = [size for size in self.output.shape[1:] if isinstance(size, int)]
        if len(sizes) == len(self.output.shape[1:]) and math.prod(sizes) != PIXELS:
            raise SamplerError(
                f"{path}: the output {self.output.name!r} of shape {self.output.shape} is not "
                "28 x 28 images"
            )
        low, high = stated.output_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise SamplerError(f"the output range must be two numbers, low < high: {low}, {high}")

    def _noise_input(self, stated_dim: int | None) -> tuple[str, int]:
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 2:
            found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise SamplerError(
                f"{self.path}: not a generator of the minimal contract: expected one float32 "
                f"input of noise (N, D), got {found}"
            )
        width = inputs[0].shape[1]
        for size in (width, stated_dim):
            if isinstance(size, int) and not 0 < size <= MAX_NOISE_DIM:
                raise SamplerError(f"{self.path}: a noise {size} wide is outside 1-{MAX_NOISE_DIM}")
        if isinstance(width, int):
            if stated_dim is not None and stated_dim != width:
                raise SamplerError(
                    f"{self.path}: its noise is {width} wide, not the {stated_dim} stated"
                )
            return inputs[0].name, width
        if stated_dim is None:
            raise SamplerError(
                f"{self.path}: the noise's width is not fixed in the model: state it (--noise-dim)"
            )
        return inputs[0].name, stated_dim

    def labels(self, count: int) -> None:
        return None

    def sample(self, n: int, *, seed: int = 0) -> np.ndarray:
        """`n` uint8 images `(n, 28, 28)` from the seeded noise of `seed`."""
        low, high = self.stated.output_range
        parts = []
        for start in range(0, n, BATCH):
            count = min(BATCH, n - start)
            noise = self.stated.noise.seeded(seed, count, self.noise_dim, first_row=start)
            (images,) = self.session.run([self.output.name], {self.noise_input: noise})
            images = np.asarray(images, np.float64)
            if images.size != count * PIXELS:
                raise SamplerError(
                    f"{self.path}: {count} noise vectors gave an output of shape "
                    f"{images.shape}, not {count} images of 28 x 28"
                )
            scaled = (images.reshape(count, 28, 28) - low) / (high - low) * 255.0
            parts.append(np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8))
        return np.concatenate(parts)


def open_generator(path: Path, stated: Stated | None):
    """This project's `Sampler` for a model that carries its contract, when nothing is
    stated; else an `AnyGenerator` on what is stated, or on this project's noise and range
    for a model that says nothing (and a warning that says so)."""
    from pipeline.runtime.sampler import Sampler, open_session

    if stated is None:
        session = open_session(path)
        if kind_of(dict(session.get_modelmeta().custom_metadata_map)) == MODEL_KIND:
            return Sampler(path)
        generator = AnyGenerator(path, Stated(), session)
        log.warning(
            "%s carries no generator metadata: measured with %s (--noise, --noise-range, "
            "--noise-dim and --output-range state otherwise)",
            path,
            generator.stated.describe(),
        )
        return generator
    return AnyGenerator(path, stated)
