"""The presets of `presets/` and `dcgan exp`, which runs one as a DVC experiment (the run
itself: tests/test_sweep.py)."""

from __future__ import annotations

import pytest

from conftest import REPO, invoke, invoke_ok
from pipeline.families import DEFAULT_FAMILY, FAMILIES
from pipeline.gan.losses import OBJECTIVES, wasserstein_critic_loss
from pipeline.presets import preset_names, read_preset
from pipeline.reporting.preset_runs import meets, preset_runs, spread, targets_text, without_seed

PRESETS = preset_names(REPO)


def test_there_are_presets_for_quality_every_family_and_the_wasserstein_losses():
    """A preset for each family but the default, named as the registry names it, and one
    named for the paper of each Wasserstein loss, whose settings its `auto` may depart from."""
    families = set(FAMILIES) - {DEFAULT_FAMILY}
    critics = {
        name
        for name, objective in OBJECTIVES.items()
        if objective.discriminator_loss is wasserstein_critic_loss
    }
    papers = {f"{name}-paper" for name in critics}
    assert {"quality", "wgan-gp", *families, *papers} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_is_valid_over_params_yaml_and_says_what_it_is(name):
    preset = read_preset(REPO, name)
    assert preset.about and preset.params
    assert all(value.startswith(("train.", "evaluate.")) for value in preset.overrides())


def test_dry_run_prints_the_dvc_command():
    out = invoke_ok(
        "exp", "wgan-gp", "--seed", "2", "--dry-run", "-S", "train.track_every=0"
    ).output
    assert out.strip() == (
        "$ dvc exp run -n wgan-gp-seed-2 -S train.loss=wgan-gp -S train.epochs=12 "
        "-S train.seed=2 -S train.track_every=0"
    )


def one_line_error(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: ")
    return result.output


def write_preset(tmp_path, text):
    (tmp_path / "presets").mkdir(exist_ok=True)
    (tmp_path / "presets/p.yaml").write_text(text)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    return ["exp", "p", "--dry-run", "--params", str(tmp_path / "params.yaml")]


@pytest.mark.parametrize(
    "text, words",
    [
        ("train:\n  epoch: 3\n", "train.epoch: unknown key"),
        ("train:\n  epochs: -1\n", "train.epochs"),
        ("train:\n  info_weight: 2.0\n", "train.info_weight: applies to the infogan model only"),
        ("trian:\n  epochs: 3\n", "trian: not a section of params.yaml"),
        ("train:\n  model: wgan\n", "train.model: expected one of"),
        ("runs: nope\n", "runs: expected a list of experiment names"),
        ("targets:\n  fid: 2\n", "targets: expected numbers for some of frechet_distance"),
        ("targets:\n  frechet_distance: low\n", "targets: expected numbers"),
        ("train: [\n", "not valid YAML"),
    ],
)
def test_a_bad_preset_is_one_line_before_anything_runs(tmp_path, text, words):
    message = one_line_error(*write_preset(tmp_path, text))
    assert words in message and "presets/p.yaml" in message


@pytest.mark.parametrize(
    "flag, words",
    [
        ("train.batch_size=-1", "train.batch_size"),
        ("trian.epochs=3", "-S trian.epochs=3: trian: not a section of params.yaml"),
        ("train.epochs", "-S train.epochs: expected section.key=value"),
        ("train.epochs=[", "the value is not valid YAML"),
        ("train.info_weight=2.0", "train.info_weight: applies to the infogan model only"),
        ("export.opset=x", "export.opset"),
    ],
)
def test_a_bad_set_value_is_one_line_before_dvc_is_called(flag, words):
    message = one_line_error("exp", "quality", "--dry-run", "-S", flag)
    assert words in message and "$ dvc" not in message


def test_an_unknown_preset_names_those_there_are():
    message = one_line_error("exp", "qualty", "--dry-run")
    assert "no preset 'qualty'" in message and "quality" in message and "bigan" in message


def row(name, levers):
    return {"name": name, "model": "unconditional", "loss": "gan", "epochs": 10, "levers": levers}


def test_a_presets_runs_are_those_with_its_settings_at_any_seed_and_those_it_names():
    preset = read_preset(REPO, "quality")  # epochs 10, r1_every 1
    rows = [
        row("a", "r1_every 1"),
        row("b", "seed 1, r1_every 1"),
        row("c", "seed 1, r1_every 1, label_smoothing 0.1"),
        row("d", "r1_every 2"),
        {**row("e", "r1_every 1"), "epochs": 3},
        {**row("f", "r1_every 1"), "loss": "lsgan"},
    ]
    assert [r["name"] for r in preset_runs(preset, REPO, rows)] == ["a", "b"]
    named = read_preset(REPO, "infogan")
    rows = [row(name, "anything") for name in (named.runs[0], "other")]
    assert [r["name"] for r in preset_runs(named, REPO, rows)] == [named.runs[0]]


def test_without_seed_keeps_the_label_seed():
    assert without_seed("seed 1, label_seed 2") == "label_seed 2"
    assert without_seed("seed 3") == "defaults"


def test_spread_is_the_mean_and_sample_deviation_or_one_value_when_the_runs_agree():
    assert spread([1.2344, 1.2341], ".3f") == "1.234"
    assert spread([7.0], ".1f") == "7.0"
    # mean 2.25; deviations -0.25, -0.75, 1.0: (0.0625 + 0.5625 + 1) / 2 = 0.8125, sd 0.901
    assert spread([2.0, 1.5, 3.25], ".2f") == "2.25 ± 0.90"


def test_a_run_meets_its_presets_targets_only_when_it_reaches_every_one():
    targets = {"frechet_distance": 1.5, "train_minutes": 10, "family_measure": 0.99}
    good = {
        "model": "conditional",
        "frechet_distance": 1.48,
        "train_seconds": 600.0,
        "label_accuracy": 0.9937,
    }
    assert meets(good, targets)
    assert not meets({**good, "frechet_distance": 1.51}, targets)
    assert not meets({**good, "train_seconds": 600.1}, targets)
    assert not meets({**good, "train_seconds": None}, targets)  # not timed: not shown to meet
    assert not meets({**good, "label_accuracy": 0.989}, targets)
    assert not meets({**good, "label_accuracy": None}, targets)
    assert meets({"frechet_distance": 1.0}, {"frechet_distance": 1.5})
    runs = [good, {**good, "frechet_distance": 2.0}]
    assert targets_text(targets, runs) == ("FD ≤ 1.5, ≤ 10 min, its measure ≥ 0.99: 1 of 2 runs")
    assert targets_text({}, runs) == "-"
