"""BiGAN: the pairs its discriminator judges, the encoder's
contract and parity, `dcgan encode` / `dcgan reconstruct`, the evaluation's measures on
hand-made features, and a tiny run through train, export and evaluate."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf

from conftest import (
    FLOAT32_REORDERING,
    invoke,
    invoke_ok,
    set_params,
    stage_args,
    train_and_export,
    train_defaults,
)
from pipeline.config import ExportConfig, load_train_config
from pipeline.errors import ConfigError, EncoderError
from pipeline.evaluation import encoding
from pipeline.export.family_models import export_model
from pipeline.families import bigan, resolve
from pipeline.families.base import Fakes, Reals
from pipeline.families.bigan import losses as bigan_losses
from pipeline.families.bigan import networks as model
from pipeline.gan import losses
from pipeline.gan.placement import choose_placement
from pipeline.runtime import model_bytes
from pipeline.runtime.contract import WEIGHTS_DIGEST, Provenance
from pipeline.runtime.encode import Encoder
from pipeline.runtime.family_models import read_listing
from pipeline.storage.images import from_uint8, paired_grid, save_png
from pipeline.training.trainer import Trainer

NOISE_DIM = 8


def test_a_loss_other_than_gan_is_refused(tmp_path):
    set_params(tmp_path, train={"model": "bigan", "loss": "lsgan"})
    with pytest.raises(ConfigError, match="the bigan model trains with gan, not lsgan"):
        resolve(load_train_config(tmp_path / "params.yaml"))


def test_the_discriminator_judges_encoded_reals_and_generated_fakes(tmp_path, monkeypatch):
    """One eager training step on a known batch: every pair the discriminator sees is either
    (x, E(x)) with x from the batch or (G(z), z), and both kinds reach both steps."""
    set_params(tmp_path, train={"model": "bigan", "noise_dim": NOISE_DIM, "batch_size": 4})
    config = resolve(load_train_config(tmp_path / "params.yaml"))
    tf.config.run_functions_eagerly(True)
    try:
        trainer = Trainer(config, choose_placement("float32"), total_steps=1)
        family = trainer.family
        seen = []
        judge = family.judge

        def recording_judge(discriminator, images, codes, training):
            encoded = family.encoder(images, training=True)[0]
            drawn = trainer.generator(codes, training=True)
            seen.append(
                (
                    bool(np.allclose(codes, encoded, atol=1e-6)),
                    bool(np.allclose(images, drawn, atol=1e-6)),
                    images.numpy(),
                )
            )
            return judge(discriminator, images, codes, training)

        monkeypatch.setattr(family, "judge", recording_judge)
        batch = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
        trainer.train_step(batch, np.zeros(4, np.int32))
    finally:
        tf.config.run_functions_eagerly(False)
    kinds = [("real" if real else "") + ("fake" if fake else "") for real, fake, _ in seen]
    assert kinds == ["real", "fake", "fake", "real"]  # discriminator step, then generator step
    for real, _, images in seen:
        if real:
            np.testing.assert_array_equal(images, from_uint8(batch))


def test_the_reconstruction_term_adds_its_weight_of_the_distance(tmp_path):
    """The generator loss with the term minus the one without is the weight times
    mean |x - G(E(x))| of the batch, computed here from the networks themselves."""
    set_params(tmp_path, train={"model": "bigan", "noise_dim": NOISE_DIM, "batch_size": 4})
    config = resolve(load_train_config(tmp_path / "params.yaml"))
    trainer = Trainer(config, choose_placement("float32"))
    family = trainer.family
    real = from_uint8(np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8))
    real = tf.constant(real)
    fake_logits, real_logits = tf.constant([[0.5]] * 4), tf.constant([[-0.5]] * 4)
    reals = Reals(real, None, real_logits)
    family.config = dataclasses.replace(family.config, reconstruction_weight=0.0)
    plain = float(family.generator_loss(trainer, fake_logits, None, reals))
    family.config = dataclasses.replace(family.config, reconstruction_weight=2.0)
    weighted = float(family.generator_loss(trainer, fake_logits, None, reals))
    redrawn = trainer.generator(family.encoder(real, training=True)[0], training=True)
    expected = 2.0 * float(tf.reduce_mean(tf.abs(real - redrawn)))
    assert weighted - plain == pytest.approx(expected, rel=1e-4)
    assert plain == pytest.approx(
        float(bigan_losses.bigan_generator_loss(fake_logits, real_logits))
    )


def test_a_network_with_its_weights_held_passes_gradient_to_its_input_only():
    """y = W x with W known: d sum(y) / dx is W's row sums, d / dW is zero; the value is
    the network's own."""
    weights = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)  # (in 3, out 2)
    network = tf.keras.Sequential([tf.keras.layers.Dense(2, use_bias=False)])
    network.build((None, 3))
    network.set_weights([weights])
    inputs = tf.constant([[1.0, -1.0, 0.5]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs)
        outputs = bigan.weights_held(network)(inputs)
        total = tf.reduce_sum(outputs)
    np.testing.assert_allclose(outputs.numpy(), inputs.numpy() @ weights)
    np.testing.assert_allclose(tape.gradient(total, inputs).numpy(), [[3.0, 7.0, 11.0]])
    held = tape.gradient(total, network.trainable_variables)
    assert all(gradient is None or not np.any(gradient.numpy()) for gradient in held)


@pytest.mark.parametrize("trains, generator_learns", [("both", True), ("encoder", False)])
def test_the_image_cycle_trains_the_networks_it_is_set_to(tmp_path, trains, generator_learns):
    """The generator loss's gradient on fixed logits is the cycle term's alone: with
    `cycle_trains: encoder` it reaches the encoder and not the generator."""
    train = {"model": "bigan", "noise_dim": NOISE_DIM, "batch_size": 4, "cycle_trains": trains}
    set_params(tmp_path, train=train)
    trainer = Trainer(
        resolve(load_train_config(tmp_path / "params.yaml")), choose_placement("float32")
    )
    family = trainer.family
    real = from_uint8(np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8))
    reals = Reals(tf.constant(real), None, tf.constant([[-0.5]] * 4))
    variables = trainer.generator.trainable_variables + family.encoder.trainable_variables
    with tf.GradientTape() as tape:
        loss = family.generator_loss(trainer, tf.constant([[0.5]] * 4), None, reals)
    gradients = tape.gradient(loss, variables)
    moved = [g is not None and bool(np.any(g.numpy())) for g in gradients]
    generator_count = len(trainer.generator.trainable_variables)
    assert any(moved[:generator_count]) is generator_learns
    assert all(moved[generator_count:])


def test_the_code_reconstruction_term_adds_its_weight_of_the_noises_distance(tmp_path):
    """With the code term, minus without: the weight times mean |z - E(G(z))| of the
    generated batch, computed here from the networks themselves."""
    set_params(tmp_path, train={"model": "bigan", "noise_dim": NOISE_DIM, "batch_size": 4})
    trainer = Trainer(
        resolve(load_train_config(tmp_path / "params.yaml")), choose_placement("float32")
    )
    family = trainer.family
    noise = tf.constant(np.random.default_rng(1).uniform(-1, 1, (4, NOISE_DIM)), tf.float32)
    fakes = Fakes(trainer.generator(noise, training=True), None, noise, None)
    fake_logits, real_logits = tf.constant([[0.5]] * 4), tf.constant([[-0.5]] * 4)
    reals = Reals(None, None, real_logits)
    family.config = dataclasses.replace(
        family.config, reconstruction_weight=0.0, code_reconstruction_weight=0.0
    )
    plain = float(family.generator_loss(trainer, fake_logits, fakes, reals))
    family.config = dataclasses.replace(family.config, code_reconstruction_weight=3.0)
    weighted = float(family.generator_loss(trainer, fake_logits, fakes, reals))
    found = family.encoder(fakes.images, training=True)[0]
    expected = 3.0 * float(tf.reduce_mean(tf.abs(noise - found)))
    assert weighted - plain == pytest.approx(expected, rel=1e-4)


def test_the_reconstruction_weight_applies_to_bigan_only(tmp_path):
    set_params(tmp_path, train={"reconstruction_weight": 2.0})
    with pytest.raises(ConfigError, match="applies to the bigan model only"):
        resolve(load_train_config(tmp_path / "params.yaml"))


def test_the_generator_step_trains_the_encoder_too(tmp_path):
    set_params(tmp_path, train={"model": "bigan", "noise_dim": NOISE_DIM, "batch_size": 4})
    trainer = Trainer(
        resolve(load_train_config(tmp_path / "params.yaml")), choose_placement("float32")
    )
    before = [v.numpy().copy() for v in trainer.family.encoder.trainable_variables]
    batch = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    trainer.train_step(batch, np.zeros(4, np.int32))
    after = trainer.family.encoder.trainable_variables
    assert all(not np.array_equal(b, a.numpy()) for b, a in zip(before, after, strict=True))


PROVENANCE = Provenance("custom", "0" * 64, {"noise_dim": NOISE_DIM}, 1, "x")


def test_an_exported_encoder_matches_tensorflow_on_both_outputs(tmp_path):
    network = model.build_encoder(NOISE_DIM)
    network.save(tmp_path / "encoder.keras")
    images = from_uint8(np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8))
    path = tmp_path / "encoder.onnx"
    figures = export_model(
        tmp_path / "encoder.keras", path, bigan.ENCODER, ExportConfig(), PROVENANCE, images
    )
    assert figures["max_abs_diff"] <= ExportConfig().tolerance and figures["check_images"] == 40
    encoder = Encoder(path)
    assert encoder.noise_dim == NOISE_DIM and encoder.metadata["noise_dim"] == str(NOISE_DIM)
    codes, features = network(images, training=False)
    np.testing.assert_allclose(encoder.encode(images), codes.numpy(), atol=FLOAT32_REORDERING)
    np.testing.assert_allclose(
        encoder.encode(images, features=True), features.numpy(), atol=FLOAT32_REORDERING
    )


class TestMeasures:
    def test_nearest_neighbour_accuracy_by_hand(self):
        fitted = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
        labels = np.array([1, 2, 3])
        queries = np.array([[1.0, 1.0], [9.0, 1.0], [1.0, 9.0], [6.0, 0.0]])
        # nearest: 1, 2, 3, 2; the last query's own label is 1
        right = encoding.nearest_neighbour_accuracy(fitted, labels, queries, np.array([1, 2, 3, 1]))
        assert right == 0.75

    def test_it_works_in_chunks(self, monkeypatch):
        monkeypatch.setattr(encoding, "CHUNK", 2)
        fitted = np.arange(10, dtype=np.float32)[:, np.newaxis]
        queries = fitted + 0.2
        labels = np.arange(10)
        assert encoding.nearest_neighbour_accuracy(fitted, labels, queries, labels) == 1.0

    def test_the_partner_of_every_image_is_another(self):
        partner = encoding.derangement(50, np.random.default_rng(3))
        assert sorted(partner) == list(range(50)) and np.all(partner != np.arange(50))

    def test_the_reconstruction_ratio_by_hand(self):
        """Two images 0 and 1 (every pixel); reconstructions 0.25 and 1: own distances 0.25
        and 0 per pixel, the other's 0.75 and 1; with 784 pixels the norms scale by 28."""
        images = np.stack([np.zeros((28, 28, 1)), np.ones((28, 28, 1))]).astype(np.float32)
        drawn = np.stack([np.full((28, 28, 1), 0.25), np.ones((28, 28, 1))]).astype(np.float32)
        ratio, own, other = encoding.reconstruction_ratio(images, drawn, np.array([1, 0]))
        assert own == pytest.approx(28 * 0.25 / 2) and other == pytest.approx(28 * 1.75 / 2)
        assert ratio == pytest.approx(0.25 / 1.75)

    def test_the_grid_puts_each_row_above_its_reconstructions(self):
        originals = np.full((3, 28, 28, 1), 1.0, np.float32)
        drawn = np.full((3, 28, 28, 1), -1.0, np.float32)
        grid = paired_grid(originals, drawn, columns=2)
        cell = 30  # 28 pixels and a padding of 2
        assert grid.shape == (2 + 4 * cell, 2 + 2 * cell)
        assert grid[2 + 5, 2 + 5] == 255 and grid[2 + cell + 5, 2 + 5] == 0
        assert grid[2 + 2 * cell + 5, 2 + cell + 5] == 0  # the third row's missing image


@pytest.fixture(scope="module")
def bigan_model(tmp_path_factory, bigan_exported):
    """A folder after train (2 steps), export and evaluate of the BiGAN model."""
    folder = tmp_path_factory.mktemp("bigan-evaluated") / "run"
    shutil.copytree(bigan_exported, folder)
    set_params(
        folder,
        train={"epochs": 1, "noise_dim": NOISE_DIM, "model": "bigan"},
        classifier={"epochs": 1, "batch_size": 16, "validation_size": 16},
        evaluate={"samples": 100, "splits": 2, "grid_size": 4},
    )
    previous = os.getcwd()
    os.chdir(folder)
    try:
        invoke_ok(*stage_args("classifier"))
        invoke_ok(*stage_args("evaluate"))
    finally:
        os.chdir(previous)
    return folder


def write_digits(folder, count=3):
    pixels = np.random.default_rng(1).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    paths = []
    for i, image in enumerate(pixels):
        save_png(image, folder / f"d{i}.png", scale=1)
        paths.append(folder / f"d{i}.png")
    return pixels, paths


class TestTinyRun:
    def test_the_export_stage_writes_the_encoder_beside_the_generator(self, bigan_model):
        models, files = read_listing(bigan_model / "models/family")
        assert [(m.name, m.kind) for m in models] == [("encoder", "bigan-encoder")] and not files
        data = (bigan_model / "models/family/encoder.onnx").read_bytes()
        assert model_bytes.metadata(data)[WEIGHTS_DIGEST] == model_bytes.weights_digest(data)
        metrics = json.loads((bigan_model / "metrics/export.json").read_text())
        assert metrics["family_models"]["encoder"]["max_abs_diff"] <= FLOAT32_REORDERING

    def test_the_encoder_contract(self, bigan_model):
        session = ort.InferenceSession(str(bigan_model / "models/family/encoder.onnx"))
        assert [(i.name, i.shape) for i in session.get_inputs()] == [
            ("images", ["N", 28, 28, 1])
        ] or [i.name for i in session.get_inputs()] == ["images"]
        outputs = [(o.name, o.shape[1]) for o in session.get_outputs()]
        assert sorted(outputs) == [("features", 1024), ("z", NOISE_DIM)]
        metadata = session.get_modelmeta().custom_metadata_map
        assert metadata["model"] == "bigan-encoder" and metadata["noise_dim"] == str(NOISE_DIM)
        assert (metadata["noise_low"], metadata["noise_high"]) == ("-1.0", "1.0")

    def test_evaluate_measures_the_encoder_and_draws_reconstructions(self, bigan_model):
        measured = json.loads((bigan_model / "metrics/evaluate.json").read_text())["bigan"]
        assert 0 <= measured["nearest_neighbour_accuracy_features"] <= 1
        assert 0 <= measured["nearest_neighbour_accuracy_codes"] <= 1
        assert measured["reconstruction_ratio"] > 0 and 0 <= measured["digit_kept"] <= 1
        assert (measured["train_images"], measured["test_images"]) == (64, 16)
        assert (bigan_model / "plots/evaluate/reconstructions.png").is_file()

    def test_encode_writes_one_row_of_codes_per_image(self, bigan_model, tmp_path):
        pixels, paths = write_digits(tmp_path)
        array = tmp_path / "more.npy"
        np.save(array, pixels[:2])
        out = tmp_path / "codes.npy"
        encoder = str(bigan_model / "models/family/encoder.onnx")
        idx = bigan_model / "data/mnist/t10k-images-idx3-ubyte"
        result = invoke_ok(
            "encode", "--model", encoder, *map(str, paths), str(array), str(idx), "--out", str(out)
        )
        assert "21 images" in result.output  # 3 PNGs, 2 in the array, 16 in the IDX file
        codes = np.load(out)
        assert codes.shape == (21, NOISE_DIM) and codes.dtype == np.float32
        expected = Encoder(encoder).encode(from_uint8(pixels))
        np.testing.assert_allclose(codes[:3], expected, atol=1e-6)
        np.testing.assert_allclose(codes[3:5], expected[:2], atol=1e-6)
        invoke_ok("encode", "--model", encoder, str(paths[0]), "--features", "--out", str(out))
        assert np.load(out).shape == (1, 1024)

    def test_reconstruct_draws_each_image_above_its_reconstruction(self, bigan_model, tmp_path):
        _, paths = write_digits(tmp_path)
        out = tmp_path / "r.png"
        invoke_ok(
            "reconstruct",
            "--encoder",
            str(bigan_model / "models/family/encoder.onnx"),
            "--generator",
            str(bigan_model / "models/generator.onnx"),
            "--columns",
            "3",
            *map(str, paths),
            "--out",
            str(out),
        )
        from PIL import Image

        with Image.open(out) as image:
            assert image.size == (3 * (2 + 3 * 30), 3 * (2 + 2 * 30))

    @pytest.mark.parametrize(
        "make, message",
        [
            (lambda p: (p / "x.png").write_text("not an image"), "not a readable PNG"),
            (lambda p: save_png(np.zeros((30, 28), np.uint8), p / "x.png", scale=1), "28x30"),
            (lambda p: np.save(p / "x.npy", np.zeros((2, 14, 14), np.uint8)), "(2, 14, 14)"),
            (lambda p: (p / "x-ubyte").write_bytes(b"\0\0\x08\x01\0\0\0\x05abc"), "x-ubyte"),
        ],
    )
    def test_bad_images_are_one_line(self, bigan_model, tmp_path, make, message):
        make(tmp_path)
        [path] = tmp_path.iterdir()
        encoder = str(bigan_model / "models/family/encoder.onnx")
        for command in ("encode", "reconstruct"):
            option = "--model" if command == "encode" else "--encoder"
            result = invoke(
                command,
                option,
                encoder,
                str(path),
                "--out",
                str(tmp_path / "o.npy") if command == "encode" else str(tmp_path / "o.png"),
            )
            assert result.exit_code == 1, result.output
            assert message in result.output and len(result.output.strip().splitlines()) == 1
            assert "Traceback" not in result.output

    def test_a_generator_is_not_an_encoder_nor_an_encoder_a_generator(self, bigan_model, tmp_path):
        _, [digit, *_] = write_digits(tmp_path)
        generator = str(bigan_model / "models/generator.onnx")
        encoder = str(bigan_model / "models/family/encoder.onnx")
        wrong = invoke("encode", "--model", generator, str(digit), "--out", str(tmp_path / "c.npy"))
        assert wrong.exit_code == 1 and "not an exported encoder" in wrong.output
        swapped = invoke(
            "reconstruct",
            "--encoder",
            encoder,
            "--generator",
            encoder,
            str(digit),
            "--out",
            str(tmp_path / "r.png"),
        )
        assert swapped.exit_code == 1 and "not a generator" in swapped.output
        assert len(swapped.output.strip().splitlines()) == 1

    def test_a_generator_of_another_width_is_refused(self, bigan_model):
        encoder = Encoder(bigan_model / "models/family/encoder.onnx")

        class Wider:
            conditional = infogan = False
            noise_dim = NOISE_DIM + 1

        with pytest.raises(EncoderError, match=f"codes have {NOISE_DIM} values; the generator"):
            encoder.check_pairs_with(Wider(), "encoder.onnx")

    def test_encode_and_reconstruct_never_import_tensorflow(self, bigan_model, tmp_path):
        _, [digit, *_] = write_digits(tmp_path)
        encoder = bigan_model / "models/family/encoder.onnx"
        generator = bigan_model / "models/generator.onnx"
        script = f"""
import json, sys
from click.testing import CliRunner
from pipeline.cli import main
codes = CliRunner().invoke(main, ["encode", "--model", {str(encoder)!r}, {str(digit)!r},
    "--out", {str(tmp_path / "c.npy")!r}])
grid = CliRunner().invoke(main, ["reconstruct", "--encoder", {str(encoder)!r}, "--generator",
    {str(generator)!r}, {str(digit)!r}, "--out", {str(tmp_path / "r.png")!r}])
print(json.dumps({{"codes": codes.exit_code, "grid": grid.exit_code,
    "tf": "tensorflow" in sys.modules}}))
"""
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result == {"codes": 0, "grid": 0, "tf": False}


@pytest.mark.slow
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, tiny_dataset):
    """The encoder, its average and the kept best copy are checkpointed: one epoch, then a
    second, gives the encoder two epochs in one go give."""
    encoders = {}
    for name, stops in (("straight", [2]), ("resumed", [1, 2])):
        folder = tmp_path / name
        for epochs in stops:
            train_and_export(
                folder,
                tiny_dataset,
                model="bigan",
                epochs=epochs,
                **train_defaults("average_decay"),
            )
        encoders[name] = Encoder(folder / "models/family/encoder.onnx")
    images = from_uint8(np.random.default_rng(2).integers(0, 256, (8, 28, 28), dtype=np.uint8))
    np.testing.assert_array_equal(
        encoders["straight"].encode(images), encoders["resumed"].encode(images)
    )


def test_unary_scores_judge_the_image_alone_and_the_noise_alone():
    """BigBiGAN's three logits: the joint one is the plain discriminator's (its layers are
    drawn first, so the same seed gives the same weights), the image's alone does not read
    the noise and the noise's alone does not read the image."""
    tf.keras.utils.set_random_seed(0)
    plain = model.build_joint_discriminator(NOISE_DIM)
    tf.keras.utils.set_random_seed(0)
    unary = model.build_joint_discriminator(NOISE_DIM, unary=True)
    rng = np.random.default_rng(0)
    images, other_images = rng.uniform(-1, 1, (2, 4, 28, 28, 1)).astype(np.float32)
    noise, other_noise = rng.uniform(-1, 1, (2, 4, NOISE_DIM)).astype(np.float32)
    scores = unary([images, noise]).numpy()
    assert scores.shape == (4, 3)
    np.testing.assert_allclose(scores[:, :1], plain([images, noise]).numpy(), rtol=1e-6)
    new_noise, new_images = unary([images, other_noise]).numpy(), unary([other_images, noise])
    np.testing.assert_array_equal(new_noise[:, 1], scores[:, 1])
    np.testing.assert_array_equal(new_images.numpy()[:, 2], scores[:, 2])
    assert not np.allclose(new_noise[:, 0], scores[:, 0])
    assert not np.allclose(new_noise[:, 2], scores[:, 2])


def test_the_gan_losses_on_three_scores_are_the_mean_of_each_scores_loss():
    rng = np.random.default_rng(1)
    real, fake = (tf.constant(rng.normal(size=(5, 3)), tf.float32) for _ in range(2))
    columns = [(real[:, i : i + 1], fake[:, i : i + 1]) for i in range(3)]
    each = [float(losses.gan_discriminator_loss(r, f)) for r, f in columns]
    assert float(losses.gan_discriminator_loss(real, fake)) == pytest.approx(np.mean(each))
    each = [float(bigan_losses.bigan_generator_loss(f, r)) for r, f in columns]
    assert float(bigan_losses.bigan_generator_loss(fake, real)) == pytest.approx(np.mean(each))


def test_a_step_with_unary_scores_trains_every_part(tmp_path):
    train = {"model": "bigan", "noise_dim": NOISE_DIM, "batch_size": 4, "unary_scores": True}
    set_params(tmp_path, train=train)
    trainer = Trainer(
        resolve(load_train_config(tmp_path / "params.yaml")), choose_placement("float32")
    )
    parts = [trainer.discriminator, trainer.generator, trainer.family.encoder]
    before = [[v.numpy().copy() for v in part.trainable_variables] for part in parts]
    batch = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    d_loss, g_loss = trainer.train_step(batch, np.zeros(4, np.int32))
    assert np.isfinite(float(d_loss)) and np.isfinite(float(g_loss))
    for part, weights in zip(parts, before, strict=True):
        after = part.trainable_variables
        assert all(not np.array_equal(b, a.numpy()) for b, a in zip(weights, after, strict=True))
