"""Adam with each weight's update done by TensorFlow's fused kernel.

Keras's Adam updates a weight in about ten elementwise ops, each a pass over memory, and the
generator has 6.7 million weights; `ResourceApplyAdam` reads and writes each weight and its two
moments once (`tools/levers.py` measures the two; docs/PERFORMANCE.md). The update is Adam's,
with one difference in rounding: the kernel takes 1 - beta_2 of the float32 beta_2
(0.99900001 -> 0.00099998713), where Keras rounds 1 - 0.999 computed in float64 (0.001).
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _handle(variable) -> tf.Tensor:
    """The resource handle of a Keras variable or of the TensorFlow variable it holds (under a
    strategy's update, the handle of this device's copy)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` (its variables, schedules and checkpoints) whose `update_step`
    is one `ResourceApplyAdam` per weight. No amsgrad."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("FusedAdam has no amsgrad")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )
