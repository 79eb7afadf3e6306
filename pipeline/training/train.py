"""The `train` stage: the DCGAN on the verified IDX files, resumable from checkpoints.

Per iteration: one discriminator step on a real and a fake batch (`critic_steps` of them for
WGAN-GP), then one generator step on fresh noise, all in one compiled `tf.function`. The
conditional model's fakes take the real batch's labels in the discriminator step (so each class
is seen as often real as fake, and the gradient penalty interpolates images of one label) and
uniformly drawn labels in the generator step. All randomness comes from `train.seed`: the order of
each epoch's batches is a permutation drawn from (seed, epoch), the noise from a
`tf.random.Generator` whose state is checkpointed with the networks and optimizers. A run resumed
from a checkpoint therefore continues exactly where the interrupted one was.

The checkpoint folder outlives the stage (DVC `persist`); a fingerprint of everything that shapes
the weights (the params but the epoch count, the data, the model code, the precision) guards it,
so a checkpoint made with other settings is never resumed. Raising `train.epochs` after a finished
run continues it, which gives the same weights as training that long from the start.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pipeline.config import ClassifierConfig, TrainConfig, takes_r1
from pipeline.data.datasets import DATASETS, load_split
from pipeline.errors import ConfigError, TrainingError
from pipeline.evaluation import codes
from pipeline.families import semi_supervised as ssl
from pipeline.gan import augment, averaging, losses
from pipeline.gan import networks as model
from pipeline.gan.averaging import WeightAverage, recalibrate_batch_norm
from pipeline.gan.placement import Placement, choose_placement, precision_policy
from pipeline.runtime import images as image_io
from pipeline.runtime import machine
from pipeline.runtime.contract import TRAINING_NOISE, GeneratorContract, Provenance
from pipeline.runtime.files import (
    exclusive_lock,
    sha256_of,
    write_json_atomically,
    write_path_atomically,
    write_text_atomically,
)
from pipeline.runtime.revision import code_revision
from pipeline.training import distribution
from pipeline.training.distribution import Distribution, ReplicaNoise
from pipeline.training.tracking import QUALITY_COLUMNS, Measurement, QualityTracker, quality_tsv
from pipeline.training.tracking import summary as tracking_summary

log = logging.getLogger(__name__)

# What only changes pictures and bookkeeping: not a DVC dependency of the stage either.
COSMETIC = ("sample_every", "checkpoint_every", "grid_size")
# Left out of the checkpoint fingerprint: besides the cosmetic keys, the epoch count (a longer
# run continues a shorter one) and how many devices share a step (a checkpoint resumes under
# any strategy, and one made under a strategy on a single device).
NOT_IN_FINGERPRINT = ("epochs", *COSMETIC, "distribute", "replicas", "batch_norm")
LOSS_COLUMNS = ("step", "epoch", "d_loss", "g_loss")
# (generator, discriminator) Adam rates of `learning_rate: auto`, the best measured for each model
# at 3 epochs (README, Sample quality): the unconditional generator learns at twice the
# discriminator's rate; the conditional one collapses at that rate and needs the reverse.
# InfoGAN takes Chen et al.'s rates for its discriminator (generator 1e-3, discriminator 2e-4).
AUTO_RATES = {
    "unconditional": (3e-3, 1.5e-3),
    "conditional": (1e-3, 2e-3),
    "infogan": (1e-3, 2e-4),
    # The generator at Salimans et al. 2016's MNIST rate; this convolutional discriminator (the
    # paper's is a weight-normalised MLP) classified better at a third of it: 0.91% test error
    # against 1.05% at 3e-3, over three label draws at 16 epochs (README).
    "semi-supervised": (3e-3, 1e-3),
}
# Noise vectors whose activations set the averaged generator's batch-norm statistics.
CALIBRATION_SAMPLES = 2048
# Adam's beta1 of `beta1: auto`: no momentum for the unconditional model, whose R1-regularised
# game measured sharper without it (README, Sample quality); DCGAN's 0.5 (Radford et al. 2016)
# for the others, whose rates were measured with it.
AUTO_BETA1 = {"unconditional": 0.0, "conditional": 0.5, "infogan": 0.5, "semi-supervised": 0.5}
DRAW_BATCH = 1024
SSL_FOLDER = "ssl"  # under --models: the semi-supervised model's classifiers (else empty)


@dataclass(frozen=True)
class TrainPaths:
    """Where the stage reads and writes; all of it comes from the command line (dvc.yaml)."""

    data: Path
    models: Path
    checkpoints: Path
    plots: Path
    metrics: Path
    classifier: Path | None = None  # the classifier stage's model, for quality tracking
    classifier_config: ClassifierConfig | None = None  # whose validation split it holds out


def dataset_name(train_images_sha256: str) -> str:
    """The known dataset these training images belong to, or `custom`."""
    for spec in DATASETS.values():
        if any(f.sha256 == train_images_sha256 for f in spec.files):
            return spec.name
    return "custom"


def fingerprint(config: TrainConfig, placement: Placement, data_sha256: str) -> dict[str, Any]:
    code = hashlib.sha256()
    for module in (model, losses, averaging, augment):
        code.update(Path(module.__file__).read_bytes())
    ignored = set(NOT_IN_FINGERPRINT)
    if config.lr_schedule != "constant":
        ignored.discard("epochs")  # the schedule's length is the run's
    settings = {k: v for k, v in config.as_dict().items() if k not in ignored}
    return {
        "settings": settings,
        "precision": placement.precision,
        "images_sha256": data_sha256,
        "model_code_sha256": code.hexdigest(),
    }


class Trainer:
    """The networks, optimizers, noise source and compiled step of one training run."""

    def __init__(
        self,
        config: TrainConfig,
        placement: Placement,
        total_steps: int = 0,
        distributed: Distribution | None = None,
        labelled: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        self.distributed = distributed or Distribution(None, 1)
        strategy = self.distributed.strategy
        if (config.model == "semi-supervised") != (labelled is not None):
            raise TrainingError("the semi-supervised model, and only it, takes labelled images")
        self.labelled = labelled
        if strategy is None:
            self._build(config, placement, total_steps)
            step = self._train_step
        else:
            with strategy.scope():
                self._build(config, placement, total_steps)
            step = self._distributed_step
        # Two compiled steps when the R1 penalty is on: with it every `r1_every` steps (lazy
        # regularisation), without it in between; a Python choice, so neither graph branches.
        self._steps = [tf.function(functools.partial(step, regularize=False))]
        if config.r1_weight and takes_r1(config.loss, config.model):
            self._steps.append(tf.function(functools.partial(step, regularize=True)))
        drawn = self.generator if self.average is None else self.average.average
        self._infer = tf.function(lambda inputs: drawn(inputs, training=False))

    def _build(self, config: TrainConfig, placement: Placement, total_steps: int) -> None:
        """The networks, optimizers, noise source and checkpoint (under a strategy's scope, so
        that every variable is mirrored on its replicas)."""
        self.config = config
        self.total_steps = total_steps
        self.placement = placement
        self.objective = losses.OBJECTIVES[config.loss]
        self.conditional = config.model == "conditional"  # the discriminator takes labels too
        self.infogan = config.model == "infogan"
        self.semi_supervised = config.model == "semi-supervised"
        # The generator's label values (classes, or InfoGAN's categorical code) and noise
        # width (InfoGAN's continuous codes are its last columns): see pipeline.gan.networks.
        self.classes = model.CLASSES if self.conditional else 0
        self.continuous = 0
        if self.infogan:
            self.classes, self.continuous = config.categorical_codes, config.continuous_codes
        self.noise_dim = config.noise_dim + self.continuous
        self.replicas = self.distributed.replicas
        synchronized = self.distributed.strategy is not None and config.batch_norm == "synchronized"
        self.generator = model.build_generator(
            self.noise_dim, self.classes, synchronized=synchronized
        )
        if self.semi_supervised:
            self.discriminator = model.build_classifier_discriminator()
        elif self.infogan:
            self.discriminator = model.build_infogan_discriminator(
                self.classes, self.continuous, synchronized=synchronized
            )
        else:
            self.discriminator = model.build_discriminator(model.CLASSES if self.conditional else 0)
        self.average = None
        if config.average_decay:
            with precision_policy("float32"):
                averaged = model.build_generator(self.noise_dim, self.classes)
            self.average = WeightAverage(
                self.generator, averaged, config.average_decay, config.average_horizon
            )
        # The semi-supervised classifier is exported averaged like the generator (no batch norm
        # to recompute): the average classifies better than the oscillating last weights.
        self.classifier_average = None
        if self.semi_supervised and config.average_decay:
            with precision_policy("float32"):
                averaged = model.build_classifier_discriminator()
            self.classifier_average = WeightAverage(
                self.discriminator, averaged, config.average_decay, config.average_horizon
            )
        self._calibrated_at = -1
        self.best = None
        if config.track_every and config.export_weights == "best":
            with precision_policy("float32"):
                self.best = BestGenerator(model.build_generator(self.noise_dim, self.classes))
        self.generator_optimizer = self._optimizer(self.generator, "generator")
        self.discriminator_optimizer = self._optimizer(self.discriminator, "discriminator")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        if self.distributed.strategy is None:
            self.noise = tf.random.Generator.from_seed(config.seed)
            generator_state = {"noise": self.noise}
        else:  # stateless, keyed by the step: nothing to checkpoint
            self.noise = ReplicaNoise(config.seed, self.step, self.replicas)
            generator_state = {}
        self.checkpoint_parts = {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "generator_optimizer": self.generator_optimizer,
            "discriminator_optimizer": self.discriminator_optimizer,
            "step": self.step,
            "train_seconds": self.train_seconds,
            **generator_state,
            **self._discriminator_noise(),
            **self._average_checkpoint(),
            **({"best": self.best.checkpoint} if self.best else {}),
        }
        self.checkpoint = tf.train.Checkpoint(**self.checkpoint_parts)

    def _discriminator_noise(self) -> dict[str, Any]:
        """The semi-supervised discriminator's noise and dropout seed states: Keras keeps them
        out of its weights and TensorFlow's checkpoints, yet a resumed run must draw on."""
        if not self.semi_supervised:
            return {}
        weights = {id(variable) for variable in self.discriminator.weights}
        states = [v for v in self.discriminator.variables if id(v) not in weights]
        return {"discriminator_noise": states}

    def _average_checkpoint(self) -> dict[str, Any]:
        parts = {}
        if self.average is not None:
            parts |= {
                "average_generator": self.average.average,
                "average_updates": self.average.updates,
            }
        if self.classifier_average is not None:
            parts |= {
                "average_discriminator": self.classifier_average.average,
                "average_discriminator_updates": self.classifier_average.updates,
            }
        return parts

    def exported_classifier(self):
        """The discriminator the semi-supervised model exports as its classifier: the weight
        average when there is one, else the trained network."""
        if self.classifier_average is not None:
            return self.classifier_average.average
        return self.discriminator

    def _optimizer(self, network, side: str):
        rate, beta1, beta2 = adam_settings(self.config, side)
        if self.config.lr_schedule == "anneal" and self.total_steps:
            updates = self.total_steps
            if side == "discriminator":
                updates *= self.objective.critic_steps
            rate = HoldThenLinearDecay(rate, updates)
        optimizer = keras.optimizers.Adam(rate, beta_1=beta1, beta_2=beta2)
        if self.placement.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(network.trainable_variables)
        return optimizer

    def _sample_noise(self, count) -> tf.Tensor:
        return self.noise.uniform((count, self.noise_dim), TRAINING_NOISE.low, TRAINING_NOISE.high)

    def _sample_labels(self, count) -> tf.Tensor:
        return self.noise.uniform((count,), 0, self.classes, dtype=tf.int32)

    def _with_labels(self, x: tf.Tensor, labels: tf.Tensor):
        """The generator's input: `x` alone, or `[x, labels]` for the conditional model (and
        InfoGAN, its categorical code)."""
        return [x, labels] if self.classes else x

    def _judge(self, images: tf.Tensor, labels: tf.Tensor, training: bool = True):
        """The discriminator on `images` (with `labels` for the conditional model): the
        real/fake logits `(N, 1)`, and what else it says: InfoGAN's code predictions, the
        semi-supervised model's (class logits, features); None for the other models."""
        inputs = [images, labels] if self.conditional else images
        outputs = self.discriminator(inputs, training=training)
        if self.semi_supervised:
            return losses.implicit_fake_logit(outputs[0]), outputs
        if not self.infogan:
            return outputs, None
        return outputs[0], outputs[1:]

    def _supervised(self, count) -> tf.Tensor:
        """The semi-supervised model's cross-entropy on `count` labelled images drawn with
        replacement (the 100 labels are seen many times per epoch, as in the paper)."""
        images, labels = self.labelled
        chosen = self._sample_indices(count, len(labels))
        real = tf.cast(tf.gather(images, chosen), tf.float32)[..., tf.newaxis] / 127.5 - 1.0
        class_logits = self._judge(self._seen(real), None)[1][0]
        return losses.supervised_loss(class_logits, tf.gather(labels, chosen))

    def _sample_indices(self, count, size: int) -> tf.Tensor:
        return self.noise.uniform((count,), 0, size, dtype=tf.int32)

    def _information(self, fake: tf.Tensor, predicted, noise: tf.Tensor, codes) -> tf.Tensor:
        """InfoGAN's weighted information term for the `fake` images drawn with `codes` and
        `noise` (whose last columns are the continuous codes), of which Q `predicted` the
        codes. With `categorical_jitter`, Q reads the categorical code again from the fakes
        jittered (`pipeline.gan.augment.jitter`): the code must then survive a change of slant, size
        and place, which leaves the digit's shape to carry it."""
        categorical = predicted[0]
        if self.config.categorical_jitter:
            categorical = self._judge(augment.jitter(fake, self.noise), codes)[1][0]
        continuous = noise[:, self.config.noise_dim :] if self.continuous else None
        mean = predicted[1] if self.continuous else None
        term = losses.information_loss(
            categorical, codes, mean, continuous, self.config.continuous_info_weight
        )
        return self.config.info_weight * term

    def step_inputs(self, real_uint8, labels):
        """The training step's arguments for a global batch: as they are on one device, or
        each replica's share under a strategy."""
        strategy = self.distributed.strategy
        if strategy is None:
            return real_uint8, labels
        parts = self.objective.critic_steps
        return distribution.split_batch(strategy, parts, np.asarray(real_uint8), np.asarray(labels))

    def train_step(self, real_uint8, labels) -> tuple[tf.Tensor, tf.Tensor]:
        """One training step on `step_inputs`; the R1 penalty (when on) at every
        `r1_every`-th step, counted from 0, so a resumed run regularises the same steps."""
        regularize = len(self._steps) > 1 and int(self.step.numpy()) % self.config.r1_every == 0
        return self._steps[regularize](real_uint8, labels)

    def _distributed_step(
        self, real_uint8, labels, *, regularize: bool
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """`_replica_step` on every replica's share, then the weight average (in cross-replica
        context, where the mirrored generator is one value); the losses averaged over the
        replicas."""
        strategy = self.distributed.strategy
        replica_step = functools.partial(self._replica_step, regularize=regularize)
        d_loss, g_loss = strategy.run(replica_step, args=(real_uint8, labels))
        if self.average is not None:
            self.average.update()
        mean = tf.distribute.ReduceOp.MEAN
        return strategy.reduce(mean, d_loss, axis=None), strategy.reduce(mean, g_loss, axis=None)

    def _train_step(
        self, real_uint8: tf.Tensor, labels: tf.Tensor, *, regularize: bool
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """`_replica_step`, then the weight average: the whole step on one device."""
        d_loss, g_loss = self._replica_step(real_uint8, labels, regularize=regularize)
        if self.average is not None:
            self.average.update()
        if self.classifier_average is not None:
            self.classifier_average.update()
        return d_loss, g_loss

    def _replica_step(
        self, real_uint8: tf.Tensor, labels: tf.Tensor, *, regularize: bool = False
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """One generator step after `critic_steps` discriminator steps, each on its own slice
        of `real_uint8` `(critic_steps * N, 28, 28)` and its `labels` `(critic_steps * N,)`
        (unused by the unconditional model); returns the mean discriminator loss and the
        generator loss. `regularize`: the discriminator steps add the R1 penalty."""
        if isinstance(self.noise, ReplicaNoise):
            self.noise.begin_step()
        real = tf.cast(real_uint8, tf.float32)[..., tf.newaxis] / 127.5 - 1.0  # (N, 28, 28, 1)
        labels = tf.cast(labels, tf.int32)
        steps = self.objective.critic_steps
        parts = zip(tf.split(real, steps), tf.split(labels, steps), strict=True)
        d_losses = [
            self._discriminator_step(part, part_labels, regularize) for part, part_labels in parts
        ]
        d_loss = d_losses[0] if steps == 1 else tf.add_n(d_losses) / steps
        g_loss = self._generator_step(tf.shape(real)[0] // steps, real)
        return d_loss, g_loss

    def _seen(self, images: tf.Tensor) -> tf.Tensor:
        """What the discriminator sees of real or generated images: themselves, or with
        `train.augment: translation` each moved by its own random shift (`pipeline.gan.augment`)."""
        if self.config.augment == "translation":
            return augment.translate(images, self.noise)
        return images

    def _discriminator_step(
        self, real: tf.Tensor, labels: tf.Tensor, regularize: bool
    ) -> tf.Tensor:
        """Tell real (-> 1, or a high score) from generated (-> 0, or a low score). With
        `regularize`, plus the R1 penalty, weighted `r1_weight * r1_every` so that applied
        every `r1_every` steps it weighs what it would every step (Karras et al. 2020)."""
        count = tf.shape(real)[0]
        noise = self._sample_noise(count)
        if self.infogan:  # the fakes' own codes, not the real images' labels
            labels = self._sample_labels(count)
        fake = self.generator(self._with_labels(noise, labels), training=True)
        real, fake = self._seen(real), self._seen(fake)

        def critic(images, training):
            return self._judge(images, labels, training)[0]

        with tf.GradientTape() as tape:
            if regularize:
                real_logits, r1 = losses.real_gradient_penalty(critic, real)
            else:
                real_logits = critic(real, training=True)
            fake_logits, predicted = self._judge(fake, labels)
            d_loss = self.objective.discriminator_loss(
                real_logits, fake_logits, 1.0 - self.config.label_smoothing
            )
            if self.infogan:
                d_loss += tf.cast(self._information(fake, predicted, noise, labels), d_loss.dtype)
            if self.semi_supervised:  # the paper's weights: supervised + half the real/fake
                d_loss = 0.5 * d_loss + self._supervised(count)
            if regularize:
                weight = 0.5 * self.config.r1_weight * self.config.r1_every
                d_loss += weight * tf.cast(r1, d_loss.dtype)
            if self.objective.penalty_weight:
                mix = self.noise.uniform((count, 1, 1, 1), 0.0, 1.0)
                penalty = losses.gradient_penalty(critic, real, fake, mix)
                d_loss += self.objective.penalty_weight * tf.cast(penalty, d_loss.dtype)
            scaled = self.discriminator_optimizer.scale_loss(self._share(d_loss))
        variables = self.discriminator.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.discriminator_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return d_loss

    def _share(self, loss: tf.Tensor) -> tf.Tensor:
        """A replica's part of the mean loss: the optimizers sum the replicas' gradients."""
        return loss / self.replicas if self.replicas > 1 else loss

    def _generator_step(self, count, real: tf.Tensor) -> tf.Tensor:
        """Make the discriminator call fresh fakes real; the semi-supervised model's generator
        instead matches the discriminator's mean features on the `real` batch."""
        noise = self._sample_noise(count)
        labels = self._sample_labels(count) if self.classes else None
        with tf.GradientTape() as tape:
            fake = self.generator(self._with_labels(noise, labels), training=True)
            fake_logits, predicted = self._judge(self._seen(fake), labels)
            if self.semi_supervised:
                real_features = self._judge(self._seen(real), None)[1][1]
                g_loss = losses.feature_matching_loss(real_features, predicted[1])
            else:
                g_loss = self.objective.generator_loss(fake_logits)
            if self.infogan:
                g_loss += tf.cast(self._information(fake, predicted, noise, labels), g_loss.dtype)
            scaled = self.generator_optimizer.scale_loss(self._share(g_loss))
        variables = self.generator.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.generator_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return g_loss

    def grid_labels(self, count: int) -> np.ndarray:
        """The labels of the progress grid's images: the classes in turn."""
        return np.arange(count, dtype=np.int32) % max(self.classes, 1)

    def draw(self, noise: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """uint8 images `(N, 28, 28)` from `noise` (and `labels`, by default `grid_labels`),
        with batch norm in inference mode: of the weight average when there is one (what the
        stage exports), else of the trained generator."""
        if self.average is not None:
            self._recalibrate()
        return self._images(self._infer, noise, labels)

    def _images(self, generate, noise: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """uint8 images `(N, 28, 28)` of `generate` (inputs -> images in [-1, 1]) from `noise`
        and `labels` (by default `grid_labels`), `DRAW_BATCH` at a time."""
        if labels is None:
            labels = self.grid_labels(len(noise))
        images = []
        for start in range(0, len(noise), DRAW_BATCH):
            part = slice(start, start + DRAW_BATCH)
            inputs = self._with_labels(tf.constant(noise[part]), tf.constant(labels[part]))
            images.append(np.asarray(generate(inputs), np.float32))
        return image_io.to_uint8(np.concatenate(images))[..., 0]

    def exported_weights(self) -> list[np.ndarray]:
        """The weights (batch-norm statistics included) of `exported_generator`."""
        if self.average is not None:
            self._recalibrate()
            return self.average.average.get_weights()
        return self.generator.get_weights()

    def exported_generator(self):
        """The generator the stage saves, in float32 whatever the training precision: the
        weight average with its batch-norm statistics recomputed (see `pipeline.gan.averaging`),
        or with `average_decay: 0` a copy of the trained generator."""
        if self.average is not None:
            self._recalibrate()
            return self.average.average
        with precision_policy("float32"):
            copy = model.build_generator(self.noise_dim, self.classes)
        copy.set_weights(self.exported_weights())
        return copy

    def saved_generator(self):
        """What the stage writes to generator.keras: with `export_weights: best`, the exported
        generator at its lowest tracked validation Frechet distance, else the current one."""
        if self.best is not None and int(self.best.step.numpy()) > 0:
            return self.best.network
        return self.exported_generator()

    def draw_saved(self, noise: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """uint8 images `(N, 28, 28)` of `saved_generator` from `noise` and `labels` (by
        default `grid_labels`)."""
        saved = self.saved_generator()
        return self._images(lambda inputs: saved(inputs, training=False), noise, labels)

    def _recalibrate(self) -> None:
        """Batch-norm statistics for the current average, once per step it is used at."""
        step = int(self.step.numpy())
        if self._calibrated_at == step:
            return
        calibration = TRAINING_NOISE.draw(
            np.random.default_rng([self.config.seed, 2]), CALIBRATION_SAMPLES, self.noise_dim
        )
        inputs = self._with_labels(
            tf.constant(calibration),
            tf.constant(self.grid_labels(CALIBRATION_SAMPLES)),
        )
        recalibrate_batch_norm(self.average.average, inputs)
        self._calibrated_at = step


class HoldThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate held for the first half of `updates`, then falling linearly to 0 at the
    last: fast progress first, then steps small enough to settle instead of oscillating.
    Evaluated by Keras' Adam on its own update count, so it resumes with the optimizer."""

    def __init__(self, rate: float, updates: int):
        self.rate = rate
        self.updates = updates

    def __call__(self, update) -> tf.Tensor:
        left = 1.0 - tf.cast(update, tf.float32) / self.updates
        return self.rate * tf.clip_by_value(2.0 * left, 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, "updates": self.updates}


class BestGenerator:
    """A copy of the exported generator's weights (batch-norm statistics included) taken when
    its validation Frechet distance is the lowest so far; checkpointed with the run."""

    def __init__(self, network):
        self.network = network
        self.distance = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(
            network=network, distance=self.distance, step=self.step
        )

    def offer(self, weights: Callable[[], list[np.ndarray]], measurement: Measurement) -> None:
        """Keep `weights()` (called only then) when `measurement` is the best so far."""
        if measurement.frechet_distance < float(self.distance.numpy()):
            self.network.set_weights(weights())
            self.distance.assign(measurement.frechet_distance)
            self.step.assign(measurement.step)


class LossLog:
    """Per-step losses; saved beside each checkpoint so a resumed run keeps its history."""

    def __init__(self, rows: list[tuple[int, int, float, float]] | None = None):
        self.rows = rows or []

    @classmethod
    def load(cls, path: Path, upto_step: int) -> LossLog:
        table = np.load(path, allow_pickle=False) if path.exists() else np.zeros((0, 4))
        kept = [(int(s), int(e), float(d), float(g)) for s, e, d, g in table if int(s) <= upto_step]
        if len(kept) != upto_step:
            raise TrainingError(
                f"{path}: loss history has {len(kept)} of {upto_step} steps; "
                "rerun with --fresh to start over"
            )
        return cls(kept)

    def save(self, path: Path) -> None:
        table = np.array(self.rows, dtype=np.float64).reshape(-1, 4)
        with path.open("wb") as handle:
            np.save(handle, table, allow_pickle=False)

    def tsv(self) -> str:
        lines = ["\t".join(LOSS_COLUMNS)]
        lines += [f"{s}\t{e}\t{d:.6g}\t{g:.6g}" for s, e, d, g in self.rows]
        return "\n".join(lines) + "\n"


def train(config: TrainConfig, paths: TrainPaths, *, fresh: bool = False) -> dict[str, Any]:
    """Train (or resume), then write the generator, plots and metrics; returns the metrics.

    One run at a time per checkpoint folder: a second one fails at once instead of both writing.
    Under `multi-worker` only the chief uses the folders given; every other worker starts from
    a copy of the chief's checkpoints (the folder must be shared, as it is between processes of
    one machine), checkpoints to a temporary folder (TensorFlow's pattern: all workers save, one
    keeps it) and writes nothing else.
    """
    # Before any TF op. The semi-supervised model trains on one device (config.py says why).
    chosen = "off" if config.model == "semi-supervised" else config.distribute
    distributed = distribution.choose(chosen, config.replicas)
    if config.batch_size % distributed.replicas:
        raise ConfigError(
            f"train.batch_size {config.batch_size} does not split over {distributed.replicas} "
            "replicas: make it a multiple"
        )
    if not distributed.chief:
        with tempfile.TemporaryDirectory(prefix="dcgan-worker-") as scratch:
            own = Path(scratch) / "checkpoints"
            if paths.checkpoints.is_dir() and not fresh:  # resume at the chief's step
                shutil.copytree(paths.checkpoints, own)
            worker_paths = dataclasses.replace(paths, checkpoints=own, classifier=None)
            return _train(config, worker_paths, distributed, fresh=fresh, write=False)
    lock = paths.checkpoints.parent / f".{paths.checkpoints.name}.lock"
    with exclusive_lock(lock, f"the checkpoint folder {paths.checkpoints}"):
        return _train(config, paths, distributed, fresh=fresh, write=True)


def _train(
    config: TrainConfig, paths: TrainPaths, distributed: Distribution, *, fresh: bool, write: bool
) -> dict[str, Any]:
    images, labels = load_split(paths.data, "train")
    if config.model == "conditional" and labels.max(initial=0) >= model.CLASSES:
        raise TrainingError(
            f"{paths.data}: label {labels.max()} in the training labels; the conditional model "
            f"knows {model.CLASSES} classes (0-{model.CLASSES - 1})"
        )
    per_step = images_per_step(config)
    if len(images) < per_step:
        raise TrainingError(
            f"{paths.data}: {len(images)} training images, fewer than one step takes "
            f"({per_step}: train.batch_size {config.batch_size} x "
            f"{losses.OBJECTIVES[config.loss].critic_steps} discriminator steps)"
        )
    data_sha256 = sha256_of(paths.data / "train-images-idx3-ubyte")
    steps_per_epoch = len(images) // per_step  # the last partial step is dropped
    total_steps = steps_per_epoch * config.epochs

    placement = choose_placement(config.precision)
    if placement.device.startswith("CPU"):
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    labelled = None
    if config.model == "semi-supervised":
        labelled = ssl.choose_labelled(labels, config.labelled_per_class, config.label_seed)
        log.info("labelled: %d training images (label_seed %d)", len(labelled), config.label_seed)
    with precision_policy(placement.precision):
        trainer = Trainer(
            config,
            placement,
            total_steps,
            distributed,
            None if labelled is None else (images[labelled], labels[labelled]),
        )
    log.info(
        "training the %s model on %s in %s: %d images, %d steps per epoch, %d epochs "
        "(%d steps), loss %s",
        config.model,
        placement.device if distributed.strategy is None else where(distributed),
        placement.precision,
        len(images),
        steps_per_epoch,
        config.epochs,
        total_steps,
        config.loss,
    )
    tracker = quality_tracker(config, paths, images, trainer) if write else None

    store = CheckpointStore(
        paths.checkpoints,
        trainer.checkpoint_parts,
        trainer.step,
        fingerprint(config, placement, data_sha256),
    )
    history = store.resume(total_steps, fresh=fresh)
    fixed_noise = TRAINING_NOISE.draw(
        np.random.default_rng(config.seed), config.grid_size**2, trainer.noise_dim
    )
    plan = LoopPlan(steps_per_epoch, total_steps, fixed_noise)
    try:
        run_loop(trainer, (images, labels), plan, store, history, tracker)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        raise TrainingError(
            f"another worker stopped ({_short_reason(error)}): the job cannot go on; start "
            "every worker again to resume from the last checkpoint"
        ) from error

    metrics = summarize(trainer, config, placement, history, steps_per_epoch)
    code_meanings = ""
    if trainer.infogan and tracker is not None:
        measured = codes.measure_codes(
            trainer.draw_saved,
            tracker.classify,
            noise_dim=config.noise_dim,
            categorical=trainer.classes,
            continuous=trainer.continuous,
            seed=config.seed,
        )
        metrics["codes"] = measured
        code_meanings = codes.meanings(measured)
        log.info("InfoGAN codes: %s", code_meanings)
    if write:  # the metrics file last: it holds the classifiers' parity figures
        write_classifiers(trainer, paths, (images, labels), labelled, data_sha256, metrics)
        write_outputs(
            trainer, store, paths, history, data_sha256, metrics, fixed_noise, code_meanings
        )
    return metrics


def write_classifiers(trainer, paths, data, labelled, data_sha256, metrics) -> None:
    """The `SSL_FOLDER` under --models: for the semi-supervised model its labels, classifier
    and supervised-only baseline (trained now, as long as the run); empty for the others."""
    folder = paths.models / SSL_FOLDER
    if labelled is None:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return
    config = trainer.config
    images, labels = data
    start = time.perf_counter()
    with precision_policy(trainer.placement.precision):
        baseline = ssl.train_baseline(
            images[labelled],
            labels[labelled],
            metrics["steps"],
            config,
            adam_settings(config, "discriminator"),
        )
    metrics["baseline_train_seconds"] = round(time.perf_counter() - start, 2)
    provenance = run_provenance(config, data_sha256, metrics["steps"])
    parity = ssl.write_folder(
        folder,
        trainer.exported_classifier(),
        baseline,
        labelled,
        labels,
        provenance,
        images[: ssl.PARITY_IMAGES],
    )
    metrics["classifier_max_abs_diff"] = parity


def where(distributed: Distribution) -> str:
    """`2 replicas (mirrored)`, and this process's task under multi-worker."""
    task = f", this process {distributed.task}" if distributed.name == "multi-worker" else ""
    return f"{distributed.replicas} replicas ({distributed.name}{task})"


def quality_tracker(
    config: TrainConfig, paths: TrainPaths, images: np.ndarray, trainer: Trainer
) -> QualityTracker | None:
    """The validation-set tracker on the training `images`' held-out part for `trainer`'s
    generator, or None with `train.track_every: 0`."""
    if not config.track_every:
        return None
    if paths.classifier is None or not paths.classifier.is_file():
        raise TrainingError(
            f"quality tracking needs the MNIST classifier ({paths.classifier}): run "
            "`dcgan classifier` first, or set train.track_every: 0 to train without tracking"
        )
    return QualityTracker.from_classifier(
        paths.classifier,
        images,
        paths.classifier_config,
        samples=config.track_samples,
        seed=config.seed,
        noise_dim=trainer.noise_dim,
        classes=trainer.classes,
    )


@dataclass(frozen=True)
class LoopPlan:
    steps_per_epoch: int
    total_steps: int
    fixed_noise: np.ndarray  # the progress frames' noise, (grid_size**2, noise_dim)


@dataclass
class History:
    """What a run has recorded so far; saved beside each checkpoint so a resumed run keeps it."""

    losses: LossLog
    quality: list[Measurement]


class CheckpointStore:
    """The persistent checkpoint folder: TF checkpoints of `parts` (named objects, numbered by
    the `step` variable among them), loss and quality history, progress frames."""

    def __init__(
        self,
        folder: Path,
        parts: dict[str, Any],
        step: tf.Variable,
        fingerprint: dict[str, Any],
    ):
        self.folder = Path(folder)
        self.parts = parts
        self.checkpoint = tf.train.Checkpoint(**parts)
        self.step = step
        self.fingerprint = fingerprint
        self.frames = self.folder / "progress"
        self.manager: tf.train.CheckpointManager | None = None

    def resume(self, total_steps: int, *, fresh: bool) -> History:
        """Restore the latest matching checkpoint (or start over); returns its history."""
        reason = "--fresh" if fresh else self._mismatch(total_steps)
        if reason:
            if self.folder.exists():
                self._refuse_if_not_ours()
                log.info("starting over (%s): clearing %s", reason, self.folder)
                shutil.rmtree(self.folder)
            self.folder.mkdir(parents=True)
            write_json_atomically(self.folder / "fingerprint.json", self.fingerprint)
            self.frames.mkdir()
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.folder / "tf", max_to_keep=2
        )
        if self.manager.latest_checkpoint is None:
            return History(LossLog(), [])
        restore_across_distributions(self.parts, self.manager.latest_checkpoint)
        step = int(self.step.numpy())
        log.info("resuming from the checkpoint at step %d of %d", step, total_steps)
        return History(LossLog.load(self._loss_path(step), step), self._load_quality(step))

    def _refuse_if_not_ours(self) -> None:
        """Never clear a folder this stage did not make (a mistyped --checkpoints, say)."""
        ours = (self.folder / "fingerprint.json").exists()
        visible = [p for p in self.folder.iterdir() if not p.name.startswith(".")]
        if not ours and visible:
            raise TrainingError(
                f"{self.folder} is not empty and holds no training checkpoint; "
                "name an empty or new folder with --checkpoints"
            )

    def _mismatch(self, total_steps: int) -> str | None:
        """Why the existing folder cannot be resumed, or None when it can."""
        saved = self.folder / "fingerprint.json"
        if not saved.exists():
            return "no checkpoint yet"
        try:
            previous = json.loads(saved.read_text())
        except ValueError:
            return "unreadable fingerprint"
        if previous != self.fingerprint:
            changed = ", ".join(_changed(previous, self.fingerprint))
            return f"the checkpoint was made with another {changed}"
        latest = tf.train.latest_checkpoint(self.folder / "tf")
        if latest is not None and int(latest.rsplit("-", 1)[-1]) > total_steps:
            return f"the checkpoint is past the {total_steps} steps asked for"
        return None

    def _loss_path(self, step: int) -> Path:
        return self.folder / f"losses-{step:07d}.npy"

    def _quality_path(self, step: int) -> Path:
        return self.folder / f"quality-{step:07d}.npy"

    def _load_quality(self, step: int) -> list[Measurement]:
        path = self._quality_path(step)
        if not path.exists():
            return []
        table = np.load(path, allow_pickle=False)
        return [Measurement.from_row(row) for row in table if row[0] <= step]

    def save(self, history: History) -> None:
        """History first, then the TF checkpoint (whose index file is written last, so a
        failed or killed save leaves the previous checkpoint the latest)."""
        step = int(self.step.numpy())
        try:
            history.losses.save(self._loss_path(step))
            table = np.array([m.row() for m in history.quality], np.float64)
            with self._quality_path(step).open("wb") as handle:
                np.save(handle, table.reshape(-1, len(QUALITY_COLUMNS)), allow_pickle=False)
            self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as error:  # a full disk, a quota, a lost mount
            kept = self.manager.latest_checkpoint
            kept = (
                f"the checkpoint at step {kept.rsplit('-', 1)[-1]} is kept"
                if kept
                else ("there is no earlier checkpoint")
            )
            raise TrainingError(
                f"cannot write the checkpoint at step {step} to {self.folder} "
                f"({_short_reason(error)}); training stopped, {kept}"
            ) from error
        steps = [int(p.rsplit("-", 1)[-1]) for p in self.manager.checkpoints]
        kept = {path(step) for step in steps for path in (self._loss_path, self._quality_path)}
        for path in [*self.folder.glob("losses-*.npy"), *self.folder.glob("quality-*.npy")]:
            if path not in kept:
                path.unlink()

    def save_frame(self, step: int, grid: np.ndarray) -> None:
        image_io.save_png(grid, self.frames / f"step_{step:07d}.png")

    def frame_paths(self) -> list[Path]:
        return sorted(self.frames.glob("step_*.png"))


# The single-device noise generator's state: a checkpoint made under a strategy has none (its
# noise is keyed by the step), and a strategy has no use for it.
STATE_OF_ONE_DEVICE = "noise"


def restore_across_distributions(parts: dict[str, Any], path: str) -> None:
    """Restore `path` into the objects `parts` names, everything matched both ways but the
    single-device noise state, which a checkpoint from another distribution lacks or has
    spare: a single device then draws its noise from the seed again."""
    saved = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
    if (STATE_OF_ONE_DEVICE in saved) == (STATE_OF_ONE_DEVICE in parts):
        tf.train.Checkpoint(**parts).restore(path).assert_consumed()
        return
    shared = {name: part for name, part in parts.items() if name != STATE_OF_ONE_DEVICE}
    tf.train.Checkpoint(**shared).restore(path).assert_existing_objects_matched()
    log.info("the checkpoint comes from another distribution: the noise stream starts again")


def _short_reason(error: Exception) -> str:
    """The first line of an OS or TensorFlow error, without TensorFlow's op suffix."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0].split(" [Op:")[0][-200:]


def _changed(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Names of the fingerprint entries that differ (`train.<key>` for settings)."""
    old_settings, new_settings = previous.get("settings", {}), current["settings"]
    changed = [
        f"train.{key}"
        for key in sorted({*old_settings, *new_settings})
        if old_settings.get(key) != new_settings.get(key)
    ]
    return changed + [k for k in current if k != "settings" and previous.get(k) != current[k]]


def run_loop(trainer, data, plan: LoopPlan, store, history: History, tracker) -> None:
    config = trainer.config
    total_steps = plan.total_steps
    step = int(trainer.step.numpy())
    if step == 0:
        store.save_frame(0, image_io.make_grid(trainer.draw(plan.fixed_noise), config.grid_size))
    if step >= total_steps:
        return
    bar = tqdm(total=total_steps, initial=step, unit="step", disable=None, dynamic_ncols=True)
    loop_start = segment_start = time.perf_counter()
    first_step = step
    try:
        while step < total_steps:
            epoch, done_in_epoch = divmod(step, plan.steps_per_epoch)
            for batch in epoch_batches(data, config, epoch, skip=done_in_epoch):
                inputs = trainer.step_inputs(*batch)
                d_loss, g_loss = (float(v) for v in trainer.train_step(*inputs))
                step += 1
                trainer.step.assign(step)
                if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                    kept = store.manager.latest_checkpoint
                    raise TrainingError(
                        f"non-finite loss at step {step} (epoch {epoch + 1}): d_loss={d_loss}, "
                        f"g_loss={g_loss}; training stopped, the last good checkpoint "
                        f"({kept or 'none yet'}) is kept"
                    )
                history.losses.rows.append((step, epoch + 1, d_loss, g_loss))
                bar.update(1)
                steps_per_second = (step - first_step) / (time.perf_counter() - loop_start)
                status = (
                    f"epoch {epoch + 1}/{config.epochs} d {d_loss:.3f} g {g_loss:.3f} "
                    f"{steps_per_second * images_per_step(config):.0f} img/s"
                )
                last = step == total_steps
                # Also at each epoch's end: a longer run then measures every step a shorter
                # one exported, so more epochs can only export a generator as good or better.
                epoch_end = step % plan.steps_per_epoch == 0
                if tracker is not None and (step % config.track_every == 0 or epoch_end or last):
                    seconds = float(trainer.train_seconds.numpy())
                    seconds += time.perf_counter() - segment_start
                    measured = tracker.measure(trainer.draw, step, seconds)
                    history.quality.append(measured)
                    if trainer.best is not None:
                        trainer.best.offer(trainer.exported_weights, measured)
                    log.info(
                        "step %d: validation Frechet distance %.3f, smallest class share %.3f",
                        step,
                        measured.frechet_distance,
                        measured.smallest_class_share,
                    )
                if step % 10 == 0 or last:
                    bar.set_postfix_str(status, refresh=False)
                if step % config.sample_every == 0 or last:
                    grid = image_io.make_grid(trainer.draw(plan.fixed_noise), config.grid_size)
                    store.save_frame(step, grid)
                if step % config.checkpoint_every == 0 or last:
                    trainer.train_seconds.assign_add(time.perf_counter() - segment_start)
                    segment_start = time.perf_counter()
                    store.save(history)
                    if bar.disable:  # no terminal: say how far it got at each checkpoint
                        left = (total_steps - step) / max(steps_per_second, 1e-9)
                        log.info(
                            "checkpoint at step %d/%d: %s, %d min %02d s left",
                            step,
                            total_steps,
                            status,
                            *divmod(round(left), 60),
                        )
    finally:
        bar.close()


def adam_settings(config: TrainConfig, network: str) -> tuple[float, float, float]:
    """(learning rate, beta1, beta2) of the `generator`'s or the `discriminator`'s Adam: what
    the objective prescribes (WGAN-GP), else `train.learning_rate` or
    `train.discriminator_learning_rate` (`auto`: `AUTO_RATES` of the model) and `train.beta1`
    (`auto`: `AUTO_BETA1` of the model), with Adam's usual beta2."""
    prescribed = losses.OBJECTIVES[config.loss].adam
    if prescribed:
        return prescribed
    side = 1 if network == "discriminator" else 0
    rate = (config.learning_rate, config.discriminator_learning_rate)[side]
    if rate == "auto":
        rate = AUTO_RATES[config.model][side]
    beta1 = AUTO_BETA1[config.model] if config.beta1 == "auto" else config.beta1
    return rate, beta1, 0.999


def images_per_step(config: TrainConfig) -> int:
    """A batch for each discriminator step of one training step."""
    return config.batch_size * losses.OBJECTIVES[config.loss].critic_steps


def epoch_batches(
    data: tuple[np.ndarray, np.ndarray], config: TrainConfig, epoch: int, *, skip: int = 0
):
    """One epoch's inputs of the training step, (uint8 images, labels) of `images_per_step`
    each, in the order fixed by (seed, epoch), minus the first `skip`."""
    images, labels = data
    per_step = images_per_step(config)
    order = np.random.default_rng([config.seed, epoch]).permutation(len(images))
    usable = (len(images) // per_step) * per_step
    order = order[skip * per_step : usable]
    dataset = tf.data.Dataset.from_tensor_slices((images[order], labels[order]))
    return dataset.batch(per_step, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def summarize(trainer, config, placement, history: History, steps_per_epoch) -> dict[str, Any]:
    steps = int(trainer.step.numpy())
    seconds = float(trainer.train_seconds.numpy())
    rows = history.losses.rows
    last_epoch = [row for row in rows if row[0] > steps - steps_per_epoch]
    return {
        "steps": steps,
        "epochs": config.epochs,
        "final_d_loss": rows[-1][2],
        "final_g_loss": rows[-1][3],
        "last_epoch_mean_d_loss": float(np.mean([row[2] for row in last_epoch])),
        "last_epoch_mean_g_loss": float(np.mean([row[3] for row in last_epoch])),
        "train_seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / max(steps / steps_per_epoch, 1e-9), 2),
        "images_per_second": round(steps * images_per_step(config) / max(seconds, 1e-9), 1),
        "device": placement.device,
        "precision": placement.precision,
        "distribute": trainer.distributed.name,
        "replicas": trainer.distributed.replicas,
        **tracking_summary(history.quality),
        "machine": machine.describe(),
    }


def run_provenance(config: TrainConfig, data_sha256: str, steps: int) -> Provenance:
    """What made this run's exported models: the generator's and the classifiers' metadata."""
    return Provenance(
        dataset=dataset_name(data_sha256),
        train_images_sha256=data_sha256,
        train_params=config.as_dict(),
        train_steps=steps,
        train_code_revision=code_revision(),
    )


def write_outputs(
    trainer, store, paths, history: History, data_sha256, metrics, fixed_noise, code_meanings=""
):
    """Everything later stages and `dvc plots`/`dvc metrics` read, each file written atomically."""
    config = trainer.config
    paths.models.mkdir(parents=True, exist_ok=True)
    paths.plots.mkdir(parents=True, exist_ok=True)
    paths.metrics.parent.mkdir(parents=True, exist_ok=True)

    generator_path = paths.models / "generator.keras"
    write_path_atomically(generator_path, trainer.saved_generator().save)
    provenance = run_provenance(config, data_sha256, metrics["steps"])
    if trainer.infogan:
        contract = GeneratorContract(
            config.noise_dim,
            categorical_codes=trainer.classes,
            continuous_codes=trainer.continuous,
            code_meanings=code_meanings,
        )
    else:
        contract = GeneratorContract(config.noise_dim, classes=tuple(range(trainer.classes)))
    write_json_atomically(
        paths.models / "generator.json",
        contract.description(provenance, trainer.placement.precision),
    )

    progress = paths.plots / "progress"
    if progress.exists():
        shutil.rmtree(progress)
    progress.mkdir()
    frames = []
    for frame in store.frame_paths():
        shutil.copyfile(frame, progress / frame.name)
        frames.append(image_io.load_png(frame))
    image_io.save_gif(frames, paths.plots / "progress.gif", scale=1)
    final = image_io.make_grid(trainer.draw_saved(fixed_noise), config.grid_size)
    image_io.save_png(final, paths.plots / "final_grid.png", scale=4)
    write_text_atomically(paths.plots / "losses.tsv", history.losses.tsv())
    write_text_atomically(paths.plots / "quality.tsv", quality_tsv(history.quality))
    write_json_atomically(paths.metrics, metrics)
    log.info("wrote %s, %s and %s", generator_path, paths.plots, paths.metrics)
