"""Images to the generator's noise with the BiGAN model's exported encoder, and back through
the generator: onnxruntime and numpy only, like `pipeline.runtime.sampler`.

The encoder's contract (docs/CONTRACT.md):

- input `images`: float32 `(N, 28, 28, 1)` in [-1, 1] (a uint8 pixel p is p / 127.5 - 1);
- outputs `z`: float32 `(N, noise_dim)`, the noise the generator redraws each image from, and
  `features`: float32 `(N, 1024)`, the encoder's last hidden layer;
- metadata `model` = `bigan-encoder`, `noise_dim` and the noise it was trained against.

    from pipeline.runtime.encode import Encoder
    from pipeline.runtime.image_files import read_images
    names, images = read_images(["a.png"])
    codes = Encoder("models/family/encoder.onnx").encode(images)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.errors import EncoderError
from pipeline.runtime.contract import (
    CODES_OUTPUT,
    ENCODER_KIND,
    FEATURES_OUTPUT,
    IMAGES_OUTPUT,
    kind_of,
)
from pipeline.runtime.model_bytes import read_checked

ENCODER_FILE = "encoder.onnx"  # in the BiGAN model's folder, models/family
BATCH_SIZE = 512


class Encoder:
    """An onnxruntime session on an exported encoder, checked against the contract."""

    def __init__(self, source: str | Path):
        model = read_checked(source, source, EncoderError)
        try:
            self.session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types, not OSError
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
            raise EncoderError(f"{source}: not a readable ONNX model ({reason[:200]})") from error
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        inputs = [(i.name, i.type) for i in self.session.get_inputs()]
        outputs = {o.name: o for o in self.session.get_outputs()}
        kind = kind_of(self.metadata)
        if (
            kind != ENCODER_KIND
            or inputs != [(IMAGES_OUTPUT, "tensor(float)")]
            or sorted(outputs) != sorted([CODES_OUTPUT, FEATURES_OUTPUT])
        ):
            raise EncoderError(
                f"{source}: not an exported encoder (model {kind!r}, inputs "
                f"{[name for name, _ in inputs]}, outputs {sorted(outputs)}; expected "
                f"{ENCODER_KIND!r} with input {IMAGES_OUTPUT!r} and outputs {CODES_OUTPUT!r}, "
                f"{FEATURES_OUTPUT!r})"
            )
        self.widths = {name: output.shape[-1] for name, output in outputs.items()}
        if not all(isinstance(width, int) for width in self.widths.values()):
            raise EncoderError(f"{source}: the encoder's outputs have no fixed width")
        self.noise_dim = self.widths[CODES_OUTPUT]

    def encode(self, images: np.ndarray, *, features: bool = False) -> np.ndarray:
        """float32 codes `(N, noise_dim)` of images `(N, 28, 28, 1)` in [-1, 1]; with
        `features`, the layer before them `(N, 1024)` instead."""
        output = FEATURES_OUTPUT if features else CODES_OUTPUT
        parts = [
            self.session.run([output], {IMAGES_OUTPUT: images[i : i + BATCH_SIZE]})[0]
            for i in range(0, len(images), BATCH_SIZE)
        ]
        if not parts:
            return np.zeros((0, self.widths[output]), np.float32)
        return np.concatenate(parts)

    def check_pairs_with(self, sampler, source) -> None:
        """An `EncoderError` unless the generator `sampler` runs takes this encoder's codes."""
        if sampler.conditional or sampler.infogan or sampler.noise_dim != self.noise_dim:
            raise EncoderError(
                f"{source}: the encoder's codes have {self.noise_dim} values; the generator "
                f"takes {sampler.noise_dim}"
                + (" and labels or codes" if sampler.conditional or sampler.infogan else "")
                + ": use the generator of the same BiGAN run"
            )

    def reconstruct(self, sampler, images: np.ndarray) -> np.ndarray:
        """G(E(x)): float32 `(N, 28, 28, 1)` in [-1, 1], the generator `sampler` runs
        (`pipeline.runtime.sampler.Sampler`) drawing from the codes of `images`."""
        codes = self.encode(images)
        parts = [
            sampler.generate(codes[i : i + BATCH_SIZE]) for i in range(0, len(codes), BATCH_SIZE)
        ]
        return np.concatenate(parts) if parts else np.zeros_like(images)
