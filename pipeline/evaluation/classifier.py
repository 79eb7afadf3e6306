"""The `classifier` stage: a small MNIST CNN whose features and logits the evaluate stage uses.

Inception-based FID needs ImageNet weights fetched at run time and means little for grey digits;
TF-GAN's MNIST metrics use a classifier trained on MNIST instead. Its penultimate layer
(`features`, 128-d) is the space for the Frechet distance and precision/recall, its softmax
gives the classifier score and class coverage. Trained once, seeded, cached by DVC.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ClassifierConfig
from pipeline.data.datasets import load_split
from pipeline.runtime import machine
from pipeline.storage.images import from_uint8
from pipeline.storage.keras_files import save_keras

log = logging.getLogger(__name__)

FEATURES_LAYER = "features"


def describe(feature_model, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Classifier features `(N, 128)` and logits `(N, 10)` of uint8 images `(N, 28, 28)`, in
    float64 for the statistics."""
    features, logits = feature_model.predict(from_uint8(images), batch_size=batch_size, verbose=0)
    return np.asarray(features, np.float64), np.asarray(logits, np.float64)


def split_indices(count: int, config: ClassifierConfig) -> tuple[np.ndarray, np.ndarray]:
    """(held out, learnt from): indices into the `count` training images. The held-out ones
    are the classifier's validation split and the real reference of the train stage's quality
    tracking; the test split is used by neither."""
    order = np.random.default_rng(config.seed).permutation(count)
    return order[: config.validation_size], order[config.validation_size :]


def build_classifier():
    import keras
    from keras import layers

    images = keras.Input((28, 28, 1), name="digits")
    x = layers.Conv2D(32, 5, use_bias=False)(images)  # (N, 24, 24, 32)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.MaxPooling2D(2)(x)  # (N, 12, 12, 32)
    x = layers.Conv2D(64, 5, use_bias=False)(x)  # (N, 8, 8, 64)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.MaxPooling2D(2)(x)  # (N, 4, 4, 64)
    x = layers.Flatten()(x)  # (N, 1024)
    features = layers.Dense(128, activation="relu", name=FEATURES_LAYER)(x)  # (N, 128)
    x = layers.Dropout(0.3)(features)
    logits = layers.Dense(10, name="logits")(x)  # (N, 10)
    return keras.Model(images, logits, name="mnist_classifier")


def train_classifier(data: Path, out_path: Path, config: ClassifierConfig) -> dict[str, Any]:
    """Train on the training split minus a held-out validation part; report test accuracy."""
    train_images, train_labels = load_split(data, "train")
    test_images, test_labels = load_split(data, "test")
    held_out, kept = split_indices(len(train_images), config)
    started = time.perf_counter()
    model, history = fit_classifier(
        train_images[kept],
        train_labels[kept],
        config,
        validation_data=(from_uint8(train_images[held_out]), train_labels[held_out]),
    )
    seconds = time.perf_counter() - started
    _, test_accuracy = model.evaluate(from_uint8(test_images), test_labels, verbose=0)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_keras(model, out_path)
    metrics = {
        "test_accuracy": round(float(test_accuracy), 5),
        "validation_accuracy": round(float(history.history["val_accuracy"][-1]), 5),
        "train_images": len(kept),
        "validation_images": len(held_out),
        "epochs": config.epochs,
        "train_seconds": round(seconds, 1),
        "machine": machine.describe(),
    }
    log.info("classifier: %.2f%% on the test split", 100 * metrics["test_accuracy"])
    return metrics


def fit_classifier(images: np.ndarray, labels: np.ndarray, config: ClassifierConfig, **fit):
    """A `build_classifier` network fitted to uint8 `images` `(N, 28, 28)` and their labels
    as the classifier stage fits it: its seed, epochs and batch size, Adam with the rate
    decaying along a cosine over the run; deterministic ops. `fit`: more of Keras' `fit`
    arguments (validation data). Returns the model and its history."""
    import keras
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    model = build_classifier()
    steps = config.epochs * math.ceil(len(images) / config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        shuffled_batches(from_uint8(images), labels, config.batch_size),
        shuffle=False,  # the batches come shuffled
        epochs=config.epochs,
        verbose=0,  # Keras prints to stdout, which carries our results: log to stderr instead
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=log_epoch)],
        **fit,
    )
    return model, history


def shuffled_batches(images: np.ndarray, labels: np.ndarray, batch_size: int):
    """The batches `fit` makes of arrays with `shuffle=True` (Keras's own adapter, the same
    permutations from the seed), without tf.data's autotuning: its thread sleeps for periods
    that double up to a minute, and each epoch's iterator waited for it to wake before the next
    epoch began (docs/PERFORMANCE.md). The count of batches is stated, as
    Keras knows it for arrays, so that `fit` never reads past an epoch's end."""
    import tensorflow as tf
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    adapter = ArrayDataAdapter(images, labels, batch_size=batch_size, shuffle=True)
    dataset = adapter.get_tf_dataset()
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(adapter.num_batches))
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def log_epoch(epoch: int, logs: dict[str, float]) -> None:
    validation = logs.get("val_accuracy")  # a fit without validation data has none
    log.info(
        "classifier epoch %d: loss %.4f, accuracy %.4f%s",
        epoch + 1,
        logs["loss"],
        logs["accuracy"],
        "" if validation is None else f", validation accuracy {validation:.4f}",
    )


def load_feature_model(path: Path):
    """The trained classifier as a model returning (features, logits)."""
    import keras

    classifier = keras.saving.load_model(path)
    return keras.Model(
        classifier.input, [classifier.get_layer(FEATURES_LAYER).output, classifier.output]
    )
