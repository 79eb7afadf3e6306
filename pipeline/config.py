"""`params.yaml`, read in one place and validated with messages that name the bad key."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

LOSS_NAMES = ("gan", "lsgan")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


@dataclass(frozen=True)
class TrainConfig:
    """The `train` section. Defaults follow the classic CS231n DCGAN (see the design notes)."""

    seed: int = 0
    epochs: int = 3
    batch_size: int = 128
    noise_dim: int = 96
    loss: str = "gan"
    learning_rate: float = 1e-3
    beta1: float = 0.5
    precision: str = "auto"
    sample_every: int = 100
    checkpoint_every: int = 200
    grid_size: int = 8

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
    return value


def _non_negative_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key}: expected an integer >= 0, got {value!r}")
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


def _choice(choices: tuple[str, ...]):
    def check(key: str, value: Any) -> str:
        if value not in choices:
            raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    return check


TRAIN_CHECKS = {
    "seed": _non_negative_int,
    "epochs": _positive_int,
    "batch_size": _positive_int,
    "noise_dim": _positive_int,
    "loss": _choice(LOSS_NAMES),
    "learning_rate": _positive_float,
    "beta1": _fraction,
    "precision": _choice(PRECISIONS),
    "sample_every": _positive_int,
    "checkpoint_every": _positive_int,
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
    section = read_params(path).get("train", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: train: expected a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - set(TRAIN_CHECKS), key=str)
    if unknown:
        raise ConfigError(
            f"{path}: train.{unknown[0]}: unknown key (known: {', '.join(TRAIN_CHECKS)})"
        )
    values = {}
    for key, value in section.items():
        try:
            values[key] = TRAIN_CHECKS[key](f"train.{key}", value)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None
    return TrainConfig(**values)
