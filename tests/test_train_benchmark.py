"""The training benchmark on tiny data: what it writes, and its arithmetic. No speed asserted."""

import json

import pytest

from conftest import (
    SSL_LABELLED_PER_CLASS,
    STABILISED,
    bench_train_args,
    invoke,
    invoke_ok,
    set_params,
)
from pipeline.benchmarks.benchmark import forward_flops
from pipeline.benchmarks.train_benchmark import PARTS, event_counts, step_flops
from pipeline.config import TrainConfig
from pipeline.families import FAMILIES, resolve
from pipeline.gan.networks import build_discriminator, build_generator


@pytest.mark.bf16
def test_writes_the_loop_beside_the_baselines_its_profile_and_targets(
    tmp_path, tiny_dataset, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    tiny_dataset.write_folder(tmp_path / "data" / "mnist")
    set_params(
        tmp_path,
        train={"batch_size": 8, "noise_dim": 8, **STABILISED},
        train_benchmark={"windows": 2},
    )
    metrics = json.loads(invoke_ok(*bench_train_args()).stdout)
    assert (metrics["windows"], metrics["steps_per_window"]) == (2, 4)
    for path in ("metrics/train_benchmark.json", "plots/train_benchmark/targets.csv"):
        assert (tmp_path / path).is_file(), path
    rates = metrics["images_per_second"]
    assert set(rates) == {"plain_float32", "plain_bfloat16", "project_step", "loop"}
    assert all(rate > 0 for rate in rates.values())
    assert rates["loop"] < rates["project_step"]  # the loop is the step and more
    assert metrics["loop_over_plain_bfloat16"] == pytest.approx(
        rates["loop"] / rates["plain_bfloat16"], rel=2e-3
    )
    share = rates["loop"] * metrics["mflop_per_image"] / 1e3 / metrics["matmul_gflops"]["bfloat16"]
    assert metrics["loop_share_of_bfloat16_peak"] == pytest.approx(share, abs=1e-3)
    profile = metrics["profile"]
    assert set(profile) == set(PARTS)
    assert sum(part["share"] for part in profile.values()) == pytest.approx(1, abs=0.01)
    # On networks this small R1's extra cost is within the timing's noise: never below 0.
    assert profile["r1"]["ms_per_step"] >= 0 and profile["average"]["ms_per_step"] > 0
    assert profile["tracking"]["ms_per_step"] == 0  # the tiny run tracks nothing
    steps = 1000 / (sum(part["ms_per_step"] for part in profile.values()) / 8)
    assert rates["loop"] == pytest.approx(steps, rel=0.01)
    target = metrics["targets"]["loop_over_plain_bfloat16_step"]
    assert target == {
        "target": 1.0,
        "measured": metrics["loop_over_plain_bfloat16"],
        "met": metrics["loop_over_plain_bfloat16"] >= 1.0,
    }
    table = (tmp_path / "plots/train_benchmark/targets.csv").read_text().splitlines()
    assert table[0] == "target,measured,goal,met"
    assert table[1].startswith(f"loop_over_plain_bfloat16_step,{target['measured']},1.0,")


def test_events_are_counted_as_the_loop_runs_them():
    """The default run: 468 steps an epoch, 3 epochs; tracking every 300 steps and at each
    epoch's end (300, 468, 600, 900, 936, 1200, 1404), frames every 300 and at the last step,
    checkpoints every 200 and at the last step."""
    counts = event_counts(TrainConfig(), steps_per_epoch=468, total_steps=1404)
    assert counts == {"tracking": 7, "frames": 5, "checkpoints": 8}
    untracked = event_counts(TrainConfig(track_every=0), steps_per_epoch=468, total_steps=1404)
    assert untracked["tracking"] == 0


def test_a_training_image_costs_four_generator_and_eight_discriminator_passes():
    generator, discriminator = build_generator(96), build_discriminator()
    expected = 4 * forward_flops(generator) + 8 * forward_flops(discriminator)
    assert step_flops(resolve(TrainConfig())) == expected
    assert expected / 1e6 == pytest.approx(181.7, abs=0.1)
    # Five discriminator steps (each drawing its fakes) per generator step.
    wgan = step_flops(resolve(TrainConfig(loss="wgan-gp", critic_steps=5)))
    g, d = forward_flops(generator), forward_flops(discriminator)
    assert wgan == (5 * (g + 6 * d) + 3 * g + 2 * d) // 5


# What a family needs of the tiny dataset's 64 images (6 or 7 of each digit).
TINY_SETTINGS = {"semi-supervised": {"labelled_per_class": SSL_LABELLED_PER_CLASS}}


@pytest.mark.bf16
@pytest.mark.parametrize("model", sorted(FAMILIES))
def test_every_model_has_its_step_timed(tmp_path, tiny_dataset, monkeypatch, model):
    monkeypatch.chdir(tmp_path)
    tiny_dataset.write_folder(tmp_path / "data" / "mnist")
    train = {"batch_size": 8, "noise_dim": 8, "model": model, **TINY_SETTINGS.get(model, {})}
    set_params(tmp_path, train=train, train_benchmark={"windows": 1, "steps": 1})
    metrics = json.loads(invoke_ok(*bench_train_args()).stdout)
    assert all(rate > 0 for rate in metrics["images_per_second"].values())


@pytest.mark.bf16
def test_too_little_data_is_a_clear_error(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_dataset.write_folder(tmp_path / "data" / "mnist")
    set_params(tmp_path, train={"batch_size": 32})
    result = invoke(*bench_train_args())
    assert result.exit_code == 1
    assert "64 training images; the benchmark cycles through 8 steps of 32" in result.output
    assert "Traceback" not in result.output
