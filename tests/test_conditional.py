"""The conditional DCGAN (`train.model: conditional`): networks, training, the ONNX contract,
drawing a chosen digit, morphing walks, and how the evaluate stage measures the conditioning."""

import json

import keras
import numpy as np
import onnx
import pytest
import tensorflow as tf
from PIL import Image

from conftest import FLOAT32_REORDERING, TINY_STAGES, invoke, invoke_ok, set_params, stage_args
from pipeline.errors import SamplerError
from pipeline.evaluation.conditioning import conditioning
from pipeline.gan.networks import build_discriminator, build_generator
from pipeline.runtime import traversals
from pipeline.runtime.contract import LABEL_MIX_INPUT
from pipeline.runtime.sampler import Sampler
from pipeline.runtime.traversals import slerp
from pipeline.storage.images import to_uint8


@pytest.fixture(scope="module")
def model_path(conditional_model):
    return conditional_model / "models/generator.onnx"


@pytest.fixture(scope="module")
def sampler(model_path):
    return Sampler(model_path)


def test_both_networks_take_the_label():
    generator, discriminator = build_generator(8, classes=10), build_discriminator(classes=10)
    noise = tf.random.uniform((4, 8), -1, 1, seed=1)
    labels = tf.constant([0, 3, 7, 9])
    images = generator([noise, labels], training=False)
    assert images.shape == (4, 28, 28, 1)
    assert discriminator([images, labels]).shape == (4, 1)
    # the projection makes the logit depend on the label, the images alike
    projection = discriminator.get_layer("class_projection")
    projection.set_weights([np.random.default_rng(0).normal(size=(10, 1024)).astype(np.float32)])
    other = discriminator([images, tf.constant([1, 4, 8, 0])])
    assert np.abs(other.numpy() - discriminator([images, labels]).numpy()).min() > 0


def test_training_writes_a_generator_that_takes_labels(conditional_model):
    described = json.loads((conditional_model / "models/generator.json").read_text())
    assert described["classes"] == list(range(10))
    assert described["provenance"]["train_params"]["model"] == "conditional"
    generator = keras.saving.load_model(conditional_model / "models/generator.keras")
    assert [tuple(i.shape) for i in generator.inputs] == [(None, 8), (None,)]
    metrics = json.loads((conditional_model / "metrics/train.json").read_text())
    assert metrics["steps"] == 2


def test_the_onnx_signature_and_metadata(model_path):
    proto = onnx.load(str(model_path))
    required = [
        i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}
    ]
    signature = [
        (i.name, i.type.tensor_type.elem_type, len(i.type.tensor_type.shape.dim)) for i in required
    ]
    assert signature == [("z", onnx.TensorProto.FLOAT, 2), ("label", onnx.TensorProto.INT64, 1)]
    optional = [i.name for i in proto.graph.input if i not in required]
    assert optional == [LABEL_MIX_INPUT]
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    assert json.loads(metadata["classes"]) == list(range(10))
    assert "label: int64 (N,)" in metadata["input"]


def test_onnx_matches_keras_for_every_label(conditional_model, sampler):
    generator = keras.saving.load_model(conditional_model / "models/generator.keras")
    noise = sampler.noise(np.random.default_rng(3), 30)
    labels = np.arange(30) % 10
    expected = generator([noise, labels.astype(np.int32)], training=False).numpy()
    np.testing.assert_allclose(sampler.generate(noise, labels), expected, atol=FLOAT32_REORDERING)


def test_label_mix_rows_blend_classes_and_one_hot_rows_are_the_labels(sampler):
    noise = sampler.noise(np.random.default_rng(4), 3)
    labels = np.array([2, 5, 9])
    one_hot = np.eye(10)[labels]
    by_label = sampler.generate(noise, labels)
    np.testing.assert_array_equal(sampler.generate(noise, [0, 1, 2], label_mix=one_hot), by_label)
    half = sampler.generate(noise[:1], [0], label_mix=[(one_hot[0] + one_hot[1]) / 2])
    other = sampler.generate(noise[:1], [5])
    assert not np.array_equal(half, by_label[:1]) and not np.array_equal(half, other)


def test_a_label_draws_that_class(sampler):
    sevens = sampler.sample(12, seed=1, label=7)
    expected = to_uint8(sampler.generate(sampler.seeded_noise(1, 12), np.full(12, 7)))[..., 0]
    np.testing.assert_array_equal(sevens, expected)
    assert not np.array_equal(sevens, sampler.sample(12, seed=1, label=1))


def test_without_a_label_the_classes_come_in_turn_whatever_the_batch(sampler):
    assert sampler.labels(12).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    whole = sampler.sample(25, seed=2)
    np.testing.assert_array_equal(
        np.concatenate(list(sampler.batches(25, seed=2, batch_size=7))), whole
    )


def test_each_class_shares_the_noise_of_its_column(sampler):
    grid = traversals.each_class(sampler, 3, seed=5)
    assert grid.shape == (30, 28, 28)
    noise = sampler.seeded_noise(5, 3)
    for c in (0, 6):
        expected = to_uint8(sampler.generate(noise, np.full(3, c)))[..., 0]
        np.testing.assert_array_equal(grid[3 * c : 3 * c + 3], expected)


def test_a_morphing_walk_passes_exactly_through_its_digits(sampler):
    frames = traversals.walk(sampler, 3, seed=6, points=2, steps=4)
    assert frames.shape == (8, 3, 28, 28)
    stops = sampler.seeded_noise(6, 6).reshape(2, 3, -1)
    for k in range(2):  # walk i is at class i + k at its point k
        expected = to_uint8(sampler.generate(stops[k], (np.arange(3) + k) % 10))[..., 0]
        np.testing.assert_array_equal(frames[4 * k], expected)
    # halfway from point 0 to 1: the noise on the great circle, the classes half and half
    middle = np.clip(slerp(stops[0], stops[1], 0.5), -1, 1).astype(np.float32)
    halves = (np.eye(10)[np.arange(3)] + np.eye(10)[np.arange(1, 4)]) / 2
    expected = to_uint8(sampler.generate(middle, np.arange(3), label_mix=halves))[..., 0]
    np.testing.assert_array_equal(frames[2], expected)
    held = traversals.walk(sampler, 3, seed=6, points=2, steps=4, label=4)
    expected = to_uint8(sampler.generate(stops[1], np.full(3, 4)))[..., 0]
    np.testing.assert_array_equal(held[4], expected)


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (10, "label 10 is not one of the model's classes (0-9)"),
        (-1, "label -1 is not one of the model's classes (0-9)"),
        (2.5, "a label must be a whole number, got 2.5"),
        (True, "a label must be a whole number, got True"),
    ],
)
def test_a_label_outside_the_classes_is_refused(sampler, label, message):
    with pytest.raises(SamplerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sampler.sample(4, label=label)


def test_an_unconditional_model_refuses_labels(exported_model):
    plain = Sampler(exported_model / "models/generator.onnx")
    for call in (
        lambda: plain.sample(4, label=3),
        lambda: traversals.each_class(plain, 2),
        lambda: plain.generate(plain.noise(np.random.default_rng(0), 2), [1, 2]),
    ):
        with pytest.raises(SamplerError, match="is an unconditional model: it takes no label"):
            call()


@pytest.fixture(scope="module")
def quick_sampler(model_path):
    """The session `dcgan sample` opens for a few images: without weight prepacking, whose
    kernels may sum in another order (the last bit, so a grey level, can differ on AMX)."""
    return Sampler(model_path, quick_start=True)


class TestSampleCommand:
    def test_label_writes_that_digit(self, model_path, quick_sampler, tmp_path):
        out = tmp_path / "sevens.npy"
        invoke_ok(
            "sample", "--model", str(model_path), "--label", "7", "-n", "5", "--out", str(out)
        )
        np.testing.assert_array_equal(np.load(out), quick_sampler.sample(5, label=7))

    def test_labels_all_is_a_row_per_digit(self, model_path, quick_sampler, tmp_path):
        out = tmp_path / "all.png"
        invoke_ok("sample", "--model", str(model_path), "--labels", "all", "--out", str(out))
        with Image.open(out) as grid:  # 8 columns, 10 rows of 28 + 2 pixels, twice enlarged
            assert grid.size == (2 * (8 * 30 + 2), 2 * (10 * 30 + 2))
        npy = tmp_path / "all.npy"
        invoke_ok(
            "sample", "--model", str(model_path), "--labels", "all", "-n", "2", "--out", str(npy)
        )
        np.testing.assert_array_equal(np.load(npy), traversals.each_class(quick_sampler, 2))

    def test_interpolate_morphs(self, model_path, tmp_path):
        out = tmp_path / "morph.gif"
        args = ["--interpolate", "-n", "2", "--points", "2", "--steps", "3", "--out", str(out)]
        invoke_ok("sample", "--model", str(model_path), *args)
        with Image.open(out) as gif:
            assert gif.n_frames == 6

    @pytest.mark.parametrize(
        ("args", "code", "message"),
        [
            (["--label", "12"], 1, "Error: label 12 is not one of the model's classes (0-9)\n"),
            (["--label", "x"], 2, "Invalid value for '--label': 'x' is not a valid integer"),
            (["--labels", "some"], 2, "Invalid value for '--labels': 'some' is not 'all'"),
            (
                ["--labels", "all", "--label", "3"],
                2,
                "--labels all draws every class: not with --label or --interpolate",
            ),
        ],
    )
    def test_bad_labels_are_one_line_and_write_nothing(
        self, model_path, tmp_path, args, code, message
    ):
        out = tmp_path / "never.png"
        result = invoke("sample", "--model", str(model_path), *args, "--out", str(out))
        assert result.exit_code == code
        assert message in result.output
        assert "Traceback" not in result.output
        assert not out.exists()

    def test_a_label_for_an_unconditional_model_is_one_line(self, exported_model, tmp_path):
        model = exported_model / "models/generator.onnx"
        result = invoke(
            "sample", "--model", str(model), "--label", "3", "--out", str(tmp_path / "x.png")
        )
        assert result.exit_code == 1
        assert result.output == (
            f"Error: {model} is an unconditional model: it takes no label "
            "(a model trained with train.model: conditional does)\n"
        )


def test_conditional_wgan_gp_trains_through_the_cli(tmp_path, tiny_dataset, monkeypatch):
    """The projection critic under the gradient penalty: 64 images, batch 8, 5 critic steps."""
    tiny_dataset.write_folder(tmp_path / "data" / "mnist")
    monkeypatch.chdir(tmp_path)
    train = dict(model="conditional", loss="wgan-gp", critic_steps=5, batch_size=8, epochs=2)
    set_params(tmp_path, train=train)
    metrics = json.loads(invoke_ok(*stage_args("train")).stdout)
    assert metrics["steps"] == 2
    assert all(np.isfinite([metrics["final_d_loss"], metrics["final_g_loss"]]))


def test_conditioning_measures_on_a_hand_made_case():
    """Four classes, two images each; the classifier gets 6 of 8 right. Class 0's generated
    features equal its test features (distance 0); class 1's are shifted by 3 in one feature
    (distance 9: the means differ by 3, the covariances are equal)."""
    classes = (0, 1, 2, 3)
    requested = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    predicted = np.array([0, 0, 1, 2, 2, 0, 3, 3])
    logits = np.eye(4)[predicted] * 5
    test_labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    test_features = np.random.default_rng(0).normal(size=(8, 3))
    features = test_features.copy()
    features[2:4, 0] += 3.0
    reference = (test_labels, np.eye(4)[test_labels], test_features)
    measured = conditioning(
        requested, logits, features, reference, (test_labels, test_features), classes
    )
    assert measured["label_accuracy"] == 0.75
    assert measured["label_accuracy_per_class"] == {"0": 1.0, "1": 0.5, "2": 0.5, "3": 1.0}
    assert measured["class_frechet_distance"]["0"] == pytest.approx(0.0, abs=1e-9)
    assert measured["class_frechet_distance"]["1"] == pytest.approx(9.0)
    assert measured["mean_class_frechet_distance"] == pytest.approx(9.0 / 4)
    assert measured["real_reference_label_accuracy"] == 1.0
    assert measured["real_reference_mean_class_frechet_distance"] == pytest.approx(0.0, abs=1e-9)


def test_evaluate_reports_the_conditioning(conditional_model, monkeypatch):
    monkeypatch.chdir(conditional_model)
    set_params(
        conditional_model,
        **{**TINY_STAGES, "train": {**TINY_STAGES["train"], "model": "conditional"}},
    )
    invoke_ok(*stage_args("classifier"))
    metrics = json.loads(invoke_ok(*stage_args("evaluate")).stdout)
    measured = metrics["conditioning"]
    assert 0 <= measured["label_accuracy"] <= 1
    assert set(measured["label_accuracy_per_class"]) == {str(c) for c in range(10)}
    assert set(measured["class_frechet_distance"]) == {str(c) for c in range(10)}
    # the tiny test split has one image of classes 6-9: no distance for them
    assert [measured["class_frechet_distance"][str(c)] is None for c in range(10)] == [
        False
    ] * 6 + [True] * 4
    assert 0 <= measured["real_reference_label_accuracy"] <= 1
    score = metrics["classification_accuracy_score"]
    assert score["digits"] == metrics["samples"]
    assert 0 <= score["trained_on_generated"] <= 1 and 0 <= score["trained_on_real"] <= 1
    assert json.loads((conditional_model / "metrics/evaluate.json").read_text()) == metrics
