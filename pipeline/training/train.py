"""The `train` stage: a GAN family on the verified IDX files, resumable from checkpoints.

The stage takes the resolved train section (`pipeline.families.resolve`), builds the family's
`Trainer`, resumes the checkpoint folder when its fingerprint matches
(`pipeline.training.checkpoints`), runs the loop (`pipeline.training.loop`) and writes the
generator, its description for the export stage, the family's own models, the plots and the
metrics, each atomically.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipeline.config import ClassifierConfig, TrainSettings
from pipeline.data.datasets import DATASETS, load_split
from pipeline.errors import ConfigError, TrainingError
from pipeline.families import distributes, resolved
from pipeline.gan.placement import choose_placement, precision_policy
from pipeline.runtime import machine
from pipeline.runtime.contract import Provenance
from pipeline.runtime.noise import TRAINING_NOISE
from pipeline.runtime.revision import code_revision
from pipeline.storage import images as image_io
from pipeline.storage.files import (
    exclusive_lock,
    sha256_of,
    write_folder_atomically,
    write_json_atomically,
)
from pipeline.storage.keras_files import save_keras
from pipeline.training import distribution
from pipeline.training.checkpoints import CheckpointStore, History, fingerprint, short_reason
from pipeline.training.distribution import Distribution
from pipeline.training.live import LiveRecord
from pipeline.training.loop import LoopPlan, images_per_step, run_loop
from pipeline.training.tracking import QualityTracker
from pipeline.training.tracking import summary as tracking_summary
from pipeline.training.trainer import Trainer

log = logging.getLogger(__name__)

FAMILY_FOLDER = "family-keras"  # under --models: the family's other networks (empty when none)


@dataclass(frozen=True)
class TrainPaths:
    """Where the stage reads and writes; all of it comes from the command line (dvc.yaml)."""

    data: Path
    models: Path
    checkpoints: Path
    plots: Path
    metrics: Path
    live: Path  # dvclive's folder: the losses and quality as they are made
    classifier: Path | None = None  # the classifier stage's model, for quality tracking
    classifier_config: ClassifierConfig | None = None  # whose validation split it holds out


def dataset_name(train_images_sha256: str) -> str:
    """The known dataset these training images belong to, or `custom`."""
    for spec in DATASETS.values():
        if any(f.sha256 == train_images_sha256 for f in spec.files):
            return spec.name
    return "custom"


def train(config: TrainSettings, paths: TrainPaths, *, fresh: bool = False) -> dict[str, Any]:
    """Train (or resume), then write the generator, plots and metrics; returns the metrics.

    One run at a time per checkpoint folder: a second one fails at once instead of both writing.
    Under `multi-worker` only the chief uses the folders given; every other worker starts from
    a copy of the chief's checkpoints (the folder must be shared, as it is between processes of
    one machine), checkpoints to a temporary folder (TensorFlow's pattern: all workers save, one
    keeps it) and writes nothing else.
    """
    config = resolved(config)
    # Before any TF op.
    setting = config.distribute if distributes(config) else "off"  # `auto`: the others refused
    distributed = distribution.choose(setting, config.replicas)
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
    config: TrainSettings, paths: TrainPaths, distributed: Distribution, *, fresh: bool, write: bool
) -> dict[str, Any]:
    images, labels = load_split(paths.data, "train")
    per_step = images_per_step(config)
    if len(images) < per_step:
        raise TrainingError(
            f"{paths.data}: {len(images)} training images, fewer than one step takes "
            f"({per_step}: train.batch_size {config.batch_size} x "
            f"{per_step // config.batch_size} discriminator steps)"
        )
    data_sha256 = sha256_of(paths.data / "train-images-idx3-ubyte")
    steps_per_epoch = len(images) // per_step  # the last partial step is dropped
    total_steps = steps_per_epoch * config.epochs

    placement = choose_placement(config.precision)
    if placement.device.startswith("CPU"):
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    with precision_policy(placement.precision):
        trainer = Trainer(config, placement, total_steps, distributed, (images, labels))
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
    live = LiveRecord(paths.live, history) if write else None
    fixed_noise = TRAINING_NOISE.draw(
        np.random.default_rng(config.seed), config.grid_size**2, trainer.noise_dim
    )
    plan = LoopPlan(steps_per_epoch, total_steps, fixed_noise)
    try:
        run_loop(trainer, (images, labels), plan, store, history, tracker, live)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        raise TrainingError(
            f"another worker stopped ({short_reason(error)}): the job cannot go on; start "
            "every worker again to resume from the last checkpoint"
        ) from error

    metrics = summarize(trainer, history, steps_per_epoch)
    if live is not None:
        live.close(metrics["steps"])
    metrics |= {"training_set": dataset_name(data_sha256), "training_images": len(images)}
    code_meanings = trainer.family.after_training(trainer, tracker, metrics)
    if write:  # the metrics file last: it holds the family's parity figures
        provenance = run_provenance(config, data_sha256, metrics["steps"])
        write_folder_atomically(
            paths.models / FAMILY_FOLDER,
            lambda folder: trainer.family.write_models(
                trainer, folder, (images, labels), provenance, metrics
            ),
        )
        write_outputs(
            trainer, store, paths, history, provenance, metrics, fixed_noise, code_meanings
        )
    return metrics


def where(distributed: Distribution) -> str:
    """`2 replicas (mirrored)`, and this process's task under multi-worker."""
    task = f", this process {distributed.task}" if distributed.name == "multi-worker" else ""
    return f"{distributed.replicas} replicas ({distributed.name}{task})"


def quality_tracker(
    config, paths: TrainPaths, images: np.ndarray, trainer: Trainer
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


def summarize(trainer: Trainer, history: History, steps_per_epoch: int) -> dict[str, Any]:
    """metrics/train.json: the run's losses, time and speed, where it ran, its tracked
    quality, and the resolved train settings it ran with."""
    config, placement = trainer.config, trainer.placement
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
        "resolved": config.as_dict(),
    }


def run_provenance(config, data_sha256: str, steps: int) -> Provenance:
    """What made this run's exported models: the generator's and the classifiers' metadata."""
    return Provenance(
        dataset=dataset_name(data_sha256),
        train_images_sha256=data_sha256,
        train_params=config.as_dict(),
        train_steps=steps,
        train_code_revision=code_revision(),
    )


def write_outputs(
    trainer: Trainer,
    store: CheckpointStore,
    paths: TrainPaths,
    history: History,
    provenance: Provenance,
    metrics: dict[str, Any],
    fixed_noise: np.ndarray,
    code_meanings: str,
) -> None:
    """Everything later stages and `dvc plots`/`dvc metrics` read, each file written atomically."""
    config = trainer.config
    paths.models.mkdir(parents=True, exist_ok=True)
    paths.plots.mkdir(parents=True, exist_ok=True)
    paths.metrics.parent.mkdir(parents=True, exist_ok=True)

    generator_path = paths.models / "generator.keras"
    save_keras(trainer.exported.saved_generator(), generator_path)
    contract = trainer.family.contract(code_meanings)
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
    write_json_atomically(paths.metrics, metrics)
    log.info("wrote %s, %s and %s", generator_path, paths.plots, paths.metrics)
