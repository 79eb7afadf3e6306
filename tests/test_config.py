"""`params.yaml` validation: every bad value is one message naming the key."""

import dataclasses
from pathlib import Path

import pytest

from pipeline import config
from pipeline.config import TrainConfig, load_train_config
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_the_repository_params_are_valid_and_follow_the_design():
    config = load_train_config(REPO / "params.yaml")
    assert config.epochs == 3  # auto: the original's
    assert (config.batch_size, config.noise_dim, config.beta1) == (128, 96, "auto")
    # Two time scales, the measured best per model (README).
    assert (config.learning_rate, config.discriminator_learning_rate) == ("auto", "auto")
    assert config == type(config)()  # params.yaml spells out the code's defaults


def test_auto_epochs_are_the_models_own():
    assert TrainConfig(model="semi-supervised").epochs == 16
    assert TrainConfig(model="infogan").epochs == 3
    assert TrainConfig(model="semi-supervised", epochs=2).epochs == 2


def test_auto_schedule_anneals_only_the_semi_supervised_model():
    assert TrainConfig(model="semi-supervised").lr_schedule == "anneal"
    assert TrainConfig().lr_schedule == TrainConfig(model="infogan").lr_schedule == "constant"
    assert TrainConfig(model="semi-supervised", lr_schedule="constant").lr_schedule == "constant"
    assert TrainConfig(lr_schedule="anneal").lr_schedule == "anneal"


@pytest.mark.parametrize(
    ("name", "load"),
    [
        ("export", config.load_export_config),
        ("benchmark", config.load_benchmark_config),
        ("train_benchmark", config.load_train_benchmark_config),
        ("classifier", config.load_classifier_config),
        ("evaluate", config.load_evaluate_config),
    ],
)
def test_every_repository_section_spells_out_the_code_defaults(name, load):
    written = config.read_params(REPO / "params.yaml")[name]
    section = load(REPO / "params.yaml")
    assert section == type(section)()
    assert set(written) == {field.name for field in dataclasses.fields(section)}


def test_exponent_notation_is_a_number(tmp_path):
    # PyYAML reads 1e-4 (no dot) as a string; `dvc exp run -S train.learning_rate=1e-4` writes it.
    assert (
        load_train_config(write(tmp_path, "train:\n  learning_rate: 1e-4\n")).learning_rate == 1e-4
    )


def test_missing_keys_take_defaults(tmp_path):
    assert load_train_config(write(tmp_path, "train:\n  epochs: 5\n")) == TrainConfig(epochs=5)
    assert load_train_config(write(tmp_path, "")) == TrainConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train:\n  loss: wgan\n", "train.loss: expected one of gan, lsgan, wgan-gp, got 'wgan'"),
        ("train:\n  batch_size: 0\n", "train.batch_size: expected a positive integer, got 0"),
        ("train:\n  epochs: -1\n", "train.epochs: expected auto or a positive integer, got -1"),
        ("train:\n  epochs: 2.5\n", "train.epochs: expected auto or a positive integer, got 2.5"),
        ("train:\n  epochs: true\n", "train.epochs: expected auto or a positive integer, got True"),
        ("train:\n  learning_rate: fast\n", "train.learning_rate: expected auto or a positive"),
        ("train:\n  learning_rate: .nan\n", "train.learning_rate: expected auto or a positive"),
        ("train:\n  beta1: 1.0\n", "train.beta1: expected auto or a number in [0, 1), got 1.0"),
        ("train:\n  label_smoothing: 1\n", "train.label_smoothing: expected a number in [0, 1)"),
        (
            "train:\n  loss: wgan-gp\n  label_smoothing: 0.1\n",
            "train.label_smoothing: wgan-gp's critic scores have no label to smooth",
        ),
        ("train:\n  r1_weight: -1\n", "train.r1_weight: expected a number >= 0, got -1"),
        (
            "train:\n  categorical_jitter: yes please\n",
            "train.categorical_jitter: expected true or false, got 'yes please'",
        ),
        ("train:\n  seed: -3\n", "train.seed: expected an integer >= 0, got -3"),
        ("train:\n  epoch: 3\n", "train.epoch: unknown key (known: seed, epochs, batch_size"),
        ("train: 3\n", "train: expected a mapping, got int"),
        ("- a\n- b\n", "expected a mapping of sections, got list"),
        ("train: [\n", "not valid YAML"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_train_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read \(No such file or directory\)"):
        load_train_config(tmp_path / "nope.yaml")


def test_each_default_passes_its_own_check():
    sections = [
        config.TrainConfig,
        config.ExportConfig,
        config.BenchmarkConfig,
        config.TrainBenchmarkConfig,
        config.ClassifierConfig,
        config.EvaluateConfig,
    ]
    for section in sections:
        for field in dataclasses.fields(section):
            value = list(field.default) if isinstance(field.default, tuple) else field.default
            checked = field.metadata["check"](field.name, value)
            assert checked == field.default, (section.__name__, field.name)
