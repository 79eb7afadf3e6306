"""The semi-supervised GAN (Salimans et al. 2016): a digit classifier from 100 labels.

`train.model: semi-supervised` learns from every training image but the labels of only
`train.labelled_per_class` of each digit, drawn by `train.label_seed`. Its discriminator is a
classifier with an implicit fake class (`build_classifier_discriminator`, in `networks.py`
beside this module): its step adds the labelled images' cross-entropy to half the real/fake
loss, and the generator matches the discriminator's mean features on real images instead of
fooling it. After training
the stage saves into the family's Keras folder, which the export stage converts into
`models/family` (`pipeline.export.family_models`):

- `labelled.json`: the chosen training-image indices, their labels and how they were drawn;
- `classifier`: the discriminator's weight average as a digit classifier
  (`pipeline.runtime.classify` reads its ONNX form);
- `baseline`: the same network trained on the same labelled images alone, the
  supervised-only baseline that tells what the unlabelled images and the GAN add.

The evaluate stage measures both on the test split, which nothing here reads.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from pipeline.errors import TrainingError
from pipeline.evaluation.family_measures import Evaluation
from pipeline.families.base import (
    Defaults,
    Exporter,
    Fakes,
    Family,
    OwnMeasure,
    Reals,
    save_models,
)
from pipeline.families.semi_supervised.losses import (
    feature_matching_loss,
    implicit_fake_logit,
    supervised_loss,
)
from pipeline.families.semi_supervised.networks import build_classifier_discriminator
from pipeline.gan import networks
from pipeline.gan.averaging import WeightAverage
from pipeline.gan.optimizers import FusedAdam
from pipeline.gan.placement import precision_policy
from pipeline.runtime.classify import BASELINE_FILE, CLASSIFIER_FILE, LABELLED_FILE, Classifier
from pipeline.runtime.contract import (
    CLASSES,
    CLASSIFIER_KIND,
    IMAGE_SHAPE,
    IMAGES_OUTPUT,
    PROBABILITIES_OUTPUT,
    classifier_metadata,
)
from pipeline.runtime.family_models import FamilyModel
from pipeline.storage.images import from_uint8

log = logging.getLogger(__name__)

LABEL_STREAM = 17  # keeps the label draw apart from the other streams of the same seed
CLASSIFIER = FamilyModel(
    Path(CLASSIFIER_FILE).stem, CLASSIFIER_KIND, "semi-supervised GAN discriminator"
)
BASELINE = FamilyModel(
    Path(BASELINE_FILE).stem, CLASSIFIER_KIND, "supervised-only baseline on the same labels"
)


def classifier_graph(network):
    """A classifier network's class logits (its first output) as `probabilities`, in inference
    mode: images `(N, 28, 28, 1)` in [-1, 1] -> `(N, 10)`."""
    signature = (tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32, name=IMAGES_OUTPUT),)

    @tf.function(input_signature=signature)
    def classify(images):
        logits = network(images, training=False)[0]
        return {PROBABILITIES_OUTPUT: keras.activations.softmax(logits)}

    return classify, signature


class SemiSupervised(Family):
    name = "semi-supervised"
    summary = "A digit classifier from 100 labels: the discriminator learns the ten classes."
    # The generator at the paper's MNIST rate; this convolutional discriminator (the paper's is
    # a weight-normalised MLP) classified better at a third of it. It anneals as the paper
    # does, and its classifier keeps improving well past 3 epochs (docs/DECISIONS.md).
    defaults = Defaults(
        learning_rate=3e-3,
        discriminator_learning_rate=1e-3,
        beta1=0.5,
        epochs=16,
        lr_schedule="anneal",
    )
    losses = ("gan",)  # its implicit fake class is a cross-entropy
    takes_critic_norm = False  # its discriminator is its own
    own_settings = ("labelled_per_class", "label_seed")
    ledger_fields = (*Family.ledger_fields, "test_errors")  # the classifier's and baseline's
    exporters: ClassVar[dict[str, Exporter]] = {
        CLASSIFIER_KIND: Exporter(classifier_graph, (PROBABILITIES_OUTPUT,), classifier_metadata)
    }
    takes_r1 = False  # its noise and dropout regularise it instead
    distributes = False  # its noise layers draw from Keras' own seed state, which one device keeps

    def describe(self) -> str:
        return (
            "Unconditional generator of a semi-supervised GAN; its discriminator is the "
            "classifier in `models/family`."
        )

    def build_discriminator(self, *, synchronized: bool = False):
        return build_classifier_discriminator()

    def prepare(self, images, labels) -> None:
        self.chosen = choose_labelled(
            labels, self.config.labelled_per_class, self.config.label_seed
        )
        self.labelled = (images[self.chosen], labels[self.chosen])
        log.info(
            "labelled: %d training images (label_seed %d)", len(self.chosen), self.config.label_seed
        )

    def judge(self, discriminator, images, labels, training: bool):
        outputs = discriminator(images, training=training)
        return implicit_fake_logit(outputs[0]), outputs

    def discriminator_loss(self, run, loss, fakes: Fakes, count):
        """The paper's weights: the supervised loss plus half the real/fake loss."""
        return 0.5 * loss + self.supervised(run, count)

    def supervised(self, run, count):
        """Cross-entropy on `count` labelled images drawn with replacement (the 100 labels are
        seen many times per epoch, as in the paper)."""
        images, labels = self.labelled
        chosen = run.noise.uniform((count,), 0, len(labels), dtype=tf.int32)
        real = networks.from_uint8(tf.gather(images, chosen))
        class_logits = run.judge(run.seen(real), None)[1][0]
        return supervised_loss(class_logits, tf.gather(labels, chosen))

    def generator_loss(self, run, fake_logits, fakes: Fakes, real: Reals):
        """Feature matching: the discriminator's mean features on the fakes against a real
        batch's."""
        real_features = run.judge(run.seen(real.images), None)[1][1]
        return feature_matching_loss(real_features, fakes.judged[1])

    def build_state(self, run) -> None:
        """The classifier is exported averaged like the generator (no batch norm to
        recompute): the average classifies better than the oscillating last weights."""
        if not hasattr(self, "labelled"):
            raise TrainingError("the semi-supervised model trains on the training split's labels")
        self.classifier_average = None
        if self.config.average_decay:
            with precision_policy("float32"):
                averaged = build_classifier_discriminator()
            self.classifier_average = WeightAverage(
                run.discriminator, averaged, self.config.average_decay, self.config.average_horizon
            )

    def checkpoint_parts(self, run) -> dict[str, Any]:
        """The discriminator's noise and dropout seed states (Keras keeps them out of its
        weights and TensorFlow's checkpoints, yet a resumed run must draw on) and the
        classifier's average."""
        weights = {id(variable) for variable in run.discriminator.weights}
        states = [v for v in run.discriminator.variables if id(v) not in weights]
        parts: dict[str, Any] = {"discriminator_noise": states}
        if self.classifier_average is not None:
            parts["average_discriminator"] = self.classifier_average.average
            parts["average_discriminator_updates"] = self.classifier_average.updates
        return parts

    def update_averages(self, run) -> None:
        if self.classifier_average is not None:
            self.classifier_average.update()

    def exported_classifier(self, run):
        """The weight average when there is one, else the trained network."""
        if self.classifier_average is not None:
            return self.classifier_average.average
        return run.discriminator

    def write_models(self, run, folder, data, provenance, metrics) -> None:
        """The labels, the classifier and its supervised-only baseline (trained now, as long
        as the run), both as float32 inference networks."""
        _, labels = data
        start = time.perf_counter()
        with precision_policy(run.placement.precision):
            baseline = train_baseline(*self.labelled, metrics["steps"], self.config)
        metrics["baseline_train_seconds"] = round(time.perf_counter() - start, 2)
        labelled = {
            "indices": [int(i) for i in self.chosen],
            "labels": [int(labels[i]) for i in self.chosen],
            "per_class": provenance.train_params["labelled_per_class"],
            "label_seed": provenance.train_params["label_seed"],
            "split": "train",
        }
        saved = [
            (CLASSIFIER, float32_copy(self.exported_classifier(run))),
            (BASELINE, float32_copy(baseline)),
        ]
        save_models(folder, saved, {LABELLED_FILE: labelled})

    @classmethod
    def measure(cls, evaluation: Evaluation) -> dict[str, Any]:
        """`semi_supervised`: the test error of the exported classifier and of its
        supervised-only baseline, through onnxruntime, and the labels they learnt from."""
        if evaluation.models is None:
            return super().measure(evaluation)
        folder, test = evaluation.models, evaluation.test
        errors = {
            "test_error": Classifier(folder / CLASSIFIER_FILE).error_rate(test.images, test.labels),
            "baseline_test_error": Classifier(folder / BASELINE_FILE).error_rate(
                test.images, test.labels
            ),
        }
        labelled = json.loads((folder / LABELLED_FILE).read_text())
        errors |= {"labelled": len(labelled["indices"]), "label_seed": labelled["label_seed"]}
        log.info(
            "semi-supervised: test error %.4f with %d labels (supervised-only baseline %.4f)",
            errors["test_error"],
            errors["labelled"],
            errors["baseline_test_error"],
        )
        return super().measure(evaluation) | {"semi_supervised": errors}

    @classmethod
    def ledger_values(cls, evaluated: dict[str, Any]) -> dict[str, Any]:
        values = super().ledger_values(evaluated)
        if "semi_supervised" in evaluated:
            measured = evaluated["semi_supervised"]
            values["test_errors"] = (measured["test_error"], measured["baseline_test_error"])
        return values

    @classmethod
    def own_measure(cls, row: dict[str, Any]) -> OwnMeasure | None:
        if not row.get("test_errors"):
            return None
        error, baseline = row["test_errors"]
        note = f" (supervised-only baseline {baseline:.2%})"
        return OwnMeasure("test error, 100 labels", error, note=note)


def float32_copy(network):
    """The classifier network `network` with float32 weights and computation, as export and
    inference want it, whatever precision it trained in."""
    with precision_policy("float32"):
        plain = build_classifier_discriminator()
    plain.set_weights(network.get_weights())
    return plain


def choose_labelled(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of `per_class` images of each digit among the training `labels`, drawn
    without replacement: the same for the same (labels, per_class, seed)."""
    rng = np.random.default_rng([seed, LABEL_STREAM])
    chosen = []
    for digit in range(CLASSES):
        pool = np.flatnonzero(labels == digit)
        if len(pool) < per_class:
            raise TrainingError(
                f"train.labelled_per_class {per_class}: the training split has only "
                f"{len(pool)} images of digit {digit}"
            )
        chosen.append(rng.choice(pool, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def train_baseline(images: np.ndarray, labels: np.ndarray, steps: int, config):
    """The classifier network trained on the labelled uint8 `images` `(n, 28, 28)` alone, for
    as many steps of `train.batch_size` as the semi-supervised run made, with its
    discriminator's Adam and its weight average (`config`: the resolved train section): so
    the two differ only in what the unlabelled images and the generator add. Returns the
    network it would export."""
    keras.utils.set_random_seed(LABEL_STREAM)  # its dropout's seeds, whatever ran before
    network = build_classifier_discriminator()
    average = None
    if config.average_decay:
        with precision_policy("float32"):
            averaged = build_classifier_discriminator()
        average = WeightAverage(network, averaged, config.average_decay, config.average_horizon)
    optimizer = FusedAdam(
        config.discriminator_learning_rate, beta_1=config.beta1, beta_2=config.beta2
    )
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
