"""`params.yaml` validation: every bad value is one message naming the key."""

import dataclasses
import math
from pathlib import Path

import pytest

from pipeline import config
from pipeline.config import (
    RESOLVED_BY_FAMILY_AND_LOSS,
    TrainConfig,
    TrainSettings,
    checks,
    load_train_config,
)
from pipeline.errors import ConfigError
from pipeline.families import DEFAULT_FAMILY, FAMILIES, resolve
from pipeline.gan.losses import OBJECTIVES

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def load(path: Path) -> TrainSettings:
    """The train section as the stages use it: read, then resolved for its family."""
    return resolve(load_train_config(path), path)


def test_the_repository_params_are_valid_and_follow_the_design():
    raw = load_train_config(REPO / "params.yaml")
    assert raw == TrainConfig()  # params.yaml spells out the code's defaults
    config = resolve(raw)
    assert config.epochs == 3  # auto: the original's
    assert (config.batch_size, config.noise_dim) == (128, 96)
    # Two time scales and no momentum: the measured best for the seed (docs/DECISIONS.md).
    assert (config.learning_rate, config.discriminator_learning_rate) == (3e-3, 1.5e-3)
    assert (config.beta1, config.beta2, config.lr_schedule) == (0.0, 0.999, "constant")


def test_every_auto_is_resolved_once_into_a_type_that_cannot_hold_it():
    for name, family in FAMILIES.items():
        for loss in family.losses:
            resolved = resolve(TrainConfig(model=name, loss=loss))
            assert isinstance(resolved, TrainSettings)
            machine = ("precision", "distribute")  # chosen at run time, by the machine
            assert "auto" not in [v for k, v in resolved.as_dict().items() if k not in machine]
            with pytest.raises(TypeError, match="resolved already"):
                resolve(resolved)
    for key in RESOLVED_BY_FAMILY_AND_LOSS:
        with pytest.raises(TypeError, match=f"train.{key} is still auto"):
            dataclasses.replace(resolve(TrainConfig()), **{key: "auto"})


def test_what_runs_a_section_refuses_one_not_resolved():
    from pipeline.families import family_of
    from pipeline.gan.placement import Placement
    from pipeline.training.trainer import Trainer

    for run in (family_of, lambda config: Trainer(config, Placement("CPU:0", "float32"))):
        with pytest.raises(TypeError, match="expected the resolved train section"):
            run(TrainConfig())


def test_the_resolved_section_has_the_written_sections_keys_in_order():
    written = [field.name for field in dataclasses.fields(TrainConfig)]
    assert [field.name for field in dataclasses.fields(TrainSettings)] == written
    assert set(RESOLVED_BY_FAMILY_AND_LOSS) <= set(written)


def test_auto_epochs_keep_the_familys_generator_updates_at_any_critic_steps():
    """An epoch holds a generator update per `critic_steps` batches: `auto` epochs scale with
    the critic steps (and the loss's `updates_scale`), so every loss gets at least the
    family's generator updates."""
    for name, family in FAMILIES.items():
        for loss in family.losses:
            objective = OBJECTIVES[loss]
            resolved = resolve(TrainConfig(model=name, loss=loss))
            assert resolved.critic_steps == objective.critic_steps
            updates = family.defaults.epochs * objective.updates_scale
            assert resolved.epochs / resolved.critic_steps >= updates, (name, loss)
            assert (resolved.epochs - 1) / resolved.critic_steps < updates, (name, loss)
    one_step = resolve(TrainConfig(loss="wgan-gp", critic_steps=1))
    scale = OBJECTIVES["wgan-gp"].updates_scale
    assert (one_step.critic_steps, one_step.epochs) == (1, math.ceil(3 * scale))
    assert resolve(TrainConfig(loss="wgan-gp", critic_steps=2, epochs=4)).epochs == 4


def test_a_familys_own_setting_given_to_another_family_is_refused_by_name():
    defaults = TrainConfig()
    for owner in FAMILIES.values():
        others = [name for name, family in FAMILIES.items() if family is not owner]
        for key in owner.own_settings:
            default = getattr(defaults, key)
            if isinstance(default, bool):
                changed = not default
            elif isinstance(default, str):
                changed = next(c for c in checks(TrainConfig)[key].choices if c != default)
            else:
                changed = default + 1
            for other in others:
                with pytest.raises(ConfigError, match=f"train.{key}: applies to the {owner.name}"):
                    resolve(dataclasses.replace(defaults, model=other, **{key: changed}))


def test_auto_batch_size_is_the_familys_unless_the_loss_prescribes_one():
    assert resolve(TrainConfig()).batch_size == 128
    assert resolve(TrainConfig(loss="softmax")).batch_size == 64
    assert resolve(TrainConfig(loss="softmax", batch_size=32)).batch_size == 32
    for name, family in FAMILIES.items():
        for loss in family.losses:
            expected = OBJECTIVES[loss].prescribed.get("batch_size", family.defaults.batch_size)
            assert resolve(TrainConfig(model=name, loss=loss)).batch_size == expected


def test_auto_model_is_the_seed_dcgan():
    assert resolve(TrainConfig()).model == DEFAULT_FAMILY == "unconditional"


def test_auto_epochs_and_schedule_are_the_familys_own():
    assert resolve(TrainConfig(model="semi-supervised")).epochs == 16
    assert resolve(TrainConfig(model="infogan")).epochs == 3
    assert resolve(TrainConfig(model="semi-supervised", epochs=2)).epochs == 2
    assert resolve(TrainConfig(model="semi-supervised")).lr_schedule == "anneal"
    assert resolve(TrainConfig(model="infogan")).lr_schedule == "constant"
    assert resolve(TrainConfig(model="semi-supervised", lr_schedule="constant")).lr_schedule == (
        "constant"
    )


def test_the_optimizer_and_the_critics_batch_norm_are_the_losss_unless_chosen():
    wgan = resolve(TrainConfig(loss="wgan"))
    assert (wgan.optimizer, wgan.critic_norm, wgan.beta1, wgan.beta2) == ("adam", "batch", 0.5, 0.9)
    paper = resolve(TrainConfig(loss="wgan", optimizer="rmsprop", critic_norm="none"))
    assert (paper.optimizer, paper.critic_norm, paper.beta1, paper.beta2) == (
        "rmsprop",
        "none",
        None,  # Adam's: resolved to nothing, so no number claims they were used
        None,
    )
    plain = resolve(TrainConfig())
    assert (plain.optimizer, plain.critic_norm) == ("adam", "none")
    assert resolve(TrainConfig(model="infogan")).critic_norm == "none"


def test_batch_norm_in_the_critic_trains_on_one_device(tmp_path):
    path = write(tmp_path, "train:\n  critic_norm: batch\n  distribute: mirrored\n")
    with pytest.raises(ConfigError, match=r"train\.critic_norm: batch norm in the critic trains"):
        load(path)


def test_the_loss_prescribes_its_optimizer_and_a_rate_set_by_hand_wins():
    wgan = resolve(TrainConfig(loss="wgan-gp"))
    assert (wgan.learning_rate, wgan.discriminator_learning_rate) == (5e-4, 1e-3)
    assert (wgan.beta1, wgan.beta2) == (0.5, 0.9)
    mine = resolve(TrainConfig(loss="wgan-gp", learning_rate=2e-4, beta2=0.99))
    assert (mine.learning_rate, mine.discriminator_learning_rate, mine.beta2) == (2e-4, 1e-3, 0.99)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "train:\n  info_weight: 0.3\n",
            "train.info_weight: applies to the infogan model only; leave it at 0.5",
        ),
        (
            "train:\n  model: conditional\n  labelled_per_class: 5\n",
            "train.labelled_per_class: applies to the semi-supervised model only; leave it at 10",
        ),
        (
            "train:\n  loss: wgan-gp\n  r1_weight: 2\n",
            "train.r1_weight: the R1 penalty does not apply to unconditional with wgan-gp; "
            "leave it at 1.0",
        ),
        (
            "train:\n  model: semi-supervised\n  r1_every: 8\n",
            "train.r1_every: the R1 penalty does not apply to semi-supervised with gan",
        ),
        (
            "train:\n  model: semi-supervised\n  distribute: mirrored\n",
            "train.distribute: the semi-supervised model trains on one device",
        ),
        (
            "train:\n  model: infogan\n  loss: wgan-gp\n",
            "train.loss: the infogan model trains with gan or lsgan, not wgan-gp",
        ),
        ("train:\n  model: gan\n", "train.model: expected one of unconditional, conditional"),
    ],
)
def test_a_setting_that_does_not_apply_is_a_one_line_error(tmp_path, text, message):
    assert_one_line_error(tmp_path, text, message)


def assert_one_line_error(tmp_path, text: str, message: str) -> None:
    """Loading a params.yaml of `text` fails with one line that names the file and says
    `message`."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


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
        (
            "train:\n  loss: hinge\n",
            "train.loss: expected one of gan, lsgan, softmax, wgan, wgan-gp, got 'hinge'",
        ),
        (
            "train:\n  batch_size: 0\n",
            "train.batch_size: expected auto or a positive integer, got 0",
        ),
        ("train:\n  epochs: -1\n", "train.epochs: expected auto or a positive integer, got -1"),
        ("train:\n  epochs: 2.5\n", "train.epochs: expected auto or a positive integer, got 2.5"),
        ("train:\n  epochs: true\n", "train.epochs: expected auto or a positive integer, got True"),
        ("train:\n  learning_rate: fast\n", "train.learning_rate: expected auto or a positive"),
        ("train:\n  learning_rate: .nan\n", "train.learning_rate: expected auto or a positive"),
        ("train:\n  beta1: 1.0\n", "train.beta1: expected auto or a number in [0, 1), got 1.0"),
        ("train:\n  label_smoothing: 1\n", "train.label_smoothing: expected a number in [0, 1)"),
        (
            "train:\n  loss: wgan-gp\n  label_smoothing: 0.1\n",
            "train.label_smoothing: wgan-gp has no label to smooth",
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
        (
            "train:\n  epochs: 3\n  batch_size: 8\n  epochs: 30\n",
            "'epochs' is written twice (lines 2 and 4)",
        ),
        ("train:\n  noise_dim: 100000000\n", "train.noise_dim: at most 65536"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, message):
    assert_one_line_error(tmp_path, text, message)


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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "train:\n  model: semi-supervised\n  distribute: mirrored\n",
            "train.distribute: the semi-supervised model trains on one device; set it to auto "
            "or off",
        ),
        (
            "train:\n  loss: wgan\n  distribute: multi-worker\n",
            "train.distribute: wgan trains on one device; set it to auto or off",
        ),
        (
            "train:\n  loss: wgan\n  optimizer: rmsprop\n  beta1: 0.5\n",
            "train.beta1: Adam's; this run trains with rmsprop; leave it at 'auto'",
        ),
        (
            "train:\n  model: infogan\n  critic_norm: batch\n",
            "train.critic_norm: the infogan model's discriminator is its own; leave it at 'auto'",
        ),
        (
            "train:\n  loss: wgan\n  labelled_per_class: 5\n",
            "train.labelled_per_class: applies to the semi-supervised model only; leave it at 10",
        ),
        (
            "train:\n  loss: wgan-gp\n  label_seed: 3\n",
            "train.label_seed: applies to the semi-supervised model only; leave it at 0",
        ),
    ],
)
def test_the_whole_message_of_a_setting_that_does_not_apply(tmp_path, text, message):
    """Each reason kept beside the others: a loss that drops R1 or Adam still refuses another
    family's settings."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value) == f"{path}: {message}"


def test_an_r1_weight_of_choice_applies_where_r1_does(tmp_path):
    assert load(write(tmp_path, "train:\n  r1_weight: 2.0\n")).r1_weight == 2.0


def test_a_section_resolved_in_code_names_params_yaml():
    with pytest.raises(ConfigError, match=r"^params\.yaml: train\.model: expected one of"):
        resolve(dataclasses.replace(TrainConfig(), model="gan"))


def test_the_family_and_whether_it_distributes_follow_the_section(tmp_path):
    from pipeline.families import distributes, family_of

    conditional = load(write(tmp_path, "train:\n  model: conditional\n"))
    family = family_of(conditional)
    assert (family.name, family.config) == ("conditional", conditional)
    assert distributes(conditional)
    assert not distributes(load(write(tmp_path, "train:\n  loss: wgan\n")))
    assert not distributes(load(write(tmp_path, "train:\n  model: semi-supervised\n")))


def test_a_merge_key_may_be_written_over_as_yaml_means_it(tmp_path):
    params = config.read_params(write(tmp_path, "a: &base {b: 1, c: 2}\nd:\n  <<: *base\n  b: 3\n"))
    assert params["d"] == {"b": 3, "c": 2}


@pytest.mark.parametrize("opset", [16, 19, 99])
def test_an_opset_tf2onnx_cannot_write_is_refused(tmp_path, opset):
    with pytest.raises(
        ConfigError, match=f"export.opset: expected an integer from 17 to 18, got {opset}"
    ):
        config.load_export_config(write(tmp_path, f"export:\n  opset: {opset}\n"))


def test_the_opset_bound_is_tf2onnxs_own():
    import tf2onnx.constants

    assert max(tf2onnx.constants.OPSET_TO_IR_VERSION) == config.TF2ONNX_MAX_OPSET
