"""Quality tracking during training: the held-out reference, the measurements, the plot file."""

import json
import math
import shutil

import numpy as np
import pytest

from conftest import (
    TINY_STAGES,
    invoke,
    invoke_ok,
    live_rows,
    set_params,
    stage_args,
    train_defaults,
)
from pipeline.config import ClassifierConfig
from pipeline.data.datasets import load_split
from pipeline.evaluation.classifier import load_feature_model, split_indices
from pipeline.evaluation.quality import gaussian_statistics
from pipeline.storage.images import from_uint8
from pipeline.training.tracking import (
    QUALITY_COLUMNS,
    Measurement,
    QualityTracker,
    summary,
)

# With the weight average, as by default: what is measured and saved is the recalibrated average.
TRACKED = {
    "epochs": 2,
    "noise_dim": 8,
    "track_every": 1,
    "track_samples": 100,
    **train_defaults("average_decay"),
}


@pytest.fixture(scope="module")
def classified(tmp_path_factory, tiny_dataset):
    """A folder with the tiny dataset and a classifier trained on it by the classifier stage."""
    folder = tmp_path_factory.mktemp("classified")
    tiny_dataset.write_folder(folder / "data" / "mnist")
    set_params(folder, **TINY_STAGES)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        invoke_ok(*stage_args("classifier"))
    return folder


def tracked_run(folder, monkeypatch, **train):
    monkeypatch.chdir(folder)
    set_params(folder, train={**TRACKED, **train}, classifier=TINY_STAGES["classifier"])
    return json.loads(invoke_ok(*stage_args("train")).stdout)


def quality_rows(folder) -> list[list[float]]:
    """dvclive's quality tables joined into rows of `QUALITY_COLUMNS`, one per tracked step."""
    tables = {column: live_rows(folder, column) for column in QUALITY_COLUMNS[1:]}
    for column, table in tables.items():
        assert table[0] == ["step", column]
    steps = [row[0] for row in tables["train_seconds"][1:]]
    assert all([row[0] for row in table[1:]] == steps for table in tables.values())
    return [
        [float(step), *(float(table[1 + i][1]) for table in tables.values())]
        for i, step in enumerate(steps)
    ]


def test_held_out_images_are_the_ones_the_classifier_did_not_learn_from():
    config = ClassifierConfig(seed=3, validation_size=20)
    held_out, kept = split_indices(100, config)
    assert len(held_out) == 20 and len(kept) == 80
    assert set(held_out).isdisjoint(kept)
    assert set(held_out) | set(kept) == set(range(100))
    # The same seed gives the same split in the classifier stage and the tracker.
    np.testing.assert_array_equal(split_indices(100, config)[0], held_out)


def test_the_reference_is_the_held_out_training_images_never_the_test_split(classified):
    config = ClassifierConfig(**TINY_STAGES["classifier"])
    classifier = classified / "models/classifier.keras"
    data = classified / "data/mnist"
    train_images, _ = load_split(data, "train")
    tracker = QualityTracker.from_classifier(
        classifier, train_images, config, samples=100, seed=0, noise_dim=8, classes=0
    )
    test_images, _ = load_split(data, "test")
    features = load_feature_model(classifier)
    held_out = train_images[split_indices(len(train_images), config)[0]]

    def statistics(images):
        return gaussian_statistics(features.predict(from_uint8(images), verbose=0)[0])

    np.testing.assert_allclose(tracker.reference[0], statistics(held_out)[0], rtol=1e-5)
    assert not np.allclose(tracker.reference[0], statistics(test_images)[0], rtol=1e-3)


def test_a_tracked_run_writes_the_quality_curve_and_summary(classified, monkeypatch):
    metrics = tracked_run(classified, monkeypatch)
    rows = quality_rows(classified)
    assert [int(row[0]) for row in rows] == [1, 2, 3, 4]
    seconds = [row[1] for row in rows]
    assert seconds == sorted(seconds) and seconds[0] > 0
    for row in rows:
        assert row[2] >= 0  # Frechet distance
        assert 1 <= row[3] <= 10  # classifier score
        assert 0 <= row[4] <= 0.1 and 0 <= row[5] <= 1
        assert np.isfinite(row[6])  # KID, which can come out below 0
    best = min(rows, key=lambda row: row[2])
    assert metrics["validation_frechet_distance"] == rows[-1][2]
    assert metrics["best_validation_frechet_distance"] == best[2]
    assert metrics["best_validation_step"] == int(best[0])
    assert metrics["validation_kernel_distance"] == rows[-1][6]


def test_a_resumed_run_keeps_its_quality_history(classified, monkeypatch, tmp_path):
    tracked_run(classified, monkeypatch, epochs=2)
    straight = quality_rows(classified)

    other = tmp_path / "resumed"
    shutil.copytree(classified / "data", other / "data")
    shutil.copytree(classified / "models", other / "models")
    tracked_run(other, monkeypatch, epochs=1)
    tracked_run(other, monkeypatch, epochs=2)
    resumed = quality_rows(other)
    assert [row[0] for row in resumed] == [row[0] for row in straight]
    for mine, theirs in zip(resumed, straight, strict=True):
        assert mine[2:] == pytest.approx(theirs[2:], rel=1e-6)


def test_tracking_without_a_classifier_is_one_clear_error(tmp_path, tiny_dataset, monkeypatch):
    tiny_dataset.write_folder(tmp_path / "data" / "mnist")
    monkeypatch.chdir(tmp_path)
    set_params(tmp_path, train=TRACKED)
    result = invoke(*stage_args("train"))
    assert result.exit_code == 2
    assert "no such file: models/classifier.keras (run `dcgan classifier` first" in result.output
    assert "train.track_every: 0" in result.output
    assert not (tmp_path / "models" / "generator.keras").exists()


def test_summary_of_hand_made_measurements():
    measurements = [
        Measurement(200, 10.0, 30.5, 7.0, 0.05, 0.1, 2.5),
        Measurement(400, 20.0, 12.25, 8.5, 0.08, 0.02, 0.75),
        Measurement(600, 30.0, 14.0, 8.4, 0.07, 0.03, 0.5),
    ]
    assert summary(measurements) == {
        "validation_frechet_distance": 14.0,
        "best_validation_frechet_distance": 12.25,
        "best_validation_step": 400,
        "validation_kernel_distance": 0.5,
    }
    assert summary([]) == {}
    assert Measurement.from_row(measurements[1].row()) == measurements[1]


def test_a_history_row_made_before_the_kernel_distance_loads_without_it():
    older = Measurement.from_row((400, 20.0, 12.25, 8.5, 0.08, 0.02))
    assert (older.step, older.frechet_distance, older.unsure_share) == (400, 12.25, 0.02)
    assert math.isnan(older.kernel_distance)


@pytest.mark.parametrize("export_weights", ["best", "last"])
def test_the_saved_generator_is_the_tracked_one_asked_for(classified, monkeypatch, export_weights):
    import keras

    metrics = tracked_run(classified, monkeypatch, epochs=3, export_weights=export_weights)
    generator = keras.saving.load_model(classified / "models/generator.keras")
    tracker = QualityTracker.from_classifier(
        classified / "models/classifier.keras",
        load_split(classified / "data/mnist", "train")[0],
        ClassifierConfig(**TINY_STAGES["classifier"]),
        samples=TRACKED["track_samples"],
        seed=0,
        noise_dim=8,
        classes=0,
    )

    def draw(noise, labels):
        images = generator(noise, training=False).numpy()
        return np.rint((np.clip(images, -1, 1) + 1) * 127.5).astype(np.uint8)[..., 0]

    measured = tracker.measure(draw, step=0, train_seconds=0).frechet_distance
    expected = metrics[
        "best_validation_frechet_distance"
        if export_weights == "best"
        else "validation_frechet_distance"
    ]
    assert measured == pytest.approx(expected, rel=1e-3)
    if export_weights == "best":
        rows = quality_rows(classified)
        assert metrics["best_validation_step"] in [int(row[0]) for row in rows]


def test_epoch_ends_are_tracked_whatever_the_cadence(classified, monkeypatch):
    """Two steps an epoch, every third step: steps 2 (epoch end), 3 and 4 (epoch end, last)."""
    tracked_run(classified, monkeypatch, epochs=2, track_every=3)
    rows = quality_rows(classified)
    assert [int(row[0]) for row in rows] == [2, 3, 4]
