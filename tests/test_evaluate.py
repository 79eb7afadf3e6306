"""The classifier and evaluate stages end to end on the tiny model and tiny data."""

import json

import pytest

from conftest import TINY_STAGES, declared_paths, invoke, invoke_ok, set_params, stage_args

MEASURES = {
    "frechet_distance",
    "kernel_distance",
    "kernel_distance_std",
    "frechet_distance_logits",
    "classifier_score",
    "classifier_score_std",
    "precision",
    "recall",
    "class_shares",
    "class_entropy",
    "class_entropy_max",
    "smallest_class_share",
    "largest_class_share",
    "unsure_share",
}


def test_classifier_then_evaluate_write_what_dvc_yaml_declares(exported_model, monkeypatch):
    monkeypatch.chdir(exported_model)
    set_params(exported_model, **TINY_STAGES)
    classifier = json.loads(invoke_ok(*stage_args("classifier")).stdout)
    assert 0 <= classifier["test_accuracy"] <= 1
    assert (classifier["train_images"], classifier["validation_images"]) == (48, 16)
    metrics = json.loads(invoke_ok(*stage_args("evaluate")).stdout)
    for stage in ("classifier", "evaluate"):
        for path in declared_paths(stage):
            assert (exported_model / path).exists(), path
    assert (exported_model / "plots/evaluate/predicted_grid.png").is_file()
    assert (exported_model / "plots/evaluate/closest_pairs.png").is_file()
    assert "classification_accuracy_score" not in metrics  # the model takes no label
    copies = metrics["memorization"]
    assert copies["generated"]["samples"] == 100  # every generated digit, fewer than 2,000
    assert 0 <= copies["generated"]["copy_share"] <= 1
    assert copies["held_out"]["median_nearest_pixels"] > 0

    assert set(metrics["generated"]) == MEASURES
    assert set(metrics["generated_int8"]) == MEASURES
    assert set(metrics["real_reference"]) == MEASURES
    assert metrics["samples"] == 100
    assert metrics["int8_frechet_distance_ratio"] == pytest.approx(
        metrics["generated_int8"]["frechet_distance"] / metrics["generated"]["frechet_distance"],
        abs=1e-4,
    )
    for measured in (metrics["generated"], metrics["generated_int8"], metrics["real_reference"]):
        assert measured["frechet_distance"] >= 0
        assert 1 <= measured["classifier_score"] <= 10
        assert 0 <= measured["precision"] <= 1
        assert 0 <= measured["recall"] <= 1
        assert sum(measured["class_shares"]) == pytest.approx(1.0, abs=1e-3)
    saved = json.loads((exported_model / "metrics/evaluate.json").read_text())
    assert saved == metrics


def test_same_seed_same_measures(exported_model, monkeypatch):
    monkeypatch.chdir(exported_model)
    set_params(exported_model, **TINY_STAGES)
    if not (exported_model / "models/classifier.keras").exists():
        invoke_ok(*stage_args("classifier"))
    first = json.loads(invoke_ok(*stage_args("evaluate")).stdout)
    second = json.loads(invoke_ok(*stage_args("evaluate")).stdout)
    first.pop("seconds")
    second.pop("seconds")
    assert first == second


def test_a_missing_classifier_is_a_bad_parameter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    set_params(tmp_path)
    (tmp_path / "g.onnx").write_bytes(b"x")
    result = invoke("evaluate", "--model", "g.onnx", "--classifier", "none.keras")
    assert result.exit_code == 2
    assert "Invalid value for '--classifier': no such file: none.keras" in result.output


def test_the_classifier_learns_from_the_batches_keras_makes_of_arrays():
    """`shuffled_batches` (Keras's own shuffled batches, without tf.data's autotuning) trains
    the classifier to the same weights, bit for bit, as `fit` on the arrays: the classifier
    every recorded Frechet distance was measured with stays the same."""
    import keras
    import numpy as np
    import tensorflow as tf

    from pipeline.evaluation.classifier import build_classifier, shuffled_batches

    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (300, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 300)

    def trained(data, **options):
        """The classifier after 3 epochs of 3 batches (one partial) of `data()`, made after
        the seed is set, as the stage does."""
        keras.utils.set_random_seed(5)
        model = build_classifier()
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(*data(), epochs=3, verbose=0, **options)
        return model.get_weights()

    from_arrays = trained(lambda: (images, labels), batch_size=128, shuffle=True)
    from_batches = trained(lambda: (shuffled_batches(images, labels, 128),), shuffle=False)
    for expected, got in zip(from_arrays, from_batches, strict=True):
        np.testing.assert_array_equal(got, expected)
