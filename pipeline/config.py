"""`params.yaml`, read in one place and validated with messages that name the bad key."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

BATCH_NORMS = ("synchronized", "per-replica")  # the generator's, under a tf.distribute strategy
EXPORT_WEIGHTS = ("best", "last")
LR_SCHEDULES = ("auto", "constant", "anneal")
AUGMENTATIONS = ("none", "translation")
DISTRIBUTIONS = ("auto", "off", "mirrored", "multi-worker")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
OPTIMIZERS = ("auto", "adam", "rmsprop")
CRITIC_NORMS = ("auto", "none", "batch")
CYCLE_TRAINS = ("both", "encoder")  # bigan: the networks its image cycle term trains
# The newest ONNX opset tf2onnx 1.17 converts to (`tf2onnx.constants.OPSET_TO_IR_VERSION`; a test
# holds the two together), so a newer one is refused here rather than deep in the export.
TF2ONNX_MAX_OPSET = 18


def shown(value: Any, limit: int = 60) -> str:
    """A value from params.yaml as an error message quotes it: its repr, cut to `limit`
    characters (a value can be a megabyte of text)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key}: expected a positive integer, got {shown(value)}")
    return value


def _number(value: Any) -> float | None:
    """A YAML number, or a string spelling one: PyYAML (YAML 1.1) reads `1e-4` as a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _positive_float(key: str, value: Any) -> float:
    number = _number(value)
    if number is None or not number > 0 or number == float("inf"):
        raise ConfigError(f"{key}: expected a positive number, got {shown(value)}")
    return number


def _non_negative_float(key: str, value: Any) -> float:
    number = _number(value)
    if number is None or not number >= 0 or number == float("inf"):
        raise ConfigError(f"{key}: expected a number >= 0, got {shown(value)}")
    return number


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {shown(value)}")
    return value


def _auto_count(key: str, value: Any) -> int | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key}: expected auto or a positive integer, got {shown(value)}")
    return value


def _name(key: str, value: Any) -> str:
    """A family's or a loss's name; which names exist is the registry's to say
    (`pipeline.families.resolve`)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a name, got {shown(value)}")
    return value


def _rate(key: str, value: Any) -> float | str:
    """A learning rate, or `auto`: the family's (`pipeline.families`)."""
    if value == "auto":
        return value
    number = _number(value)
    if number is None or not number > 0 or number == float("inf"):
        raise ConfigError(f"{key}: expected auto or a positive number, got {shown(value)}")
    return number


def _beta(key: str, value: Any) -> float | str:
    """One of Adam's betas, or `auto`: the family's, or the loss's (`pipeline.families`)."""
    if value == "auto":
        return value
    number = _number(value)
    if number is None or not 0 <= number < 1:
        raise ConfigError(f"{key}: expected auto or a number in [0, 1), got {shown(value)}")
    return number


def _fraction(key: str, value: Any) -> float:
    number = _number(value)
    if number is None or not 0 <= number < 1:
        raise ConfigError(f"{key}: expected a number in [0, 1), got {shown(value)}")
    return number


def _positive_fraction(key: str, value: Any) -> float:
    number = _number(value)
    if number is None or not 0 < number <= 1:
        raise ConfigError(f"{key}: expected a number in (0, 1], got {shown(value)}")
    return number


def _between(minimum: int, maximum: int):
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ConfigError(
                f"{key}: expected an integer from {minimum} to {maximum}, got {shown(value)}"
            )
        return value

    return check


def _choice(choices: tuple[str, ...]):
    def check(key: str, value: Any) -> str:
        if value not in choices:
            raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {shown(value)}")
        return value

    check.choices = choices  # what the setting can be, for whoever lists them
    return check


def _at_least(minimum: int):
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{key}: expected an integer >= {minimum}, got {shown(value)}")
        return value

    return check


def _targets(defaults: tuple[tuple[str, float], ...]):
    """Speed targets: a mapping of known target names to the ratio each must reach, kept as
    (name, ratio) pairs in the defaults' order; a name left out keeps its default."""
    known = dict(defaults)

    def check(key: str, value: Any) -> tuple[tuple[str, float], ...]:
        pairs = value
        if isinstance(value, list | tuple) and all(
            isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)
            for pair in value
        ):
            pairs = dict(value)  # the (name, ratio) pairs the section holds
        if not isinstance(pairs, dict):
            raise ConfigError(f"{key}: expected a mapping of target names to ratios")
        unknown = sorted(set(pairs) - set(known), key=str)
        if unknown:
            raise ConfigError(f"{key}.{unknown[0]}: unknown target (known: {', '.join(known)})")
        goals = {
            **known,
            **{name: _positive_float(f"{key}.{name}", v) for name, v in pairs.items()},
        }
        return tuple(goals.items())

    return check


# What each benchmark's ratios should reach (each measured side by side in one run).
SAMPLING_TARGETS = (
    ("onnxruntime_over_tensorflow_batch_1", 3.0),
    ("onnxruntime_over_tensorflow_min_batch_16_to_1024", 1.3),
    ("onnxruntime_share_of_matmul_peak_batch_256", 0.7),
    ("int8_over_tensorflow_batch_256", 2.0),
    ("int8_over_tensorflow_bf16_batch_256", 1.0),
    ("int8_over_onnxruntime_batch_256", 2.0),
    ("float32_file_over_int8_file", 3.5),
)
TRAINING_TARGETS = (
    ("loop_over_plain_bfloat16_step", 1.0),
    ("loop_share_of_bfloat16_peak", 0.45),
)


def _positive_ints(key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"{key}: expected a non-empty list of positive integers, got {shown(value)}"
        )
    return tuple(_positive_int(key, item) for item in value)


def setting(default: Any, check) -> Any:
    """A section's field: its default and the check a value from params.yaml must pass, in one
    place (the defaults are also what params.yaml spells out; a test holds them equal)."""
    return dataclasses.field(default=default, metadata={"check": check})


def checks(section) -> dict[str, Any]:
    """Key -> check of a section's dataclass, in field order."""
    return {field.name: field.metadata["check"] for field in dataclasses.fields(section)}


@dataclass(frozen=True)
class TrainConfig:
    """The `train` section as params.yaml says it; `pipeline.families.resolve` replaces each
    `auto` and checks what applies to the family and loss. Defaults follow the classic CS231n
    DCGAN (see the design notes)."""

    seed: int = setting(0, _at_least(0))
    epochs: int | str = setting("auto", _auto_count)
    batch_size: int | str = setting("auto", _auto_count)  # auto: the family's, or the loss's
    noise_dim: int = setting(96, _positive_int)  # at most the samplers' bound: `resolve`
    model: str = setting("auto", _name)  # auto: `pipeline.families.DEFAULT_FAMILY`
    loss: str = setting("gan", _name)
    critic_steps: int | str = setting("auto", _auto_count)  # auto: the loss's
    learning_rate: float | str = setting("auto", _rate)
    discriminator_learning_rate: float | str = setting("auto", _rate)
    beta1: float | str = setting("auto", _beta)
    beta2: float | str = setting("auto", _beta)
    optimizer: str = setting("auto", _choice(OPTIMIZERS))  # auto: the loss's
    critic_norm: str = setting("auto", _choice(CRITIC_NORMS))  # auto: the loss's
    label_smoothing: float = setting(0.0, _fraction)
    r1_weight: float = setting(1.0, _non_negative_float)
    r1_every: int = setting(4, _positive_int)
    categorical_codes: int = setting(10, _at_least(2))
    continuous_codes: int = setting(2, _at_least(0))
    info_weight: float = setting(0.5, _non_negative_float)
    continuous_info_weight: float = setting(0.1, _non_negative_float)
    categorical_jitter: bool = setting(True, _boolean)
    labelled_per_class: int = setting(10, _positive_int)
    label_seed: int = setting(0, _at_least(0))
    reconstruction_weight: float = setting(10.0, _non_negative_float)
    code_reconstruction_weight: float = setting(0.0, _non_negative_float)
    cycle_trains: str = setting("both", _choice(CYCLE_TRAINS))
    unary_scores: bool = setting(False, _boolean)
    augment: str = setting("none", _choice(AUGMENTATIONS))
    lr_schedule: str = setting("auto", _choice(LR_SCHEDULES))
    precision: str = setting("auto", _choice(PRECISIONS))
    distribute: str = setting("auto", _choice(DISTRIBUTIONS))
    replicas: int = setting(0, _at_least(0))
    batch_norm: str = setting("synchronized", _choice(BATCH_NORMS))
    sample_every: int = setting(300, _positive_int)
    checkpoint_every: int = setting(200, _positive_int)
    grid_size: int = setting(8, _positive_int)
    average_decay: float = setting(0.999, _fraction)
    average_horizon: float = setting(0.1, _positive_fraction)
    track_every: int = setting(300, _at_least(0))
    track_samples: int = setting(5000, _at_least(100))
    export_weights: str = setting("best", _choice(EXPORT_WEIGHTS))
    fresh: bool = setting(False, _boolean)  # start over, whatever checkpoint there is

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# What `auto` may stand for in the train section: the family's or the loss's value, which
# `pipeline.families.resolve` puts in its place. (precision and distribute are the machine's to
# answer: `choose_placement` and `distribution.choose`, when the run starts.)
RESOLVED_BY_FAMILY_AND_LOSS = (
    "epochs",
    "batch_size",
    "model",
    "critic_steps",
    "learning_rate",
    "discriminator_learning_rate",
    "beta1",
    "beta2",
    "optimizer",
    "critic_norm",
    "lr_schedule",
)


@dataclass(frozen=True)
class TrainSettings:
    """The train section as a run uses it: `pipeline.families.resolve` makes it from a
    `TrainConfig`, each `auto` replaced by its family's or loss's value, once; the trainer,
    the loop and the benchmarks take nothing else. Made any other way, an `auto` left in a
    field of `RESOLVED_BY_FAMILY_AND_LOSS` is refused."""

    seed: int
    epochs: int
    batch_size: int
    noise_dim: int
    model: str
    loss: str
    critic_steps: int
    learning_rate: float
    discriminator_learning_rate: float
    beta1: float | None  # None: the optimizer is not Adam
    beta2: float | None
    optimizer: str
    critic_norm: str
    label_smoothing: float
    r1_weight: float
    r1_every: int
    categorical_codes: int
    continuous_codes: int
    info_weight: float
    continuous_info_weight: float
    categorical_jitter: bool
    labelled_per_class: int
    label_seed: int
    reconstruction_weight: float
    code_reconstruction_weight: float
    cycle_trains: str
    unary_scores: bool
    augment: str
    lr_schedule: str
    precision: str
    distribute: str
    replicas: int
    batch_norm: str
    sample_every: int
    checkpoint_every: int
    grid_size: int
    average_decay: float
    average_horizon: float
    track_every: int
    track_samples: int
    export_weights: str
    fresh: bool

    def __post_init__(self):
        for key in RESOLVED_BY_FAMILY_AND_LOSS:
            if getattr(self, key) == "auto":
                raise TypeError(f"train.{key} is still auto: resolve the section first")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ExportConfig:
    """The `export` section: ONNX opset and the parity check against TensorFlow."""

    opset: int = setting(17, _between(17, TF2ONNX_MAX_OPSET))
    check_samples: int = setting(256, _positive_int)
    tolerance: float = setting(1e-4, _positive_float)
    int8_calibration_samples: int = setting(1024, _positive_int)
    int8_tolerance: float = setting(0.05, _positive_float)


@dataclass(frozen=True)
class BenchmarkConfig:
    """The `benchmark` section: which batch sizes, and how long to measure each."""

    batch_sizes: tuple[int, ...] = setting((1, 16, 64, 256, 1024), _positive_ints)
    windows: int = setting(5, _positive_int)
    window_seconds: float = setting(0.25, _positive_float)
    latency_calls: int = setting(200, _positive_int)
    matmul_size: int = setting(2048, _positive_int)
    targets: tuple[tuple[str, float], ...] = setting(SAMPLING_TARGETS, _targets(SAMPLING_TARGETS))


@dataclass(frozen=True)
class TrainBenchmarkConfig:
    """The `train_benchmark` section: how long to time each training step."""

    windows: int = setting(5, _positive_int)
    steps: int = setting(4, _positive_int)
    targets: tuple[tuple[str, float], ...] = setting(TRAINING_TARGETS, _targets(TRAINING_TARGETS))


@dataclass(frozen=True)
class ClassifierConfig:
    """The `classifier` section: the MNIST CNN the evaluate stage measures with."""

    seed: int = setting(0, _at_least(0))
    epochs: int = setting(5, _positive_int)
    batch_size: int = setting(128, _positive_int)
    learning_rate: float = setting(1e-3, _positive_float)
    validation_size: int = setting(5000, _positive_int)


@dataclass(frozen=True)
class EvaluateConfig:
    """The `evaluate` section: how many samples, with which seed, and the k of precision/recall."""

    seed: int = setting(0, _at_least(0))
    samples: int = setting(10000, _at_least(100))
    splits: int = setting(10, _positive_int)
    neighbours: int = setting(3, _positive_int)
    grid_size: int = setting(10, _positive_int)


# params.yaml's sections that a stage reads, by name.
SECTIONS = {
    "train": TrainConfig,
    "export": ExportConfig,
    "benchmark": BenchmarkConfig,
    "train_benchmark": TrainBenchmarkConfig,
    "classifier": ClassifierConfig,
    "evaluate": EvaluateConfig,
}


class _DuplicateKey(Exception):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML in which a key written twice in one mapping is an error: a person reads the
    first, YAML would keep the last."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    lines: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor`: merged keys may be written over, as YAML means them
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in lines:
            raise _DuplicateKey(f"{shown(key)} is written twice (lines {lines[key]} and {line})")
        lines[key] = line
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_params(path: Path) -> dict[str, Any]:
    """The whole file as a mapping (safe YAML only)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from error
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
            f"{error.start})"
        ) from error
    try:
        loader = _UniqueKeyLoader(text)  # a SafeLoader: plain values, no objects built
        try:
            params = loader.get_single_data()
        finally:
            loader.dispose()
    except _DuplicateKey as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from error
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    return params


def load_train_config(path: Path) -> TrainConfig:
    """The validated `train` section of `path`; a missing key takes its default."""
    return load_section(path, "train")


def load_export_config(path: Path) -> ExportConfig:
    return load_section(path, "export")


def load_benchmark_config(path: Path) -> BenchmarkConfig:
    return load_section(path, "benchmark")


def load_train_benchmark_config(path: Path) -> TrainBenchmarkConfig:
    return load_section(path, "train_benchmark")


def load_classifier_config(path: Path) -> ClassifierConfig:
    return load_section(path, "classifier")


def load_evaluate_config(path: Path) -> EvaluateConfig:
    return load_section(path, "evaluate")


def load_section(path: Path, name: str):
    """The validated `name` section of `path`."""
    return section_from(read_params(path).get(name, {}), name, path)


def section_from(section: Any, name: str, source: object):
    """`section` (a mapping, as params.yaml spells the `name` section) as its dataclass, each
    value passed through its check; errors name `source`."""
    section_type = SECTIONS[name]
    checked = checks(section_type)
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: {name}: expected a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - set(checked), key=str)
    if unknown:
        raise ConfigError(
            f"{source}: {name}.{unknown[0]}: unknown key (known: {', '.join(checked)})"
        )
    values = {}
    for key, value in section.items():
        try:
            values[key] = checked[key](f"{name}.{key}", value)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None
    return section_type(**values)
