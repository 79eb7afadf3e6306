"""The GAN families by the name `train.model` gives them, and the resolution of the train
section: every `auto` replaced, once, by the value that applies to the run's family and loss.

A new family is a module beside this one (a `Family` subclass, `pipeline.families.base`), its
tests, and one entry in `FAMILIES`.
"""

from __future__ import annotations

import dataclasses
import math

from pipeline.config import TrainConfig, TrainSettings
from pipeline.errors import ConfigError
from pipeline.families.base import Family
from pipeline.families.bigan import BiGAN
from pipeline.families.conditional import Conditional
from pipeline.families.infogan import InfoGAN
from pipeline.families.semi_supervised import SemiSupervised
from pipeline.families.unconditional import Unconditional
from pipeline.gan.losses import OBJECTIVES
from pipeline.runtime.contract import MAX_NOISE_DIM

FAMILIES: dict[str, type[Family]] = {
    family.name: family for family in (Unconditional, Conditional, InfoGAN, SemiSupervised, BiGAN)
}
DEFAULT_FAMILY = Unconditional.name  # `train.model: auto`: the seed DCGAN
ADAM_BETA2 = 0.999  # Adam's usual, unless the loss prescribes another
DISTRIBUTED = ("mirrored", "multi-worker")


def family_of(config: TrainSettings) -> Family:
    """The family of a resolved train section, bound to it."""
    return FAMILIES[resolved(config).model](config)


def resolved(config: TrainSettings) -> TrainSettings:
    """`config`, checked to be a resolved section: what takes one must not take the section as
    params.yaml says it, whose `auto`s it would read as values."""
    if not isinstance(config, TrainSettings):
        raise TypeError(
            f"expected the resolved train section (pipeline.families.resolve), got "
            f"{type(config).__name__}"
        )
    return config


def distributes(config: TrainSettings) -> bool:
    """Whether the run's family and loss train under a tf.distribute strategy (`auto` picks
    one device when they do not)."""
    return FAMILIES[config.model].distributes and OBJECTIVES[config.loss].distributes


def auto_values(config: TrainConfig) -> dict[str, object]:
    """What `auto` means for each auto-able key of a run with `config`'s family and loss: the
    family's defaults, overridden by what the loss prescribes; the epochs, the family's
    generator updates at the loss's critic steps and `updates_scale`."""
    family = FAMILIES[config.model]
    objective = OBJECTIVES[config.loss]
    critic_steps = objective.critic_steps if config.critic_steps == "auto" else config.critic_steps
    scale = critic_steps * objective.updates_scale
    values = {
        **dataclasses.asdict(family.defaults),
        "critic_steps": objective.critic_steps,
        "epochs": math.ceil(family.defaults.epochs * scale),
        "beta2": ADAM_BETA2,
        "optimizer": objective.optimizer,
        "critic_norm": objective.critic_norm if family.takes_critic_norm else "none",
        **objective.prescribed,
    }
    if chosen_optimizer(config) != "adam":
        values |= {"beta1": None, "beta2": None}  # no number claims Adam was used
    return values


def chosen_optimizer(config: TrainConfig) -> str:
    """train.optimizer, or the loss's where it is `auto`."""
    return OBJECTIVES[config.loss].optimizer if config.optimizer == "auto" else config.optimizer


def resolve(config: TrainConfig, source: object = "params.yaml") -> TrainSettings:
    """The section a run uses: `config` with every `auto` replaced by the family's or the
    loss's value; a key that does not apply to the family or the loss, but is set, raises
    `ConfigError` naming it and `source`. Once per run: a resolved section is refused."""
    if isinstance(config, TrainSettings):
        raise TypeError("the train section is resolved already: pass it on as it is")
    if config.model == "auto":
        config = dataclasses.replace(config, model=DEFAULT_FAMILY)
    for key, known in (("model", FAMILIES), ("loss", OBJECTIVES)):
        if getattr(config, key) not in known:
            raise ConfigError(
                f"{source}: train.{key}: expected one of {', '.join(known)}, "
                f"got {getattr(config, key)!r}"
            )
    check_applies(config, source)
    auto = auto_values(config)
    values = config.as_dict()
    return TrainSettings(
        **values | {key: value for key, value in auto.items() if values[key] == "auto"}
    )


def check_applies(config: TrainConfig, source: object) -> None:
    family = FAMILIES[config.model]
    objective = OBJECTIVES[config.loss]
    if config.noise_dim > MAX_NOISE_DIM:  # a model no sampler would open, after the training
        raise ConfigError(
            f"{source}: train.noise_dim: at most {MAX_NOISE_DIM} (what the samplers open), "
            f"got {config.noise_dim}"
        )
    if config.loss not in family.losses:
        raise ConfigError(
            f"{source}: train.loss: the {family.name} model trains with "
            f"{' or '.join(family.losses)}, not {config.loss}"
        )
    if config.distribute in DISTRIBUTED and not family.distributes:
        raise ConfigError(
            f"{source}: train.distribute: the {family.name} model trains on one device; set "
            "it to auto or off"
        )
    if config.distribute in DISTRIBUTED and not objective.distributes:
        raise ConfigError(
            f"{source}: train.distribute: {config.loss} trains on one device; set it to auto or off"
        )
    unused = {
        key: f"applies to the {other.name} model only"
        for other in FAMILIES.values()
        if other is not family
        for key in other.own_settings
        if key not in family.own_settings
    }
    if not (family.takes_r1 and objective.takes_r1) and config.r1_weight:  # 0: off, as it is
        why = f"the R1 penalty does not apply to {family.name} with {config.loss}"
        unused |= dict.fromkeys(("r1_weight", "r1_every"), why)
    if not objective.smooths:
        unused["label_smoothing"] = f"{config.loss} has no label to smooth"
    optimizer = chosen_optimizer(config)
    if optimizer != "adam":
        why = f"Adam's; this run trains with {optimizer}"
        unused |= dict.fromkeys(("beta1", "beta2"), why)
    if not family.takes_critic_norm:
        unused["critic_norm"] = f"the {family.name} model's discriminator is its own"
    elif config.critic_norm == "batch" and config.distribute in DISTRIBUTED:
        raise ConfigError(
            f"{source}: train.critic_norm: batch norm in the critic trains on one device; set "
            "train.distribute to auto or off"
        )
    defaults, auto = TrainConfig(), auto_values(config)
    for key, why in unused.items():  # the default, or what `auto` resolved to, is not a choice
        if getattr(config, key) not in (getattr(defaults, key), auto.get(key, "auto")):
            raise ConfigError(
                f"{source}: train.{key}: {why}; leave it at {getattr(defaults, key)!r}"
            )
