"""Where training runs, decided from the devices (injected here: these machines have no GPU),
and the mixed_float16 path a pre-Ampere GPU takes, run for real on the CPU."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import TrainConfig
from pipeline.families import resolve
from pipeline.gan.placement import Placement, decide_placement, precision_policy
from pipeline.training.trainer import Trainer


@pytest.mark.parametrize(
    ("capabilities", "cpu_bf16", "expected"),
    [
        ([], False, Placement("CPU:0", "float32")),
        ([], True, Placement("CPU:0", "mixed_bfloat16")),
        ([(8, 0)], False, Placement("GPU:0", "mixed_bfloat16")),  # Ampere: native bfloat16
        ([(9, 0), (9, 0)], False, Placement("GPU:0", "mixed_bfloat16")),
        ([(7, 5)], True, Placement("GPU:0", "mixed_float16")),  # Turing: float16, loss scaling
        ([None], False, Placement("GPU:0", "mixed_float16")),  # unknown: the safe choice
    ],
)
def test_auto_picks_the_device_and_precision(capabilities, cpu_bf16, expected):
    assert decide_placement("auto", capabilities, cpu_bf16) == expected


def test_an_explicit_precision_is_kept_on_any_device():
    assert decide_placement("float32", [(8, 6)], True) == Placement("GPU:0", "float32")
    assert decide_placement("mixed_float16", [], False) == Placement("CPU:0", "mixed_float16")


def test_mixed_float16_trains_with_loss_scaling():
    """Two real steps under mixed_float16 (float16 is emulated on this CPU: slow, but the code
    path a GPU without bfloat16 takes): the optimizers scale the loss, the losses are finite
    and the weights move."""
    keras.utils.set_random_seed(0)
    config = resolve(
        TrainConfig(noise_dim=8, batch_size=8, precision="mixed_float16", track_every=0)
    )
    with precision_policy("mixed_float16"):
        trainer = Trainer(config, Placement("CPU:0", "mixed_float16"), total_steps=2)
    for optimizer in (trainer.generator_optimizer, trainer.discriminator_optimizer):
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert trainer.generator.layers[1].compute_dtype == "float16"
    before = [w.copy() for w in trainer.generator.get_weights()]
    real = tf.constant(np.random.default_rng(0).integers(0, 255, (8, 28, 28), np.uint8))
    for _ in range(2):
        d_loss, g_loss = (float(v) for v in trainer.train_step(real, tf.zeros(8, tf.int32)))
        assert np.isfinite(d_loss) and np.isfinite(g_loss)
    scale = float(trainer.generator_optimizer.dynamic_scale)
    assert scale > 1  # the loss really was scaled (Keras starts at 2**15)
    after = trainer.generator.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
