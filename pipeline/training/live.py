"""The run's record as DVC reads it while it trains (dvclive): the losses at every step, each
quality measurement at its step, and the current values in `metrics.json`, which `dvc exp show`
lists and `dvc plots show` draws mid-run.

The folder is written again from the checkpoint's history whenever a run starts or resumes:
the rows of steps after the last checkpoint (a killed run's) are dropped, so a resumed run's
tables equal an uninterrupted run's. The speed (`images_per_second`) is in `metrics.json` only:
it is the machine's, not the run's.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.training.checkpoints import History
from pipeline.training.tracking import QUALITY_COLUMNS, Measurement

LOSSES = ("d_loss", "g_loss")
SUMMARY_EVERY = 10  # steps between rewrites of metrics.json


class LiveRecord:
    """dvclive's files in `folder`, begun from `history`."""

    def __init__(self, folder: Path, history: History):
        from dvclive import Live

        # Experiments and dvc.yaml entries are DVC's and dvc.yaml's business here.
        self.live = Live(str(folder), save_dvc_exp=False, dvcyaml=False)
        for step, epoch, d_loss, g_loss in history.losses.rows:
            self.losses(step, epoch, d_loss, g_loss)
        for measurement in history.quality:
            self.quality(measurement)
        self.live.make_summary()

    def losses(self, step: int, epoch: int, d_loss: float, g_loss: float) -> None:
        self.live.step = step
        self.live.log_metric("d_loss", d_loss)
        self.live.log_metric("g_loss", g_loss)
        self.live.log_metric("epoch", epoch, plot=False)

    def quality(self, measurement: Measurement) -> None:
        self.live.step = measurement.step
        for column in QUALITY_COLUMNS[1:]:
            self.live.log_metric(column, getattr(measurement, column))

    def summarize(self, step: int, images_per_second: float) -> None:
        """`metrics.json` now, every `SUMMARY_EVERY` steps (the tables grow at every step)."""
        if step % SUMMARY_EVERY == 0:
            self.live.step = step
            self.live.log_metric("images_per_second", round(images_per_second), plot=False)
            self.live.make_summary()

    def close(self, step: int) -> None:
        self.live.step = step
        self.live.make_summary()
