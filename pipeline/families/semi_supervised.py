"""The semi-supervised model's labels, baseline and exported classifier (Salimans et al. 2016).

`train.model: semi-supervised` learns from every training image but the labels of only
`train.labelled_per_class` of each digit, drawn by `train.label_seed`. Its discriminator is a
classifier (`pipeline.gan.networks.build_classifier_discriminator`); after training the stage writes
into one folder (`models/ssl`, empty for the other models, so DVC always has the output):

- `labelled.json`: the chosen training-image indices, their labels and how they were drawn;
- `classifier.onnx`: the discriminator as a digit classifier (`pipeline.runtime.classify` reads it),
  checked against TensorFlow before it is written;
- `baseline.onnx`: the same network trained on the same labelled images alone, the
  supervised-only baseline that tells what the unlabelled images and the GAN add.

The evaluate stage measures both on the test split, which nothing here reads.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ExportError, TrainingError
from pipeline.gan import networks as model
from pipeline.runtime.classify import (
    BASELINE_FILE,
    CLASSIFIER_FILE,
    LABELLED_FILE,
    Classifier,
    from_uint8,
)
from pipeline.runtime.contract import (
    IMAGE_SHAPE,
    IMAGES_OUTPUT,
    PROBABILITIES_OUTPUT,
    Provenance,
    classifier_metadata,
)
from pipeline.runtime.files import write_atomically, write_json_atomically

log = logging.getLogger(__name__)

LABEL_STREAM = 17  # keeps the label draw apart from the other streams of the same seed
OPSET = 17
PARITY_TOLERANCE = 1e-4  # largest |onnx - tf| allowed on the probabilities
PARITY_IMAGES = 256


def choose_labelled(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of `per_class` images of each digit among the training `labels`, drawn
    without replacement: the same for the same (labels, per_class, seed)."""
    rng = np.random.default_rng([seed, LABEL_STREAM])
    chosen = []
    for digit in range(model.CLASSES):
        pool = np.flatnonzero(labels == digit)
        if len(pool) < per_class:
            raise TrainingError(
                f"train.labelled_per_class {per_class}: the training split has only "
                f"{len(pool)} images of digit {digit}"
            )
        chosen.append(rng.choice(pool, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def train_baseline(
    images: np.ndarray, labels: np.ndarray, steps: int, config, adam: tuple[float, float, float]
):
    """The classifier network trained on the labelled uint8 `images` `(n, 28, 28)` alone, for
    as many steps of `train.batch_size` as the semi-supervised run made, with its
    discriminator's Adam (`adam`: rate, beta1, beta2) and its weight average (`config`: the
    train section): so the two differ only in what the unlabelled images and the generator
    add. Returns the network it would export."""
    import keras
    import tensorflow as tf

    from pipeline.gan.averaging import WeightAverage
    from pipeline.gan.losses import supervised_loss
    from pipeline.gan.placement import precision_policy

    keras.utils.set_random_seed(LABEL_STREAM)  # its dropout's seeds, whatever ran before
    network = model.build_classifier_discriminator()
    average = None
    if config.average_decay:
        with precision_policy("float32"):
            averaged = model.build_classifier_discriminator()
        average = WeightAverage(network, averaged, config.average_decay, config.average_horizon)
    rate, beta1, beta2 = adam
    optimizer = keras.optimizers.Adam(rate, beta_1=beta1, beta_2=beta2)
    batch_size = config.batch_size
    draws = tf.random.Generator.from_seed(LABEL_STREAM)
    inputs = tf.constant(from_uint8(images))
    targets = tf.constant(labels.astype(np.int32))

    @tf.function
    def step():
        chosen = draws.uniform((batch_size,), 0, len(labels), dtype=tf.int32)
        with tf.GradientTape() as tape:
            logits = network(tf.gather(inputs, chosen), training=True)[0]
            loss = supervised_loss(logits, tf.gather(targets, chosen))
        gradients = tape.gradient(loss, network.trainable_variables)
        optimizer.apply_gradients(zip(gradients, network.trainable_variables, strict=True))
        if average is not None:
            average.update()
        return loss

    for done in range(steps):
        loss = step()
        if (done + 1) % 500 == 0 or done + 1 == steps:
            log.info("baseline: step %d/%d, loss %.4f", done + 1, steps, float(loss))
    return network if average is None else average.average


def write_folder(
    folder: Path,
    discriminator,
    baseline,
    labelled: np.ndarray,
    labels: np.ndarray,
    provenance: Provenance,
    check_images: np.ndarray,
) -> dict[str, Any]:
    """Fill `folder` (emptied first) with the labels and both classifiers; returns the
    parity figures. Each file is written atomically."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_json_atomically(
        folder / LABELLED_FILE,
        {
            "indices": [int(i) for i in labelled],
            "labels": [int(labels[i]) for i in labelled],
            "per_class": provenance.train_params["labelled_per_class"],
            "label_seed": provenance.train_params["label_seed"],
            "split": "train",
        },
    )
    checks = {}
    for name, network, role in (
        (CLASSIFIER_FILE, discriminator, "semi-supervised GAN discriminator"),
        (BASELINE_FILE, baseline, "supervised-only baseline on the same labels"),
    ):
        checks[name] = export_classifier(network, folder / name, role, provenance, check_images)
    return checks


def export_classifier(
    network, path: Path, role: str, provenance: Provenance, check_images: np.ndarray
) -> float:
    """`network`'s class logits as `probabilities` (softmax), converted by tf2onnx in float32
    and inference mode; written only when onnxruntime matches TensorFlow on `check_images`
    (uint8) within `PARITY_TOLERANCE`. Returns the largest difference."""
    import keras
    import tensorflow as tf
    import tf2onnx

    from pipeline.gan.placement import precision_policy

    with precision_policy("float32"):
        plain = model.build_classifier_discriminator()
    plain.set_weights(network.get_weights())
    signature = (tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32, name=IMAGES_OUTPUT),)

    @tf.function(input_signature=signature)
    def classify(images):
        logits = plain(images, training=False)[0]
        return {PROBABILITIES_OUTPUT: keras.activations.softmax(logits)}

    proto, _ = tf2onnx.convert.from_function(classify, input_signature=signature, opset=OPSET)
    metadata = classifier_metadata(provenance, role)
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    data = proto.SerializeToString()
    inputs = from_uint8(check_images)
    expected = classify(tf.constant(inputs))[PROBABILITIES_OUTPUT].numpy()
    actual = Classifier(data, name=path.name).predict(inputs)
    difference = float(np.max(np.abs(actual - expected)))
    if not difference <= PARITY_TOLERANCE:
        raise ExportError(
            f"{path.name}: onnxruntime and TensorFlow differ by up to {difference:.3g} on "
            f"{len(inputs)} images (tolerance {PARITY_TOLERANCE:g}); not written"
        )
    write_atomically(path, lambda handle: handle.write(data))
    log.info("wrote %s: max |onnx - tf| = %.3g on %d images", path, difference, len(inputs))
    return difference
