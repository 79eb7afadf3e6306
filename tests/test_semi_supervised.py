"""The semi-supervised GAN: the label draw, the exported
classifier's contract and parity, `dcgan classify`, and a tiny run through train, export and
evaluate."""

import dataclasses
import json
import subprocess
import sys

import keras
import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf

from conftest import (
    SSL_LABELLED_PER_CLASS,
    encode_idx,
    invoke,
    invoke_ok,
    live_tables,
    set_params,
    stage_args,
    train_defaults,
)
from pipeline.config import ExportConfig, load_train_config
from pipeline.errors import ClassifierError, ConfigError, ExportError, TrainingError
from pipeline.export.family_models import export_model
from pipeline.families import resolve
from pipeline.families import semi_supervised as ssl
from pipeline.families.bigan import ENCODER
from pipeline.families.bigan.networks import build_encoder
from pipeline.families.semi_supervised.networks import build_classifier_discriminator
from pipeline.runtime.classify import Classifier
from pipeline.runtime.contract import Provenance
from pipeline.runtime.family_models import read_listing
from pipeline.storage.images import from_uint8, save_png

LABELLED_PER_CLASS = SSL_LABELLED_PER_CLASS


class TestLabelledChoice:
    labels = np.arange(1000) % 10

    def test_exactly_n_of_each_digit_sorted_and_unique(self):
        chosen = ssl.choose_labelled(self.labels, 10, seed=0)
        assert len(chosen) == 100 and len(set(chosen)) == 100
        assert np.all(np.diff(chosen) > 0)
        assert np.bincount(self.labels[chosen], minlength=10).tolist() == [10] * 10
        assert chosen.min() >= 0 and chosen.max() < len(self.labels)

    def test_the_seed_picks_them_reproducibly(self):
        first = ssl.choose_labelled(self.labels, 10, seed=0)
        np.testing.assert_array_equal(first, ssl.choose_labelled(self.labels, 10, seed=0))
        assert set(first) != set(ssl.choose_labelled(self.labels, 10, seed=1))

    def test_too_few_of_a_digit_is_a_clear_error(self):
        labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
        with pytest.raises(TrainingError, match="only 1 images of digit 2"):
            ssl.choose_labelled(labels, 2, seed=0)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"loss": "lsgan"}, "the semi-supervised model trains with gan, not lsgan"),
        ({"distribute": "mirrored"}, "the semi-supervised model trains on one device"),
    ],
)
def test_settings_it_cannot_train_with_are_refused(tmp_path, settings, message):
    set_params(tmp_path, train={"model": "semi-supervised", **settings})
    with pytest.raises(ConfigError, match=message):
        resolve(load_train_config(tmp_path / "params.yaml"))


PROVENANCE = Provenance("custom", "0" * 64, {"labelled_per_class": 1, "label_seed": 3}, 1, "x")


def test_an_exported_classifier_matches_tensorflow(tmp_path):
    network = build_classifier_discriminator()
    network.save(tmp_path / "classifier.keras")
    images = from_uint8(np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8))
    path = tmp_path / "classifier.onnx"
    figures = export_model(
        tmp_path / "classifier.keras", path, ssl.CLASSIFIER, ExportConfig(), PROVENANCE, images
    )
    assert figures["max_abs_diff"] <= ExportConfig().tolerance and figures["check_images"] == 40
    metadata = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    assert (metadata["label_seed"], metadata["role"]) == ("3", ssl.CLASSIFIER.role)
    expected = tf.nn.softmax(network(images, training=False)[0]).numpy()
    probabilities = Classifier(path).predict(images)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "build, kind",
    [
        (build_classifier_discriminator, ssl.CLASSIFIER),
        (lambda: build_encoder(8), ENCODER),  # both outputs are checked
    ],
    ids=["classifier", "encoder"],
)
def test_a_family_model_beyond_the_tolerance_is_not_written(tmp_path, build, kind):
    """Half the difference this machine measures as the tolerance: refused, nothing written."""
    keras_path, path = tmp_path / f"{kind.name}.keras", tmp_path / f"{kind.name}.onnx"
    build().save(keras_path)
    images = from_uint8(np.random.default_rng(0).integers(0, 256, (8, 28, 28), dtype=np.uint8))
    provenance = dataclasses.replace(
        PROVENANCE, train_params={**PROVENANCE.train_params, "noise_dim": 8}
    )
    measured = export_model(keras_path, path, kind, ExportConfig(), provenance, images)
    if measured["max_abs_diff"] == 0:
        pytest.skip("onnxruntime and TensorFlow agree bit for bit here")
    path.unlink()
    strict = ExportConfig(tolerance=measured["max_abs_diff"] / 2)
    with pytest.raises(ExportError, match=rf"{kind.name}\.onnx: onnxruntime and TensorFlow differ"):
        export_model(keras_path, path, kind, strict, provenance, images)
    assert not path.exists()


class TestTinyRun:
    def test_the_export_stage_exports_every_model_the_run_saved(self, ssl_model):
        trained, exported = ssl_model / "models" / "family-keras", ssl_model / "models" / "family"
        models, files = read_listing(trained)
        assert [m.name for m in models] == ["classifier", "baseline"] and files == ["labelled.json"]
        assert sorted(p.name for p in trained.iterdir()) == [
            "baseline.keras",
            "classifier.keras",
            "labelled.json",
            "models.json",
        ]
        assert sorted(p.name for p in exported.iterdir()) == [
            "baseline.onnx",
            "classifier.onnx",
            "labelled.json",
            "models.json",
        ]
        assert read_listing(exported) == (models, files)
        metrics = json.loads((ssl_model / "metrics" / "export.json").read_text())
        assert sorted(metrics["family_models"]) == ["baseline", "classifier"]
        for figures in metrics["family_models"].values():
            assert figures["max_abs_diff"] <= ExportConfig().tolerance
            assert figures["check_images"] == ExportConfig().check_samples

    def test_the_labels_are_the_drawn_ones(self, ssl_model):
        labelled = json.loads((ssl_model / "models/family/labelled.json").read_text())
        labels = np.arange(64) % 10  # the tiny dataset's
        assert labelled["labels"] == labels[labelled["indices"]].tolist()
        assert np.bincount(labelled["labels"]).tolist() == [LABELLED_PER_CLASS] * 10
        assert labelled["split"] == "train"

    def test_a_failed_export_keeps_the_previous_models(self, ssl_model, monkeypatch):
        """A parity failure on the second model: the folder is the one before, whole."""
        folder = ssl_model / "models" / "family"
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        monkeypatch.chdir(ssl_model)
        (ssl_model / "models/family-keras/baseline.keras").rename(ssl_model / "baseline.keras")
        try:
            result = invoke(*stage_args("export"))
        finally:
            (ssl_model / "baseline.keras").rename(ssl_model / "models/family-keras/baseline.keras")
        assert result.exit_code != 0
        assert "baseline.keras: not a readable Keras model" in result.output
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
        assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []

    def test_the_classifier_contract(self, ssl_model):
        session = ort.InferenceSession(str(ssl_model / "models/family/classifier.onnx"))
        [given] = session.get_inputs()
        assert (given.name, given.type, given.shape[1:]) == ("images", "tensor(float)", [28, 28, 1])
        [output] = session.get_outputs()
        assert (output.name, output.shape[1:]) == ("probabilities", [10])
        metadata = session.get_modelmeta().custom_metadata_map
        assert metadata["model"] == "ssl-classifier"
        assert metadata["labelled_per_class"] == str(LABELLED_PER_CLASS)
        assert json.loads(metadata["train_params"])["model"] == "semi-supervised"

    def test_the_generator_is_an_ordinary_unconditional_one(self, ssl_model):
        session = ort.InferenceSession(str(ssl_model / "models/generator.onnx"))
        assert [i.name for i in session.get_inputs()] == ["z"]

    def test_evaluate_reports_both_test_errors(self, ssl_model, monkeypatch):
        monkeypatch.chdir(ssl_model)
        set_params(
            ssl_model,
            train={"epochs": 1, "noise_dim": 8},
            classifier={"epochs": 1, "batch_size": 16, "validation_size": 16},
            evaluate={"samples": 100, "splits": 2, "grid_size": 3},
        )
        invoke_ok(*stage_args("classifier"))
        metrics = json.loads(invoke_ok(*stage_args("evaluate")).stdout)
        measured = metrics["semi_supervised"]
        assert measured["labelled"] == 10 * LABELLED_PER_CLASS and measured["label_seed"] == 0
        for key in ("test_error", "baseline_test_error"):
            assert 0.0 <= measured[key] <= 1.0
        saved = json.loads((ssl_model / "metrics" / "evaluate.json").read_text())
        assert saved["semi_supervised"] == measured


def test_other_models_leave_the_folders_empty(exported_model):
    assert list((exported_model / "models" / "family-keras").iterdir()) == []
    assert list((exported_model / "models" / "family").iterdir()) == []


@pytest.mark.slow
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, tiny_dataset, monkeypatch):
    """The discriminator's noise and dropout draw from Keras' seed state: the checkpoint keeps
    it, so a run stopped after one epoch and continued gives the same losses and classifier."""
    runs = {}
    for name, schedule in (("straight", [3]), ("resumed", [1, 3])):
        folder = tmp_path / name
        tiny_dataset.write_folder(folder / "data" / "mnist")
        monkeypatch.chdir(folder)
        for epochs in schedule:
            set_params(
                folder,
                train={
                    "epochs": epochs,
                    "model": "semi-supervised",
                    "labelled_per_class": LABELLED_PER_CLASS,
                    **train_defaults("average_decay"),
                },
            )
            invoke_ok(*stage_args("train"))
        runs[name] = folder
    straight, resumed = runs["straight"], runs["resumed"]
    assert live_tables(straight) == live_tables(resumed)
    for name in ("classifier.keras", "baseline.keras"):
        weights = [
            keras.saving.load_model(run / "models/family-keras" / name).get_weights()
            for run in (straight, resumed)
        ]
        for a, b in zip(*weights, strict=True):
            np.testing.assert_array_equal(a, b)


class TestClassifyCommand:
    def test_pngs_and_arrays_print_one_line_per_image(self, ssl_model, tmp_path):
        digit = tmp_path / "digit.png"
        save_png(np.zeros((28, 28), np.uint8), digit, scale=1)
        drawn = tmp_path / "drawn.npy"
        invoke_ok(
            "sample",
            "--model",
            str(ssl_model / "models/generator.onnx"),
            "-n",
            "3",
            "--out",
            str(drawn),
        )
        floats = tmp_path / "floats.npy"
        np.save(floats, np.zeros((2, 28, 28, 1), np.float32))
        model_path = str(ssl_model / "models/family/classifier.onnx")
        result = invoke_ok("classify", "--model", model_path, str(digit), str(drawn), str(floats))
        lines = [line.split("\t") for line in result.output.splitlines()]
        assert [line[0] for line in lines] == [
            str(digit),
            *(f"{drawn}[{i}]" for i in range(3)),
            *(f"{floats}[{i}]" for i in range(2)),
        ]
        for _, digit_text, probability in lines:
            assert int(digit_text) in range(10) and 0.1 <= float(probability) <= 1.0
        expected = Classifier(model_path).predict(from_uint8(np.load(drawn))).argmax(axis=1)
        assert [int(line[1]) for line in lines[1:4]] == expected.tolist()

    @pytest.mark.parametrize(
        "make, message",
        [
            (lambda p: save_png(np.zeros((30, 28), np.uint8), p / "x.png", scale=1), "28x30"),
            (lambda p: (p / "x.png").write_text("not an image"), "not a readable PNG"),
            (lambda p: np.save(p / "x.npy", np.zeros((2, 28, 28), np.int64)), "int64 array"),
            (lambda p: np.save(p / "x.npy", np.zeros((2, 14, 14), np.uint8)), "(2, 14, 14)"),
            (lambda p: np.save(p / "x.npy", np.full((1, 28, 28, 1), 2.0)), "in [-1, 1]"),
            (lambda p: (p / "x.npy").write_bytes(b"junk"), "not a readable .npy"),
            (lambda p: np.save(p / "x.npy", np.zeros((0, 28, 28), np.uint8)), "holds no images"),
            (lambda p: np.save(p / "x.npy", np.zeros((0, 28, 28, 1))), "holds no images"),
            (
                lambda p: (p / "x-idx3-ubyte").write_bytes(encode_idx(np.zeros((0, 28, 28)))),
                "holds no images",
            ),
        ],
    )
    def test_bad_images_are_one_line(self, ssl_model, tmp_path, make, message):
        make(tmp_path)
        [path] = tmp_path.iterdir()
        result = invoke(
            "classify", "--model", str(ssl_model / "models/family/classifier.onnx"), str(path)
        )
        assert result.exit_code == 1
        assert message in result.output and len(result.output.strip().splitlines()) == 1
        assert "Traceback" not in result.output

    def test_it_never_imports_tensorflow(self, ssl_model, tmp_path):
        digit = tmp_path / "digit.png"
        save_png(np.zeros((28, 28), np.uint8), digit, scale=1)
        model_path = ssl_model / "models/family/classifier.onnx"
        script = f"""
import json, sys
from click.testing import CliRunner
from pipeline.cli import main
result = CliRunner().invoke(main, ["classify", "--model", {str(model_path)!r}, {str(digit)!r}])
print(json.dumps({{"code": result.exit_code, "tf": "tensorflow" in sys.modules}}))
"""
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {"code": 0, "tf": False}

    def test_a_generator_is_not_a_classifier(self, ssl_model, tmp_path):
        digit = tmp_path / "digit.png"
        save_png(np.zeros((28, 28), np.uint8), digit, scale=1)
        result = invoke("classify", "--model", str(ssl_model / "models/generator.onnx"), str(digit))
        assert result.exit_code == 1 and "not an exported digit classifier" in result.output

    def test_missing_model_image_or_arguments(self, ssl_model, tmp_path):
        model_path = str(ssl_model / "models/family/classifier.onnx")
        missing = invoke("classify", "--model", model_path, str(tmp_path / "none.png"))
        assert missing.exit_code == 1 and "no such file" in missing.output
        no_model = invoke("classify", "--model", str(tmp_path / "none.onnx"), model_path)
        assert no_model.exit_code == 1 and "semi-supervised" in no_model.output
        assert invoke("classify", "--model", model_path).exit_code == 2

    def test_a_truncated_model_is_one_line(self, ssl_model, tmp_path):
        broken = tmp_path / "broken.onnx"
        data = (ssl_model / "models/family/classifier.onnx").read_bytes()
        broken.write_bytes(data[: len(data) // 2])
        with pytest.raises(ClassifierError, match="not a readable ONNX model"):
            Classifier(broken)
