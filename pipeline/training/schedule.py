"""The learning-rate schedule of `train.lr_schedule: anneal`."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


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
