"""The persistent checkpoint folder of the train stage, and what may resume from it.

The folder outlives the stage (DVC `persist`). A fingerprint of everything that shapes the
weights guards it, so a checkpoint made with other settings, other data or other code is never
resumed: the resolved train settings but those that do not shape the weights, the data's
hash, the precision, and a hash of every module of the families, their building blocks and the
training package (`SHAPING_CODE`). Raising `train.epochs` after a finished run continues it,
which gives the same weights as training that long from the start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline.errors import TrainingError
from pipeline.gan.placement import Placement
from pipeline.storage import images as image_io
from pipeline.storage.files import write_json_atomically
from pipeline.training.tracking import QUALITY_COLUMNS, Measurement

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]
# The code that shapes the weights: the families, their networks, losses and regularisers, and
# the trainer with its loop and distribution.
SHAPING_CODE = ("families", "gan", "training")
# What only changes pictures and bookkeeping: not a DVC dependency of the stage either.
COSMETIC = ("sample_every", "checkpoint_every", "grid_size")
# Left out of the fingerprint: besides the cosmetic keys, the epoch count (a longer run
# continues a shorter one) and how many devices share a step (a checkpoint resumes under any
# strategy, and one made under a strategy on a single device), and the switch that starts over.
NOT_IN_FINGERPRINT = ("epochs", *COSMETIC, "distribute", "replicas", "batch_norm", "fresh")


def shaping_code_sha256(package: Path = PACKAGE) -> str:
    """SHA-256 over the path and bytes of every module under `SHAPING_CODE` of `package`."""
    code = hashlib.sha256()
    for folder in SHAPING_CODE:
        for path in sorted((package / folder).rglob("*.py")):
            code.update(str(path.relative_to(package)).encode() + b"\0")
            code.update(path.read_bytes())
    return code.hexdigest()


def fingerprint(config, placement: Placement, data_sha256: str) -> dict[str, Any]:
    """What must match for a checkpoint to resume, for the resolved `config`."""
    ignored = set(NOT_IN_FINGERPRINT)
    if config.lr_schedule != "constant":
        ignored.discard("epochs")  # the schedule's length is the run's
    settings = {k: v for k, v in config.as_dict().items() if k not in ignored}
    return {
        "settings": settings,
        "precision": placement.precision,
        "images_sha256": data_sha256,
        "code_sha256": shaping_code_sha256(),
    }


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
        reason = "asked to" if fresh else self._mismatch(total_steps)
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
                f"({short_reason(error)}); training stopped, {kept}"
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


def short_reason(error: Exception) -> str:
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
