"""The `train_benchmark` stage: the project's training step against a plain one, side by side.

The baseline is the plain float32 `tf.function` implementation of the same model, losses,
optimizers and batch: Keras' own layers, the same alternating discriminator and generator steps.
The project's step is the `Trainer`'s, with the precision `train.precision` picks on this
machine. Both train from the same fresh weights on the same real batches; the timed windows
alternate between them and each one's throughput is the median over its windows. A benchmark,
not a test: it never fails on speed.
"""

from __future__ import annotations

import logging
import time
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline.benchmarks.benchmark import SETTLE_SECONDS, judge, write_targets
from pipeline.config import TRAINING_TARGETS, TrainBenchmarkConfig, TrainConfig
from pipeline.data.datasets import load_split
from pipeline.errors import DataFormatError
from pipeline.families import family_of, resolve
from pipeline.gan import losses, networks
from pipeline.gan.placement import choose_placement, precision_policy
from pipeline.runtime import machine
from pipeline.runtime.noise import TRAINING_NOISE
from pipeline.training.loop import epoch_batches, images_per_step
from pipeline.training.trainer import Trainer

log = logging.getLogger(__name__)

BATCHES = 8  # real batches the timed steps cycle through


def plain_step(config: TrainConfig):
    """The baseline: a straightforward float32 training step of the family's networks and the
    chosen loss (none of the family's additions), compiled with `tf.function`."""
    import keras

    config = resolve(config)
    family = family_of(config)
    classes = family.label_values
    generator = family.build_generator()
    discriminator = family.build_discriminator()
    objective = losses.OBJECTIVES[config.loss]
    generator_optimizer, discriminator_optimizer = (
        keras.optimizers.RMSprop(rate, rho=losses.RMSPROP_RHO)
        if objective.optimizer == "rmsprop"
        else keras.optimizers.Adam(rate, beta_1=config.beta1, beta_2=config.beta2)
        for rate in (config.learning_rate, config.discriminator_learning_rate)
    )

    def noise(count):
        shape = (count, family.latent_dim)
        return tf.random.uniform(shape, TRAINING_NOISE.low, TRAINING_NOISE.high)

    def labelled(x, labels):
        return [x, labels] if classes else x

    @tf.function
    def step(real_uint8, labels):
        real = networks.from_uint8(real_uint8)
        labels = tf.cast(labels, tf.int32)
        steps = objective.critic_steps
        for part, part_labels in zip(tf.split(real, steps), tf.split(labels, steps), strict=True):
            count = tf.shape(part)[0]
            fake = generator(labelled(noise(count), part_labels), training=True)

            def critic(images, training, part_labels=part_labels):
                return family.judge(discriminator, images, part_labels, training)[0]

            with tf.GradientTape() as tape:
                d_loss = objective.discriminator_loss(
                    critic(part, training=True),
                    critic(fake, training=True),
                    1.0 - config.label_smoothing,
                )
                if objective.penalty_weight:
                    mix = tf.random.uniform((count, 1, 1, 1))
                    penalty = losses.gradient_penalty(critic, part, fake, mix)
                    d_loss += objective.penalty_weight * penalty
            variables = discriminator.trainable_variables
            gradients = tape.gradient(d_loss, variables)
            discriminator_optimizer.apply_gradients(trained(gradients, variables))
            if objective.clip:
                for variable in variables:
                    variable.assign(tf.clip_by_value(variable, -objective.clip, objective.clip))
        fake_labels = tf.random.uniform((count,), 0, classes, tf.int32) if classes else None
        with tf.GradientTape() as tape:
            fake = generator(labelled(noise(count), fake_labels), training=True)
            fake_logits = family.judge(discriminator, fake, fake_labels, True)[0]
            real_logits = None
            if objective.generator_sees_real:
                real_logits = family.judge(discriminator, part, part_labels, True)[0]
            g_loss = objective.generator(fake_logits, real_logits)
        variables = generator.trainable_variables
        gradients = tape.gradient(g_loss, variables)
        generator_optimizer.apply_gradients(trained(gradients, variables))
        return d_loss, g_loss

    return step


def trained(gradients, variables) -> list:
    """The (gradient, variable) pairs the plain loss reaches: a family's extra heads (InfoGAN's
    Q) take no part in the plain step."""
    pairs = zip(gradients, variables, strict=True)
    return [(gradient, variable) for gradient, variable in pairs if gradient is not None]


def train_benchmark_stage(
    data: Path, train_config: TrainConfig, config: TrainBenchmarkConfig, plots: Path
) -> dict[str, Any]:
    """The whole stage: both steps timed on the training images of `data`; the targets table
    goes to `plots`. Returns the metrics."""
    images, labels = load_split(data, "train")
    needed = BATCHES * images_per_step(train_config)
    if len(images) < needed:
        raise DataFormatError(
            f"{data}: {len(images)} training images; the benchmark cycles through {BATCHES} "
            f"steps of {images_per_step(train_config)}"
        )
    metrics = run_train_benchmark(
        (images, labels),
        train_config,
        windows=config.windows,
        steps=config.steps,
        goals=config.targets,
    )
    plots.mkdir(parents=True, exist_ok=True)
    write_targets(metrics["targets"], plots / "targets.csv")
    return metrics


def run_train_benchmark(
    data: tuple[np.ndarray, np.ndarray],
    config: TrainConfig,
    *,
    windows: int,
    steps: int,
    goals=TRAINING_TARGETS,
) -> dict[str, Any]:
    """Images per second of both steps on the training (images, labels) `data` (medians over
    `windows` windows of `steps` steps)."""
    placement = choose_placement(config.precision)
    with precision_policy(placement.precision):
        trainer = Trainer(config, placement, data=data)
    steppers = {"plain_float32": plain_step(config), "project": trainer.train_step}
    batches = cycle(list(islice(iter(epoch_batches(data, config, 0)), BATCHES)))
    for step in steppers.values():  # trace and warm up
        for batch in islice(batches, 2):
            [float(v) for v in step(*batch)]
    rates: dict[str, list[float]] = {name: [] for name in steppers}
    for window in range(windows):
        for name, step in steppers.items():
            time.sleep(SETTLE_SECONDS)
            start = time.perf_counter()
            for batch in islice(batches, steps):
                losses_now = [float(v) for v in step(*batch)]
            rates[name].append(steps * images_per_step(config) / (time.perf_counter() - start))
            if not all(np.isfinite(losses_now)):
                log.warning("%s: non-finite loss in window %d", name, window)
        log.info(
            "window %d: %s",
            window + 1,
            ", ".join(f"{name} {values[-1]:.0f} img/s" for name, values in rates.items()),
        )
    medians = {name: round(float(np.median(values)), 1) for name, values in rates.items()}
    ratio = round(medians["project"] / medians["plain_float32"], 3)
    return {
        "images_per_second": medians,
        "project_over_plain": ratio,
        "batch_size": config.batch_size,
        "precision": placement.precision,
        "device": placement.device,
        "machine": machine.describe(),
        "windows": windows,
        "steps_per_window": steps,
        "targets": judge({"project_over_plain_float32_step": ratio}, dict(goals)),
    }
