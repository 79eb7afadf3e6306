"""The `train_benchmark` stage: the training loop against plain steps of the same networks and
against the CPU's matrix-product peak, and where the loop's time goes, all measured in one run.

The baselines are plain `tf.function` steps of the family's networks, the chosen loss, the same
optimizers and batch (Keras' own layers, separate discriminator calls on real and fake, none of
the project's additions), one built in float32 and one under mixed bfloat16, each timed over a
window of steps as a loop that reads no loss until the end would run them, and a 2048x2048
matrix product in both. The loop is measured in its parts, in the same run: the project's step
without and with the R1 penalty, its losses read after every step as the loop reads them,
timed in windows that alternate with the baselines' (and its parts timed alone for the
profile); the input pipeline with the per-step bookkeeping; and the
events the loop runs every so many steps (quality tracking with the batch-norm recalibration it
needs, progress frames, checkpoints), each timed and counted as often as the run's settings make
it happen. A benchmark, not a test: it never fails on speed.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline.benchmarks.benchmark import SETTLE_SECONDS, forward_flops, judge, write_targets
from pipeline.config import (
    TRAINING_TARGETS,
    ClassifierConfig,
    TrainBenchmarkConfig,
    TrainSettings,
)
from pipeline.data.datasets import load_split
from pipeline.errors import DataFormatError, PipelineError
from pipeline.families import family_of, resolved
from pipeline.gan import losses, networks
from pipeline.gan.placement import choose_placement, precision_policy
from pipeline.runtime import machine
from pipeline.runtime.noise import TRAINING_NOISE
from pipeline.storage import images as image_io
from pipeline.training.checkpoints import CheckpointStore, History, LossLog
from pipeline.training.live import LiveRecord
from pipeline.training.loop import epoch_batches, images_per_step
from pipeline.training.tracking import QualityTracker
from pipeline.training.trainer import Trainer

log = logging.getLogger(__name__)

BATCHES = 8  # real batches the timed steps cycle through
MATMUL_SIZE = 2048
BASELINES = ("plain_float32", "plain_bfloat16")
# The profile's rows: what each part of the loop is, in the order of a step.
PARTS = {
    "discriminator": "discriminator step (its fakes drawn, real and fake judged, updated)",
    "r1": "R1 penalty (its extra cost, on the steps that carry it)",
    "generator": "generator step",
    "average": "weight average update",
    "batches": "input pipeline and per-step bookkeeping (losses, dvclive, progress)",
    "tracking": "quality tracking, with the batch-norm recalibration it needs",
    "frames": "progress frames",
    "checkpoints": "checkpoints",
}


def plain_step(config: TrainSettings, family):
    """The baseline: a straightforward float32 training step of the family's networks and the
    chosen loss (none of the family's additions), compiled with `tf.function`. `family` is the
    trainer's, built: what its discriminator takes beside an image (a label, or BiGAN's codes
    of the real images by the trainer's encoder) comes from its `conditioning`."""
    import keras

    config = resolved(config)
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
        steps = config.critic_steps
        for part, part_labels in zip(tf.split(real, steps), tf.split(labels, steps), strict=True):
            count = tf.shape(part)[0]
            drawn = noise(count)
            fake = generator(labelled(drawn, part_labels), training=True)
            real_given, fake_given = family.conditioning(part, part_labels, drawn, part_labels)

            def critic(images, training, given):
                return family.judge(discriminator, images, given, training)[0]

            with tf.GradientTape() as tape:
                d_loss = objective.discriminator_loss(
                    critic(part, True, real_given),
                    critic(fake, True, fake_given),
                    1.0 - config.label_smoothing,
                )
                if objective.penalty_weight:
                    mix = tf.random.uniform((count, 1, 1, 1))
                    real_critic = functools.partial(critic, given=real_given)
                    penalty = losses.gradient_penalty(real_critic, part, fake, mix)
                    d_loss += objective.penalty_weight * penalty
            variables = discriminator.trainable_variables
            gradients = tape.gradient(d_loss, variables)
            discriminator_optimizer.apply_gradients(trained(gradients, variables))
            if objective.clip:
                for variable in variables:
                    variable.assign(tf.clip_by_value(variable, -objective.clip, objective.clip))
        fake_labels = tf.random.uniform((count,), 0, classes, tf.int32) if classes else None
        drawn = noise(count)
        real_given, fake_given = family.conditioning(part, part_labels, drawn, fake_labels)
        with tf.GradientTape() as tape:
            fake = generator(labelled(drawn, fake_labels), training=True)
            fake_logits = family.judge(discriminator, fake, fake_given, True)[0]
            real_logits = None
            if objective.generator_sees_real:
                real_logits = family.judge(discriminator, part, real_given, True)[0]
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
    data: Path,
    train_config: TrainSettings,
    config: TrainBenchmarkConfig,
    plots: Path,
    classifier: tuple[Path, ClassifierConfig] | None = None,
) -> dict[str, Any]:
    """The whole stage on the training images of `data` (with `classifier`, the classifier
    stage's model and section, for the tracking's cost); the targets table goes to `plots`."""
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
        classifier=classifier,
    )
    plots.mkdir(parents=True, exist_ok=True)
    write_targets(metrics["targets"], plots / "targets.csv")
    return metrics


def step_flops(config: TrainSettings) -> int:
    """Floating-point operations of one training image in a plain step, from the networks'
    layers: each discriminator step draws its fakes (G) and judges real and fake forward and
    backward to weights and inputs (3 D each); the generator step runs G and D forward, D
    backward to its input and G backward (3 G + 2 D)."""
    config = resolved(config)
    family = family_of(config)
    with precision_policy("float32"):
        g = forward_flops(family.build_generator())
        d = forward_flops(family.build_discriminator())
    critic_steps = config.critic_steps
    return (critic_steps * (g + 6 * d) + 3 * g + 2 * d) // critic_steps


def matmul_products() -> dict[str, Any]:
    """TensorFlow's square matrix product in float32 and in bfloat16."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32) for _ in range(2))
    products = {}
    for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
        x, y = tf.cast(a, dtype), tf.cast(b, dtype)
        products[name] = tf.function(lambda x=x, y=y: tf.matmul(x, y))
    return products


def run_train_benchmark(
    data: tuple[np.ndarray, np.ndarray],
    config: TrainSettings,
    *,
    windows: int,
    steps: int,
    goals=TRAINING_TARGETS,
    classifier: tuple[Path, ClassifierConfig] | None = None,
) -> dict[str, Any]:
    """The loop's images per second (from its parts) beside the baselines', the matrix
    products' GFLOP/s and the profile, on the training (images, labels) `data`: medians over
    `windows` alternating windows of `steps` steps each."""
    if not machine.bf16_runs():
        raise PipelineError(
            f"the training benchmark compares against mixed bfloat16, whose kernels cannot run "
            f"under ONEDNN_MAX_CPU_ISA={machine.isa_cap()}; run it without that cap"
        )
    config = resolved(config)
    placement = choose_placement(config.precision)
    if placement.device.startswith("CPU"):
        tf.config.experimental.enable_op_determinism()  # as the train stage runs
    tf.keras.utils.set_random_seed(config.seed)
    with precision_policy(placement.precision):
        trainer = Trainer(config, placement, data=data)
    steppers = {}
    for name, policy in zip(BASELINES, ("float32", "mixed_bfloat16"), strict=True):
        with precision_policy(policy):
            steppers[name] = plain_step(config, trainer.family)
    steppers["step"] = trainer._steps[0]
    if len(trainer._steps) > 1:
        steppers["step_r1"] = trainer._steps[1]
    parts = trainer.step_parts()
    steppers |= {f"part_{name}": part for name, part in parts.items()}
    batches = cycle(list(islice(iter(epoch_batches(data, config, 0)), BATCHES)))
    products = matmul_products()
    for step in steppers.values():  # trace and warm up
        for batch in islice(batches, 2):
            tf.nest.map_structure(np.asarray, step(*batch))
    for product in products.values():
        product().numpy()

    seconds: dict[str, list[float]] = {name: [] for name in [*steppers, *products]}
    for window in range(windows):
        for name, step in steppers.items():
            time.sleep(SETTLE_SECONDS)
            start = time.perf_counter()
            for batch in islice(batches, steps):
                out = step(*batch)
                if name not in BASELINES:  # the loop reads the losses of every step
                    tf.nest.map_structure(np.asarray, out)
            tf.nest.map_structure(np.asarray, out)
            seconds[name].append((time.perf_counter() - start) / steps)
        for name, product in products.items():
            time.sleep(SETTLE_SECONDS)
            start = time.perf_counter()
            product().numpy()
            seconds[name].append(time.perf_counter() - start)
        log.info("window %d of %d", window + 1, windows)
    median = {name: float(np.median(values)) for name, values in seconds.items()}

    loop = loop_seconds(trainer, data, median, classifier)
    per_image = images_per_step(config)
    rates = {name: per_image / median[name] for name in BASELINES}
    rates["project_step"] = per_image / step_seconds(config, median)
    rates["loop"] = per_image / sum(loop.values())
    flops = step_flops(config)
    peaks = {name: 2 * MATMUL_SIZE**3 / median[name] / 1e9 for name in products}
    ratios = {
        "loop_over_plain_bfloat16": rates["loop"] / rates["plain_bfloat16"],
        "loop_over_plain_float32": rates["loop"] / rates["plain_float32"],
        "loop_share_of_bfloat16_peak": rates["loop"] * flops / 1e9 / peaks["bfloat16"],
    }
    ratios = {name: round(ratio, 3) for name, ratio in ratios.items()}
    total = sum(loop.values())
    return {
        "images_per_second": {name: round(rate, 1) for name, rate in rates.items()},
        **ratios,
        "matmul_gflops": {name: round(peak, 1) for name, peak in peaks.items()},
        "mflop_per_image": round(flops / 1e6, 1),
        "profile": {
            name: {"ms_per_step": round(1000 * value, 2), "share": round(value / total, 3)}
            for name, value in loop.items()
        },
        "batch_size": config.batch_size,
        "precision": placement.precision,
        "device": placement.device,
        "machine": machine.describe(),
        "windows": windows,
        "steps_per_window": steps,
        "targets": judge(
            {
                "loop_over_plain_bfloat16_step": ratios["loop_over_plain_bfloat16"],
                "loop_share_of_bfloat16_peak": ratios["loop_share_of_bfloat16_peak"],
            },
            dict(goals),
        ),
    }


def step_seconds(config: TrainSettings, median: dict[str, float]) -> float:
    """The step's mean time: with R1 on, every `r1_every`-th step is the regularised one."""
    if "step_r1" not in median:
        return median["step"]
    share = 1 / config.r1_every
    return (1 - share) * median["step"] + share * median["step_r1"]


def loop_seconds(trainer: Trainer, data, median: dict[str, float], classifier) -> dict[str, float]:
    """Seconds per step of each part of the loop (`PARTS`). The step's parts come from the
    windows, scaled so that they add up to the whole step as measured; the events are timed
    here and spread over the steps between them."""
    config = trainer.config
    r1 = 0.0
    if "step_r1" in median:  # a difference within the timing's noise can come out below 0
        extra = median["part_discriminator_r1"] - median["part_discriminator"]
        r1 = max(extra, 0.0) / config.r1_every
    parts = {
        "discriminator": median["part_discriminator"],
        "r1": r1,
        "generator": median["part_generator"],
        "average": median["part_average"],
    }
    scale = step_seconds(config, median) / sum(parts.values())
    seconds = {name: value * scale for name, value in parts.items()}
    steps_per_epoch = len(data[0]) // images_per_step(config)
    total_steps = steps_per_epoch * config.epochs
    with tempfile.TemporaryDirectory() as folder:
        seconds["batches"] = batch_seconds(trainer, data, Path(folder))
        events = event_seconds(trainer, data, Path(folder), classifier)
    counts = event_counts(config, steps_per_epoch, total_steps)
    for name, each in events.items():
        seconds[name] = each * counts[name] / total_steps
    return seconds


def event_counts(config: TrainSettings, steps_per_epoch: int, total_steps: int) -> dict[str, int]:
    """How often a run of `total_steps` tracks, draws a frame and saves a checkpoint (as
    `pipeline.training.loop` decides: every so many steps, and at the last; tracking also at
    each epoch's end)."""
    steps = range(1, total_steps + 1)
    tracked = [
        step
        for step in steps
        if config.track_every
        and (step % config.track_every == 0 or step % steps_per_epoch == 0 or step == total_steps)
    ]
    return {
        "tracking": len(tracked),
        "frames": sum(step % config.sample_every == 0 or step == total_steps for step in steps),
        "checkpoints": sum(
            step % config.checkpoint_every == 0 or step == total_steps for step in steps
        ),
    }


def batch_seconds(trainer: Trainer, data, folder: Path, steps: int = 64) -> float:
    """Per step: the next batch from the input pipeline, the losses read back, recorded and
    logged to dvclive, as the loop does (with losses of a finished step), over the first
    `steps` of an epoch."""
    history = History(LossLog(), [])
    live = LiveRecord(folder / "live", history)
    batches = islice(epoch_batches(data, trainer.config, 0), steps)
    losses_now = (tf.constant(1.0), tf.constant(1.0))
    step = 0
    start = time.perf_counter()
    for step, batch in enumerate(batches, start=1):
        inputs = trainer.step_inputs(*batch)
        tf.nest.map_structure(np.asarray, inputs)
        d_loss, g_loss = (float(v) for v in losses_now)
        history.losses.rows.append((step, 1, d_loss, g_loss))
        live.losses(step, 1, d_loss, g_loss)
        live.summarize(step, 0.0)
    return (time.perf_counter() - start) / max(step, 1)


def event_seconds(trainer: Trainer, data, folder: Path, classifier) -> dict[str, float]:
    """One tracking measurement (with its recalibration), one progress frame (recalibration
    shared with the tracking at the same step) and one checkpoint, timed once each."""
    config = trainer.config
    fixed = TRAINING_NOISE.draw(np.random.default_rng(0), config.grid_size**2, trainer.noise_dim)
    trainer.draw(fixed)  # traced once, as in a run
    seconds = {"tracking": 0.0}
    if classifier is not None and config.track_every:
        path, classifier_config = classifier
        tracker = QualityTracker.from_classifier(
            path,
            data[0],
            classifier_config,
            samples=config.track_samples,
            seed=config.seed,
            noise_dim=trainer.noise_dim,
            classes=trainer.classes,
        )
        tracker.measure(trainer.draw, 0, 0.0)  # its classifier traced once, as in a run
        trainer.step.assign_add(1)  # a step whose average is not yet recalibrated
        start = time.perf_counter()
        tracker.measure(trainer.draw, int(trainer.step.numpy()), 0.0)
        seconds["tracking"] = time.perf_counter() - start
    store = CheckpointStore(folder / "checkpoints", trainer.checkpoint_parts, trainer.step, {})
    history = store.resume(1, fresh=True)
    start = time.perf_counter()
    store.save_frame(1, image_io.make_grid(trainer.draw(fixed), config.grid_size))
    seconds["frames"] = time.perf_counter() - start
    start = time.perf_counter()
    store.save(history)
    seconds["checkpoints"] = time.perf_counter() - start
    return seconds
