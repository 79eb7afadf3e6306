"""Digits read by the semi-supervised model's exported classifier, with onnxruntime and numpy.

Like `pipeline.runtime.sampler`, this is the light side: no TensorFlow. The classifier's contract:

- input `images`: float32 `(N, 28, 28, 1)` in [-1, 1], the generator's output as it is (a
  uint8 pixel p is p / 127.5 - 1), so a generator's images can be fed straight in;
- output `probabilities`: float32 `(N, 10)`, each row the digits' probabilities (the GAN's
  implicit fake class left out: the softmax of the ten real-class logits);
- metadata `model` = `ssl-classifier`, and the labels it was trained from.

    from pipeline.runtime.classify import Classifier
    from pipeline.runtime.image_files import read_images
    names, images = read_images(["a.png", "digits.npy"])
    digits = Classifier("models/family/classifier.onnx").predict(images).argmax(axis=1)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.errors import ClassifierError
from pipeline.runtime.contract import (
    CLASSES,
    CLASSIFIER_KIND,
    IMAGES_OUTPUT,
    PROBABILITIES_OUTPUT,
    kind_of,
)
from pipeline.runtime.model_bytes import read_checked
from pipeline.storage.images import from_uint8

# The semi-supervised model's folder (`pipeline.families.semi_supervised`): its classifier, the
# supervised-only baseline, the labels both learnt from.
CLASSIFIER_FILE = "classifier.onnx"
BASELINE_FILE = "baseline.onnx"
LABELLED_FILE = "labelled.json"
BATCH_SIZE = 512


class Classifier:
    """An onnxruntime session on an exported classifier, checked against the contract."""

    def __init__(self, source: str | Path | bytes, *, name: str = ""):
        """`source`: the model file, or its bytes (then `name` is what messages call it)."""
        path = name or str(source)
        model = read_checked(source, path, ClassifierError)
        try:
            self.session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types, not OSError
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
            raise ClassifierError(f"{path}: not a readable ONNX model ({reason[:200]})") from error
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        inputs = [(i.name, i.type) for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        kind = kind_of(self.metadata)
        if (
            kind != CLASSIFIER_KIND
            or inputs != [(IMAGES_OUTPUT, "tensor(float)")]
            or outputs != [PROBABILITIES_OUTPUT]
        ):
            raise ClassifierError(
                f"{path}: not an exported digit classifier (model {kind!r}, inputs "
                f"{[name for name, _ in inputs]}, outputs {outputs}; expected {CLASSIFIER_KIND!r} "
                f"with input {IMAGES_OUTPUT!r} and output {PROBABILITIES_OUTPUT!r})"
            )

    def predict(self, images: np.ndarray) -> np.ndarray:
        """float32 `(N, 10)` probabilities of images `(N, 28, 28, 1)` in [-1, 1]."""
        parts = [
            self.session.run([PROBABILITIES_OUTPUT], {IMAGES_OUTPUT: images[i : i + BATCH_SIZE]})[0]
            for i in range(0, len(images), BATCH_SIZE)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, CLASSES), np.float32)

    def error_rate(self, images_uint8: np.ndarray, labels: np.ndarray) -> float:
        """Share of uint8 images `(N, 28, 28)` whose most probable digit is not their label."""
        predicted = self.predict(from_uint8(images_uint8)).argmax(axis=1)
        return float(np.mean(predicted != labels))
