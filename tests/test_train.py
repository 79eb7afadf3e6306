"""The train stage end to end on tiny synthetic data: outputs, determinism, resume, guards."""

import json
import logging
import math
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import (
    STABILISED,
    declared_paths,
    invoke,
    invoke_ok,
    live_rows,
    live_tables,
    set_params,
    stage_args,
)
from pipeline.config import TrainConfig, load_train_config
from pipeline.data.datasets import CHECKSUMS_FILE, checksums_text
from pipeline.errors import ConfigError
from pipeline.families import resolve
from pipeline.gan import networks
from pipeline.gan.optimizers import FusedAdam
from pipeline.gan.placement import Placement
from pipeline.training.loop import epoch_batches, images_per_step
from pipeline.training.trainer import Trainer


@pytest.fixture
def workdir(tmp_path, tiny_dataset, monkeypatch):
    """A folder laid out like the repository, with the tiny dataset as data/mnist."""
    tiny_dataset.write_folder(tmp_path / "data" / "mnist")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    return invoke(*args)


def train_ok(*extra: str):
    return json.loads(invoke_ok(*stage_args("train"), *extra).stdout)


def generator_weights(folder: Path) -> list[np.ndarray]:
    return keras.saving.load_model(folder / "models" / "generator.keras").get_weights()


def test_two_steps_write_every_output_dvc_yaml_declares(workdir):
    set_params(workdir, train=dict(epochs=1, sample_every=1, **STABILISED))
    metrics = train_ok()
    assert metrics["steps"] == 2
    assert metrics["device"] == "CPU:0"
    assert metrics["machine"]["cores"] >= 1 and "tensorflow" in metrics["machine"]["versions"]
    for path in declared_paths("train"):
        assert (workdir / path).exists(), path
    for loss in ("d_loss", "g_loss"):
        rows = live_rows(workdir, loss)
        assert rows[0] == ["step", loss]
        assert [row[0] for row in rows[1:]] == ["1", "2"]
    live = json.loads((workdir / "dvclive/train/metrics.json").read_text())
    assert (live["step"], live["epoch"], live["d_loss"]) == (2, 1, metrics["final_d_loss"])
    assert sorted(p.name for p in (workdir / "plots/train/progress").iterdir()) == [
        "step_0000000.png",
        "step_0000001.png",
        "step_0000002.png",
    ]
    saved = json.loads((workdir / "metrics/train.json").read_text())
    assert saved == metrics
    described = json.loads((workdir / "models/generator.json").read_text())
    assert described["noise_dim"] == 96
    assert described["noise"] == {"distribution": "uniform", "low": -1.0, "high": 1.0}
    assert described["provenance"]["dataset"] == "custom"
    assert described["provenance"]["train_params"]["batch_size"] == 32
    model = keras.saving.load_model(workdir / "models/generator.keras")
    assert model.output.shape == (None, 28, 28, 1)
    assert model.layers[1].dtype_policy.name == "float32"


def test_a_resumed_run_equals_an_uninterrupted_one(workdir, tiny_dataset, tmp_path_factory):
    """With R1 and the weight average, whose step counts the checkpoint must carry."""
    set_params(workdir, train=dict(epochs=3, **STABILISED))
    train_ok()
    straight = live_tables(workdir)
    straight_weights = generator_weights(workdir)

    other = tmp_path_factory.mktemp("resumed")
    tiny_dataset.write_folder(other / "data" / "mnist")
    os.chdir(other)
    set_params(other, train=dict(epochs=1, **STABILISED))
    assert train_ok()["steps"] == 2
    # More epochs: continues from the checkpoint at step 2.
    set_params(other, train=dict(epochs=3, **STABILISED))
    assert train_ok()["steps"] == 6
    assert live_tables(other) == straight
    for resumed, reference in zip(generator_weights(other), straight_weights, strict=True):
        np.testing.assert_array_equal(resumed, reference)


def test_a_finished_run_is_not_retrained(workdir):
    set_params(workdir, train=dict(epochs=1))
    train_ok()
    checkpoint_index = workdir / "checkpoints/train/tf/checkpoint"
    stamp = checkpoint_index.stat().st_mtime_ns
    assert train_ok()["steps"] == 2
    assert checkpoint_index.stat().st_mtime_ns == stamp


def test_other_settings_start_over_and_so_does_fresh(workdir, caplog):
    set_params(workdir, train=dict(epochs=1))
    train_ok()
    set_params(workdir, train=dict(epochs=1, loss="lsgan"))
    with caplog.at_level(logging.INFO, logger="pipeline"):
        assert train_ok()["steps"] == 2
    assert "starting over (the checkpoint was made with another train.loss)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline"):
        assert train_ok("--fresh")["steps"] == 2  # the same settings, finished: still retrained
    assert "starting over (asked to)" in caplog.text
    caplog.clear()
    set_params(workdir, train=dict(epochs=1, loss="lsgan", fresh=True))  # dvc exp run -S
    with caplog.at_level(logging.INFO, logger="pipeline"):
        assert train_ok()["steps"] == 2
    assert "starting over (asked to)" in caplog.text


def test_a_change_to_the_code_that_shapes_the_weights_starts_over(workdir, caplog, monkeypatch):
    """The fingerprint hashes the families, their building blocks and the training package: a
    checkpoint the old step made is never resumed by a new one."""
    from pipeline.training import checkpoints

    set_params(workdir, train=dict(epochs=1))
    train_ok()
    checkpoint_index = workdir / "checkpoints/train/tf/checkpoint"
    stamp = checkpoint_index.stat().st_mtime_ns
    changed = checkpoints.shaping_code_sha256()[::-1]
    monkeypatch.setattr(checkpoints, "shaping_code_sha256", lambda: changed)
    with caplog.at_level(logging.INFO, logger="pipeline"):
        assert train_ok()["steps"] == 2
    assert "starting over (the checkpoint was made with another code_sha256)" in caplog.text
    assert checkpoint_index.stat().st_mtime_ns != stamp


def test_the_code_hash_covers_every_module_of_the_families_and_the_training_package(tmp_path):
    import shutil

    from pipeline.training import checkpoints

    package = tmp_path / "pipeline"
    shutil.copytree(checkpoints.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    original = checkpoints.shaping_code_sha256(package)
    assert original == checkpoints.shaping_code_sha256()
    for module in ("families/unconditional/__init__.py", "gan/losses.py", "training/trainer.py"):
        path = package / module
        text = path.read_text()
        path.write_text(text + "\n")
        assert checkpoints.shaping_code_sha256(package) != original, module
        path.write_text(text)
    (package / "reporting/report.py").write_text("")  # not code that shapes the weights
    assert checkpoints.shaping_code_sha256(package) == original


def test_divergence_from_the_first_step_stops_at_once(workdir):
    set_params(workdir, train=dict(epochs=40, learning_rate=1e38, discriminator_learning_rate=1e38))
    result = run(*stage_args("train"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: non-finite loss at step 1 (epoch 1): d_loss=")
    assert result.output.endswith("training stopped, the last good checkpoint (none yet) is kept\n")
    assert not (workdir / "metrics/train.json").exists()


def test_a_non_finite_loss_names_the_step_and_keeps_the_last_good_checkpoint(workdir):
    set_params(workdir, train=dict(epochs=1))
    train_ok()
    # Blow up the discriminator's last layer inside the saved checkpoint, as a diverged run would.
    trainer = Trainer(
        resolve(load_train_config(workdir / "params.yaml")), Placement("CPU:0", "float32")
    )
    prefix = tf.train.latest_checkpoint(workdir / "checkpoints/train/tf")
    checkpoint = tf.train.Checkpoint(**trainer.checkpoint_parts)
    checkpoint.restore(prefix).assert_consumed()
    kernel = trainer.discriminator.get_layer("logits").kernel
    kernel.assign(tf.fill(kernel.shape, np.finfo(np.float32).max))
    checkpoint.write(prefix)
    saved = {p.name: p.read_bytes() for p in (workdir / "checkpoints/train/tf").iterdir()}

    set_params(workdir, train=dict(epochs=2))
    result = run(*stage_args("train"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: non-finite loss at step 3 (epoch 2): d_loss=")
    assert result.output.endswith(
        "the last good checkpoint (checkpoints/train/tf/ckpt-2) is kept\n"
    )
    assert {p.name: p.read_bytes() for p in (workdir / "checkpoints/train/tf").iterdir()} == saved


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"loss": "hinge"},
            "train.loss: expected one of gan, lsgan, softmax, wgan, wgan-gp, got 'hinge'",
        ),
        ({"batch_size": 0}, "train.batch_size: expected auto or a positive integer, got 0"),
        ({"epochs": 0}, "train.epochs: expected auto or a positive integer, got 0"),
    ],
)
def test_bad_params_are_one_line_naming_the_key(workdir, params, message):
    set_params(workdir, train=dict(**params))
    result = run(*stage_args("train"))
    assert result.exit_code == 1
    assert result.output == f"Error: params.yaml: {message}\n"


def test_a_missing_data_folder_is_a_bad_parameter(workdir):
    set_params(workdir)
    result = run("train", "--data", "data/nothing")
    assert result.exit_code == 2
    assert (
        "Invalid value for '--data': no such folder: data/nothing (run `dcgan download` first)"
        in (result.output)
    )


def test_training_images_changed_since_their_download_are_refused(workdir, tiny_dataset):
    set_params(workdir)
    data = workdir / "data/mnist"
    (data / CHECKSUMS_FILE).write_text(checksums_text(tiny_dataset.spec.files))
    images = data / "train-images-idx3-ubyte"
    changed = bytearray(images.read_bytes())
    changed[16] ^= 0xFF  # one pixel of the first image
    images.write_bytes(bytes(changed))
    result = run(*stage_args("train"))
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: data/mnist/train-images-idx3-ubyte changed since it was downloaded (SHA-256 "
    )
    assert result.output.count("\n") == 1
    assert not (workdir / "checkpoints/train").exists()


def test_kill_9_then_rerun_resumes_and_ends_at_the_same_step(workdir, caplog):
    # 20 steps, with R1 and the weight average as by default.
    set_params(
        workdir,
        train=dict(epochs=10, checkpoint_every=4, sample_every=100, **STABILISED),
    )
    command = [sys.executable, "-m", "pipeline", *stage_args("train")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = workdir / "checkpoints/train/tf/checkpoint"
    deadline = time.monotonic() + 120
    while not index.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (workdir / "metrics/train.json").exists()

    with caplog.at_level(logging.INFO, logger="pipeline"):
        metrics = train_ok()
    assert "resuming from the checkpoint at step " in caplog.text
    assert metrics["steps"] == 20
    resumed = live_tables(workdir)
    assert [row[0] for row in live_rows(workdir, "d_loss")[1:]] == [str(s) for s in range(1, 21)]
    train_ok("--fresh")
    assert live_tables(workdir) == resumed


def test_a_folder_that_is_not_a_checkpoint_folder_is_never_cleared(workdir):
    set_params(workdir, train=dict(epochs=1))
    precious = workdir / "notes"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    for extra in ([], ["--fresh"]):
        result = run(*stage_args("train"), "--checkpoints", "notes", *extra)
        assert result.exit_code == 1
        assert result.output == (
            "Error: notes is not empty and holds no training checkpoint; "
            "name an empty or new folder with --checkpoints\n"
        )
    assert (precious / "thesis.txt").read_text() == "years of work"


def test_a_second_run_on_the_same_checkpoints_refuses_while_the_first_runs(workdir):
    set_params(workdir, train=dict(epochs=50, checkpoint_every=1000, sample_every=1000))
    command = [sys.executable, "-m", "pipeline", *stage_args("train")]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        fingerprint = workdir / "checkpoints/train/fingerprint.json"
        deadline = time.monotonic() + 120
        while not fingerprint.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the second started"
        second = run(*stage_args("train"), "--fresh")
        assert second.exit_code == 1
        assert second.output == (
            "Error: the checkpoint folder checkpoints/train is in use by another process "
            "(it holds checkpoints/.train.lock); wait for it to finish, or stop it\n"
        )
        assert fingerprint.exists()  # --fresh did not clear the running one's folder
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    set_params(workdir, train=dict(epochs=1))
    assert train_ok()["steps"] == 2  # the killed holder's lock is gone with it


def test_a_full_disk_is_one_clear_error_and_keeps_the_last_good_checkpoint(workdir):
    """In a process of its own, as `dcgan` runs: what it prints is our log and the error line,
    none of TensorFlow's import-time notices (oneDNN, CUDA drivers), which are not for the user."""
    set_params(workdir, train=dict(epochs=1))
    assert train_ok()["steps"] == 2
    set_params(workdir, train=dict(epochs=2, checkpoint_every=1))

    def small_files():  # a file-size limit: writes past 1 MB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))

    command = [sys.executable, "-m", "pipeline", *stage_args("train")]
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=small_files)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    for noise in ("absl::InitializeLog", "cudart_stub", "oneDNN custom operations", "I0000"):
        assert noise not in done.stderr, done.stderr
    assert "INFO training the unconditional model" in done.stderr  # our own log still shows
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: cannot write the checkpoint at step 3 to checkpoints/train")
    assert "the checkpoint at step 2 is kept" in last

    metrics = train_ok()
    assert metrics["steps"] == 4


# 20 steps; a checkpoint every 3 and a progress frame after every step (the kill clock); R1 and
# the weight average as by default.
KILLED_RUN = dict(epochs=10, checkpoint_every=3, sample_every=1, **STABILISED)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_dataset):
    """The losses and generator weights of the 20-step run, never interrupted."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    tiny_dataset.write_folder(folder / "data" / "mnist")
    set_params(folder, train=KILLED_RUN)
    previous = Path.cwd()
    os.chdir(folder)
    try:
        train_ok()
    finally:
        os.chdir(previous)
    return live_tables(folder), generator_weights(folder)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill_9_at_a_random_moment_then_rerun_gives_the_uninterrupted_result(
    workdir, uninterrupted, seed
):
    """The moment is a random step (1-19) plus a random fraction of a step: mid-step, mid-frame,
    mid-checkpoint. Whatever it hits, the rerun resumes from an intact checkpoint and ends with
    the same losses and weights as a run that was never killed."""
    rng = np.random.default_rng(seed)
    step, jitter = int(rng.integers(1, 20)), float(rng.uniform(0, 0.1))
    set_params(workdir, train=KILLED_RUN)
    command = [sys.executable, "-m", "pipeline", *stage_args("train")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    frame = workdir / f"checkpoints/train/progress/step_{step:07d}.png"
    deadline = time.monotonic() + 120
    while not frame.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(jitter)
    process.send_signal(signal.SIGKILL)
    process.wait()

    assert train_ok()["steps"] == 20
    losses, weights = uninterrupted
    assert live_tables(workdir) == losses
    for resumed, reference in zip(generator_weights(workdir), weights, strict=True):
        np.testing.assert_array_equal(resumed, reference)


def test_wgan_gp_trains_through_the_cli(workdir):
    """64 images, batch 8, 5 critic steps: one generator step takes 40 images, so an epoch is
    one step; two epochs make two steps, resumable and logged like the others. (That the stage
    may resolve a resolved section, wgan's unused betas included, is
    `test_config.py::test_every_auto_is_resolved_once_and_resolving_again_changes_nothing`.)"""
    train = dict(loss="wgan-gp", critic_steps=5, batch_size=8)
    set_params(workdir, train={**train, "epochs": 2})
    metrics = train_ok()
    assert metrics["steps"] == 2
    assert all(np.isfinite([metrics["final_d_loss"], metrics["final_g_loss"]]))
    assert [row[0] for row in live_rows(workdir, "d_loss")[1:]] == ["1", "2"]
    assert json.loads((workdir / "dvclive/train/metrics.json").read_text())["epoch"] == 2
    set_params(workdir, train={**train, "epochs": 3})
    assert train_ok()["steps"] == 3  # continues from the checkpoint


def test_too_few_images_for_one_wgan_gp_step_is_a_clear_error(workdir):
    set_params(workdir, train=dict(loss="wgan-gp", critic_steps=5, batch_size=16))
    result = run(*stage_args("train"))
    assert result.exit_code == 1
    assert result.output == (
        "Error: data/mnist: 64 training images, fewer than one step takes "
        "(80: train.batch_size 16 x 5 discriminator steps)\n"
    )


def test_anneal_holds_the_rate_for_half_the_run_then_falls_linearly_to_zero():
    from pipeline.training.schedule import HoldThenLinearDecay

    schedule = HoldThenLinearDecay(1e-3, updates=400)
    rates = [float(schedule(update)) for update in (0, 100, 200, 300, 400, 500)]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 0.0, 0.0], abs=1e-9)


def test_with_anneal_the_epoch_count_is_part_of_the_checkpoint_fingerprint():
    from pipeline.families import resolve
    from pipeline.training.checkpoints import fingerprint

    placement = Placement("CPU:0", "float32")
    constant = [resolve(TrainConfig(epochs=epochs)) for epochs in (3, 10)]
    annealed = [resolve(TrainConfig(epochs=epochs, lr_schedule="anneal")) for epochs in (3, 10)]
    assert fingerprint(constant[0], placement, "x") == fingerprint(constant[1], placement, "x")
    assert fingerprint(annealed[0], placement, "x") != fingerprint(annealed[1], placement, "x")


@pytest.mark.parametrize(
    ("loss", "model", "rates"),
    [
        ("gan", "unconditional", (3e-3, 1.5e-3)),
        ("gan", "conditional", (1e-3, 2e-3)),
        ("lsgan", "unconditional", (3e-3, 1e-4)),
        ("wgan-gp", "unconditional", (5e-4, 1e-3)),
    ],
)
def test_each_network_gets_its_own_learning_rate(loss, model, rates):
    given = {"lsgan": {"learning_rate": 3e-3, "discriminator_learning_rate": 1e-4}}
    config = resolve(TrainConfig(loss=loss, model=model, noise_dim=8, **given.get(loss, {})))
    trainer = Trainer(config, Placement("CPU:0", "float32"))
    measured = (
        float(trainer.generator_optimizer.learning_rate),
        float(trainer.discriminator_optimizer.learning_rate),
    )
    assert measured == pytest.approx(rates)


@pytest.mark.parametrize(
    ("model", "beta1", "expected"),
    [("unconditional", "auto", 0.0), ("conditional", "auto", 0.5), ("unconditional", 0.3, 0.3)],
)
def test_beta1_auto_is_the_models_own_and_a_number_overrides_it(model, beta1, expected):
    config = resolve(TrainConfig(model=model, beta1=beta1, noise_dim=8))
    trainer = Trainer(config, Placement("CPU:0", "float32"))
    for optimizer in (trainer.generator_optimizer, trainer.discriminator_optimizer):
        assert float(optimizer.beta_1) == expected


def test_translation_augments_both_networks_steps():
    """With `augment: translation` a step still trains on finite losses, and differs from the
    same step without it (the discriminator saw shifted images)."""
    real = tf.constant(np.random.default_rng(0).integers(0, 255, (16, 28, 28), np.uint8))
    labels = tf.zeros(16, tf.int32)
    losses_seen = []
    for augment in ("none", "translation"):
        keras.utils.set_random_seed(0)
        config = resolve(TrainConfig(noise_dim=8, batch_size=16, augment=augment, track_every=0))
        trainer = Trainer(config, Placement("CPU:0", "float32"))
        losses_seen.append([float(v) for v in trainer.train_step(real, labels)])
    assert all(np.isfinite(losses_seen[1]))
    assert losses_seen[0] != losses_seen[1]


def first_d_loss(step: int = 0, **settings) -> float:
    """The discriminator loss of a fresh seed-0 trainer's step made at `step`."""
    keras.utils.set_random_seed(0)
    config = resolve(TrainConfig(noise_dim=8, batch_size=16, track_every=0, **settings))
    count = images_per_step(config)
    real = tf.constant(np.random.default_rng(0).integers(0, 255, (count, 28, 28), np.uint8))
    trainer = Trainer(config, Placement("CPU:0", "float32"))
    trainer.step.assign(step)
    d_loss, g_loss = trainer.train_step(real, tf.zeros(count, tf.int32))
    assert np.isfinite(float(g_loss))
    return float(d_loss)


def test_the_r1_penalty_is_lazy_and_weighted_by_its_interval():
    """The penalty joins the discriminator's loss at steps 0, k, 2k, ... only, weighted
    k * r1_weight / 2 there: the same weights and noise give a k-fold penalty at k = 4."""
    plain = first_d_loss(r1_weight=0.0)
    every_step = first_d_loss(r1_weight=10.0, r1_every=1) - plain
    assert every_step > 0
    assert first_d_loss(r1_weight=10.0, r1_every=4) - plain == pytest.approx(4 * every_step)
    assert first_d_loss(step=5, r1_weight=10.0, r1_every=4) == first_d_loss(step=5, r1_weight=0.0)


# Arjovsky et al. 2017's Algorithm 1 (presets/wgan-paper.yaml).
PAPER_WGAN = dict(
    optimizer="rmsprop", critic_norm="none", learning_rate=5e-5, discriminator_learning_rate=5e-5
)


@pytest.mark.parametrize(
    ("settings", "optimizer", "rate", "norms"),
    [
        ({}, FusedAdam, 2e-4, 2),  # auto: batch norm in the critic, its scale and shift clipped
        (PAPER_WGAN, keras.optimizers.RMSprop, 5e-5, 0),  # the paper
    ],
    ids=["auto", "paper"],
)
def test_every_wgan_critic_weight_is_within_the_clip_after_a_step(settings, optimizer, rate, norms):
    """Weights drawn far outside [-0.01, 0.01] by Keras' initialisers (batch norm's scale
    starts at 1): after one training step (5 critic updates) every one is inside, and some sit
    on the bounds."""
    keras.utils.set_random_seed(0)
    config = resolve(
        TrainConfig(noise_dim=8, batch_size=16, loss="wgan", track_every=0, **settings)
    )
    count = images_per_step(config)
    real = tf.constant(np.random.default_rng(0).integers(0, 255, (count, 28, 28), np.uint8))
    trainer = Trainer(config, Placement("CPU:0", "float32"))
    layers = [type(layer).__name__ for layer in trainer.discriminator.layers]
    assert layers.count("BatchNormalization") == norms
    before = np.concatenate([v.numpy().ravel() for v in trainer.discriminator.trainable_variables])
    assert np.abs(before).max() > 0.01
    trainer.train_step(real, tf.zeros(count, tf.int32))
    after = np.concatenate([v.numpy().ravel() for v in trainer.discriminator.trainable_variables])
    assert np.abs(after).max() <= 0.01
    assert np.isclose(np.abs(after), 0.01).any()
    assert isinstance(trainer.discriminator_optimizer, optimizer)
    assert float(trainer.discriminator_optimizer.learning_rate) == pytest.approx(rate)


@pytest.mark.parametrize("settings", [{}, PAPER_WGAN], ids=["auto", "paper"])
def test_the_wgan_critics_estimate_turns_and_stays_positive(settings):
    """The critic's estimate of the Wasserstein distance, mean score of real images minus
    mean score of generated ones (minus its loss), is what the WGAN authors watch: positive
    once the critic tells real from generated, and staying so while it can (Arjovsky et al.
    2017, section 4.2). Measured here on its own, on images the steps did not see, with the
    critic as it trains (its batch norm on each batch's statistics)."""
    keras.utils.set_random_seed(0)
    config = resolve(
        TrainConfig(noise_dim=8, batch_size=16, loss="wgan", track_every=0, **settings)
    )
    count = images_per_step(config)
    rng = np.random.default_rng(0)
    trainer = Trainer(config, Placement("CPU:0", "float32"))
    held_out = networks.from_uint8(rng.integers(0, 255, (64, 28, 28), np.uint8))
    noise = tf.random.stateless_uniform((64, 8), (0, 0), -1.0, 1.0)
    estimates = []
    for _ in range(6):
        real = tf.constant(rng.integers(0, 255, (count, 28, 28), np.uint8))
        trainer.train_step(real, tf.zeros(count, tf.int32))
        fake = trainer.generator(noise, training=False)
        scores = [tf.reduce_mean(trainer.discriminator(x, training=True)) for x in (held_out, fake)]
        estimates.append(float(scores[0] - scores[1]))
    assert all(estimate > 0 for estimate in estimates[1:]), estimates


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"optimizer": "rmsprop", "beta1": 0.5},
            r"train\.beta1: Adam's; this run trains with rmsprop",
        ),
        (
            {"optimizer": "rmsprop", "beta2": 0.9},
            r"train\.beta2: Adam's; this run trains with rmsprop",
        ),
        ({"distribute": "mirrored"}, r"train\.distribute: wgan trains on one device"),
        ({"label_smoothing": 0.1}, r"train\.label_smoothing: wgan has no label to smooth"),
    ],
)
def test_wgan_refuses_what_does_not_apply(settings, message):
    from pipeline.families import resolve

    with pytest.raises(ConfigError, match=message):
        resolve(TrainConfig(loss="wgan", **settings))


@pytest.mark.parametrize("model", ["unconditional", "conditional"])
def test_a_softmax_gan_step_trains_on_finite_losses(model):
    """The generator step also judges the real batch (with its own labels, for the
    conditional model's projection)."""
    keras.utils.set_random_seed(0)
    config = resolve(
        TrainConfig(noise_dim=8, batch_size=16, loss="softmax", model=model, track_every=0)
    )
    real = tf.constant(np.random.default_rng(0).integers(0, 255, (16, 28, 28), np.uint8))
    trainer = Trainer(config, Placement("CPU:0", "float32"))
    labels = tf.constant(np.arange(16) % 10, tf.int32)
    d_loss, g_loss = (float(v) for v in trainer.train_step(real, labels))
    # log sum exp of n logits is at least log n + their mean: the generator's loss is at
    # least log 32 (16 reals, 16 fakes), the discriminator's at least log 16 (the reals').
    assert np.isfinite(d_loss) and np.isfinite(g_loss)
    assert g_loss >= math.log(32) - 1e-4 and d_loss >= math.log(16) - 1e-4


def test_wgan_gp_takes_its_own_penalty_and_not_r1():
    with pytest.raises(ConfigError, match=r"train\.r1_weight: the R1 penalty does not apply"):
        first_d_loss(loss="wgan-gp", r1_weight=10.0)
    assert first_d_loss(loss="wgan-gp") == first_d_loss(loss="wgan-gp", r1_weight=0.0)


def test_infogan_reads_its_category_from_jittered_fakes_in_the_information_term_only():
    """`categorical_jitter` changes the first step's discriminator loss through the information
    term alone: with that term weighted 0 the jitter leaves the loss as it was."""
    plain = first_d_loss(model="infogan", categorical_jitter=False)
    jittered = first_d_loss(model="infogan", categorical_jitter=True)
    assert np.isfinite(jittered) and jittered != plain
    unweighted = {"model": "infogan", "info_weight": 0.0}
    assert first_d_loss(**unweighted, categorical_jitter=True) == first_d_loss(
        **unweighted, categorical_jitter=False
    )


def test_an_epochs_batches_are_its_permutation_and_need_no_autotuning_thread():
    """Each epoch's batches in the order (seed, epoch) fixes, with a fixed prefetch and no
    tf.data autotuning, whose thread the iterator would wait for when an epoch ends."""
    images = np.arange(600, dtype=np.uint8).reshape(600, 1, 1) % 251
    labels = np.arange(600) % 10
    config = resolve(TrainConfig(batch_size=128, seed=3))
    dataset = epoch_batches((images, labels), config, epoch=2, skip=1)
    assert dataset.options().autotune.enabled is False
    order = np.random.default_rng([3, 2]).permutation(600)
    batches = list(dataset)
    assert len(batches) == 3  # 4 whole batches of 128 in 600 images, the first skipped
    for number, (batch_images, batch_labels) in enumerate(batches, start=1):
        chosen = order[number * 128 : (number + 1) * 128]
        np.testing.assert_array_equal(batch_images.numpy(), images[chosen])
        np.testing.assert_array_equal(batch_labels.numpy(), labels[chosen])
