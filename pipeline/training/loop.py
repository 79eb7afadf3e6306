"""The training loop: batches in their seeded order, the step, and what happens between steps
(tracking, progress frames, checkpoints, progress on stderr).

Each epoch's order of batches is a permutation drawn from (seed, epoch), so a run resumed at
any step sees the batches an uninterrupted one would.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pipeline.config import TrainSettings
from pipeline.errors import TrainingError
from pipeline.storage import images as image_io
from pipeline.training.checkpoints import History

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopPlan:
    steps_per_epoch: int
    total_steps: int
    fixed_noise: np.ndarray  # the progress frames' noise, (grid_size**2, noise_dim)


def run_loop(trainer, data, plan: LoopPlan, store, history: History, tracker, live) -> None:
    """Train to `plan.total_steps`; `tracker` and `live` (a `LiveRecord`) may be None (a
    worker that writes nothing)."""
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
                if live is not None:
                    live.losses(step, epoch + 1, d_loss, g_loss)
                    live.summarize(step, steps_per_second * images_per_step(config))
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
                    trainer.exported.offer(measured)
                    if live is not None:
                        live.quality(measured)
                    log.info(
                        "step %d: validation Frechet distance %.3f, KID %.4f, smallest class "
                        "share %.3f",
                        step,
                        measured.frechet_distance,
                        measured.kernel_distance,
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


def images_per_step(config: TrainSettings) -> int:
    """A batch for each discriminator step of one training step."""
    return config.batch_size * config.critic_steps


# The next batches are ready while a step runs. Without tf.data's autotuning: its thread sleeps
# for periods that double up to a minute, and an epoch's iterator waits for it to wake before it
# is gone, so the next epoch began late (docs/PERFORMANCE.md).
PREFETCH_BATCHES = 2
WITHOUT_AUTOTUNE = tf.data.Options()
WITHOUT_AUTOTUNE.autotune.enabled = False


def epoch_batches(data: tuple[np.ndarray, np.ndarray], config, epoch: int, *, skip: int = 0):
    """One epoch's inputs of the training step, (uint8 images, labels) of `images_per_step`
    each, in the order fixed by (seed, epoch), minus the first `skip`."""
    images, labels = data
    per_step = images_per_step(config)
    order = np.random.default_rng([config.seed, epoch]).permutation(len(images))
    usable = (len(images) // per_step) * per_step
    order = order[skip * per_step : usable]
    dataset = tf.data.Dataset.from_tensor_slices((images[order], labels[order]))
    dataset = dataset.batch(per_step, drop_remainder=True).prefetch(PREFETCH_BATCHES)
    return dataset.with_options(WITHOUT_AUTOTUNE)
