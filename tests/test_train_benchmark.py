"""The training benchmark on tiny data: what it writes, and its arithmetic. No speed asserted."""

import json

import pytest

from conftest import declared_paths, invoke, invoke_ok, set_params, stage_args


def test_writes_medians_ratio_and_target(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_dataset.write_folder(tmp_path / "data" / "mnist")
    set_params(tmp_path, train={"batch_size": 8, "noise_dim": 8}, train_benchmark={"windows": 2})
    metrics = json.loads(invoke_ok(*stage_args("train_benchmark")).stdout)
    assert (metrics["windows"], metrics["steps_per_window"]) == (2, 4)
    for path in declared_paths("train_benchmark"):
        assert (tmp_path / path).is_file(), path
    rates = metrics["images_per_second"]
    assert set(rates) == {"plain_float32", "project"}
    assert all(rate > 0 for rate in rates.values())
    assert metrics["project_over_plain"] == round(rates["project"] / rates["plain_float32"], 3)
    target = metrics["targets"]["project_over_plain_float32_step"]
    assert target == {
        "target": 2.5,
        "measured": metrics["project_over_plain"],
        "met": metrics["project_over_plain"] >= 2.5,
    }
    table = (tmp_path / "plots/train_benchmark/targets.csv").read_text().splitlines()
    assert table[0] == "target,measured,goal,met"
    assert table[1].startswith(f"project_over_plain_float32_step,{target['measured']},2.5,")


@pytest.mark.parametrize(
    "model",
    [
        {"model": "conditional"},
        {"model": "infogan"},
        {"model": "semi-supervised", "labelled_per_class": 2},
    ],
)
def test_every_model_has_its_step_timed(tmp_path, tiny_dataset, monkeypatch, model):
    monkeypatch.chdir(tmp_path)
    tiny_dataset.write_folder(tmp_path / "data" / "mnist")
    train = {"batch_size": 8, "noise_dim": 8, **model}
    set_params(tmp_path, train=train, train_benchmark={"windows": 1, "steps": 1})
    metrics = json.loads(invoke_ok(*stage_args("train_benchmark")).stdout)
    assert all(rate > 0 for rate in metrics["images_per_second"].values())


def test_too_little_data_is_a_clear_error(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_dataset.write_folder(tmp_path / "data" / "mnist")
    set_params(tmp_path, train={"batch_size": 32})
    result = invoke(*stage_args("train_benchmark"))
    assert result.exit_code == 1
    assert "64 training images; the benchmark cycles through 8 steps of 32" in result.output
    assert "Traceback" not in result.output
