"""`params.yaml`, read in one place and validated with messages that name the bad key."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

LOSS_NAMES = ("gan", "lsgan", "wgan-gp")
MODEL_NAMES = ("unconditional", "conditional")
EXPORT_WEIGHTS = ("best", "last")
LR_SCHEDULES = ("constant", "anneal")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


@dataclass(frozen=True)
class TrainConfig:
    """The `train` section. Defaults follow the classic CS231n DCGAN (see the design notes)."""

    seed: int = 0
    epochs: int = 3
    batch_size: int = 128
    noise_dim: int = 96
    model: str = "unconditional"
    loss: str = "gan"
    learning_rate: float = 2e-3
    discriminator_learning_rate: float = 1e-3
    beta1: float = 0.5
    label_smoothing: float = 0.0
    lr_schedule: str = "constant"
    precision: str = "auto"
    sample_every: int = 300
    checkpoint_every: int = 200
    grid_size: int = 8
    average_decay: float = 0.999
    average_horizon: float = 0.1
    track_every: int = 300
    track_samples: int = 5000
    export_weights: str = "best"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
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
        raise ConfigError(f"{key}: expected a positive number, got {value!r}")
    return number


def _fraction(key: str, value: Any) -> float:
    number = _number(value)
    if number is None or not 0 <= number < 1:
        raise ConfigError(f"{key}: expected a number in [0, 1), got {value!r}")
    return number


def _positive_fraction(key: str, value: Any) -> float:
    number = _number(value)
    if number is None or not 0 < number <= 1:
        raise ConfigError(f"{key}: expected a number in (0, 1], got {value!r}")
    return number


def _choice(choices: tuple[str, ...]):
    def check(key: str, value: Any) -> str:
        if value not in choices:
            raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _at_least(minimum: int):
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{key}: expected an integer >= {minimum}, got {value!r}")
        return value

    return check


def _positive_ints(key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key}: expected a non-empty list of positive integers, got {value!r}")
    return tuple(_positive_int(key, item) for item in value)


TRAIN_CHECKS = {
    "seed": _at_least(0),
    "epochs": _positive_int,
    "batch_size": _positive_int,
    "noise_dim": _positive_int,
    "model": _choice(MODEL_NAMES),
    "loss": _choice(LOSS_NAMES),
    "learning_rate": _positive_float,
    "discriminator_learning_rate": _positive_float,
    "beta1": _fraction,
    "label_smoothing": _fraction,
    "lr_schedule": _choice(LR_SCHEDULES),
    "precision": _choice(PRECISIONS),
    "sample_every": _positive_int,
    "checkpoint_every": _positive_int,
    "grid_size": _positive_int,
    "average_decay": _fraction,
    "average_horizon": _positive_fraction,
    "track_every": _at_least(0),
    "track_samples": _at_least(100),
    "export_weights": _choice(EXPORT_WEIGHTS),
}


@dataclass(frozen=True)
class ExportConfig:
    """The `export` section: ONNX opset and the parity check against TensorFlow."""

    opset: int = 17
    check_samples: int = 256
    tolerance: float = 1e-4
    int8_calibration_samples: int = 1024
    int8_tolerance: float = 0.05


EXPORT_CHECKS = {
    "opset": _at_least(17),
    "check_samples": _positive_int,
    "tolerance": _positive_float,
    "int8_calibration_samples": _positive_int,
    "int8_tolerance": _positive_float,
}


@dataclass(frozen=True)
class BenchmarkConfig:
    """The `benchmark` section: which batch sizes, and how long to measure each."""

    batch_sizes: tuple[int, ...] = (1, 16, 64, 256, 1024)
    windows: int = 5
    window_seconds: float = 0.25
    latency_calls: int = 200
    matmul_size: int = 2048

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


BENCHMARK_CHECKS = {
    "batch_sizes": _positive_ints,
    "windows": _positive_int,
    "window_seconds": _positive_float,
    "latency_calls": _positive_int,
    "matmul_size": _positive_int,
}


@dataclass(frozen=True)
class TrainBenchmarkConfig:
    """The `train_benchmark` section: how long to time each training step."""

    windows: int = 5
    steps: int = 4

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


TRAIN_BENCHMARK_CHECKS = {"windows": _positive_int, "steps": _positive_int}


@dataclass(frozen=True)
class ClassifierConfig:
    """The `classifier` section: the MNIST CNN the evaluate stage measures with."""

    seed: int = 0
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 1e-3
    validation_size: int = 5000


CLASSIFIER_CHECKS = {
    "seed": _at_least(0),
    "epochs": _positive_int,
    "batch_size": _positive_int,
    "learning_rate": _positive_float,
    "validation_size": _positive_int,
}


@dataclass(frozen=True)
class EvaluateConfig:
    """The `evaluate` section: how many samples, with which seed, and the k of precision/recall."""

    seed: int = 0
    samples: int = 10000
    splits: int = 10
    neighbours: int = 3
    grid_size: int = 10


EVALUATE_CHECKS = {
    "seed": _at_least(0),
    "samples": _at_least(100),
    "splits": _positive_int,
    "neighbours": _positive_int,
    "grid_size": _positive_int,
}


def read_params(path: Path) -> dict[str, Any]:
    """The whole file as a mapping (safe YAML only)."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from error
    try:
        params = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from error
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    return params


def load_train_config(path: Path) -> TrainConfig:
    """The validated `train` section of `path`; a missing key takes its default."""
    config = TrainConfig(**_load_section(path, "train", TRAIN_CHECKS))
    if config.label_smoothing and config.loss == "wgan-gp":
        raise ConfigError(
            f"{path}: train.label_smoothing: wgan-gp's critic scores have no label to smooth "
            "(use 0, or the gan or lsgan loss)"
        )
    return config


def load_export_config(path: Path) -> ExportConfig:
    return ExportConfig(**_load_section(path, "export", EXPORT_CHECKS))


def load_benchmark_config(path: Path) -> BenchmarkConfig:
    return BenchmarkConfig(**_load_section(path, "benchmark", BENCHMARK_CHECKS))


def load_train_benchmark_config(path: Path) -> TrainBenchmarkConfig:
    return TrainBenchmarkConfig(**_load_section(path, "train_benchmark", TRAIN_BENCHMARK_CHECKS))


def load_classifier_config(path: Path) -> ClassifierConfig:
    return ClassifierConfig(**_load_section(path, "classifier", CLASSIFIER_CHECKS))


def load_evaluate_config(path: Path) -> EvaluateConfig:
    return EvaluateConfig(**_load_section(path, "evaluate", EVALUATE_CHECKS))


def _load_section(path: Path, name: str, checks: dict[str, Any]) -> dict[str, Any]:
    section = read_params(path).get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: {name}: expected a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - set(checks), key=str)
    if unknown:
        raise ConfigError(f"{path}: {name}.{unknown[0]}: unknown key (known: {', '.join(checks)})")
    values = {}
    for key, value in section.items():
        try:
            values[key] = checks[key](f"{name}.{key}", value)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None
    return values
