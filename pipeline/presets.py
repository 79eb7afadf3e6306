"""Presets: named variants as files, `presets/NAME.yaml`, each a part of params.yaml's sections
that `dcgan exp NAME` (`make exp PRESET=NAME`) runs as one DVC experiment. DVC's own `-S` flags
are what it passes, so `dvc exp show` lists a preset's run like any other; DVC's Hydra
composition would make params.yaml a generated file, which this project's stages and docs read.

A file's leading comment says what the preset is for; its optional `runs` key names ledger
experiments that trained its settings under other names (the report also finds every run whose
settings are the preset's), and its optional `targets` what each of its runs should reach (the
report says which runs do)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import SECTIONS, read_params, section_from
from pipeline.errors import ConfigError
from pipeline.families import resolve

PRESETS_DIR = "presets"
RUNS_KEY = "runs"
TARGETS_KEY = "targets"
# What a run of a preset may be held to: the test Frechet distance and the training minutes at
# most, the family's own measure (docs/FAMILIES.md) at least.
TARGETS = ("frechet_distance", "train_minutes", "family_measure")


@dataclass(frozen=True)
class Preset:
    name: str
    about: str
    params: dict[str, dict[str, Any]]  # section -> key -> value, as params.yaml spells them
    runs: tuple[str, ...]
    targets: dict[str, float] = field(default_factory=dict)

    @property
    def train(self) -> dict[str, Any]:
        return self.params.get("train", {})

    def overrides(self) -> list[str]:
        """The preset as `dvc exp run -S` values."""
        return [
            f"{section}.{key}={_yaml_scalar(value)}"
            for section, values in self.params.items()
            for key, value in values.items()
        ]

    def experiment(self, seed: int) -> str:
        """The name its run with training seed `seed` takes."""
        return f"{self.name}-seed-{seed}"


def preset_names(root: Path) -> list[str]:
    return sorted(path.stem for path in (root / PRESETS_DIR).glob("*.yaml"))


def read_preset(root: Path, name: str, params_path: Path | None = None) -> Preset:
    """The preset `name` of `root/presets`, checked as params.yaml's own values are, and as a
    whole train section over `params_path`'s (a key its family does not read is refused)."""
    path = root / PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(preset_names(root)) or "none"
        raise ConfigError(f"no preset {name!r} in {root / PRESETS_DIR} (there are: {known})")
    content = read_params(path)
    runs = content.pop(RUNS_KEY, [])
    if not isinstance(runs, list) or not all(isinstance(run, str) for run in runs):
        raise ConfigError(f"{path}: {RUNS_KEY}: expected a list of experiment names")
    targets = content.pop(TARGETS_KEY, {})
    if not isinstance(targets, dict) or not all(
        key in TARGETS and isinstance(value, (int, float)) and not isinstance(value, bool)
        for key, value in targets.items()
    ):
        raise ConfigError(
            f"{path}: {TARGETS_KEY}: expected numbers for some of {', '.join(TARGETS)}"
        )
    unknown = sorted(set(content) - set(SECTIONS), key=str)
    if unknown:
        raise ConfigError(
            f"{path}: {unknown[0]}: not a section of params.yaml "
            f"(known: {', '.join([*SECTIONS, RUNS_KEY, TARGETS_KEY])})"
        )
    for section, values in content.items():
        section_from(values, section, path)
    base = read_params(params_path or root / "params.yaml").get("train", {})
    resolve(section_from({**base, **content.get("train", {})}, "train", path), path)
    return Preset(name, _leading_comment(path), content, tuple(runs), targets)


def check_overrides(params_path: Path, preset: Preset, values: list[str]) -> None:
    """Everything `dcgan exp` will hand DVC, checked before DVC touches the workspace: the
    preset, then each `-S section.key=value` (read as YAML, as DVC reads it), applied over
    params.yaml as DVC applies them; every section as its stage would read it, and the train
    section resolved. A bad value is one line naming the flag."""
    params = read_params(params_path)
    for section, overrides in preset.params.items():
        params.setdefault(section, {}).update(overrides)
    for value in values:
        flag = _flag(value)
        path, equals, text = value.partition("=")
        keys = path.split(".")
        if not equals or len(keys) < 2 or not all(keys):
            raise ConfigError(f"{flag}: expected section.key=value")
        if keys[0] not in SECTIONS:
            raise ConfigError(
                f"{flag}: {keys[0]}: not a section of params.yaml (known: {', '.join(SECTIONS)})"
            )
        try:
            parsed = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            raise ConfigError(f"{flag}: the value is not valid YAML") from None
        target = params.setdefault(keys[0], {})
        for key in keys[1:-1]:
            if not isinstance(target.get(key, {}), dict):
                raise ConfigError(f"{flag}: {key} is not a mapping")
            target = target.setdefault(key, {})
        target[keys[-1]] = parsed
    source = f"{params_path} with the -S values" if values else params_path
    for section in SECTIONS:
        checked = section_from(params.get(section, {}), section, source)
        if section == "train":
            resolve(checked, source)


def _flag(value: str) -> str:
    """`-S value` as a message shows it: on one line (control characters escaped) and short."""
    shown = value if value.isprintable() else repr(value)[1:-1]
    return f"-S {shown[:60]}{'...' if len(shown) > 60 else ''}"


def _leading_comment(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
