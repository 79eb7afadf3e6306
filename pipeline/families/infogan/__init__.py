"""InfoGAN (Chen et al. 2016): codes the generator must make readable from its images, found
without labels.

The generator is the conditional one: its categorical code is the label input (a learned
embedding into the first dense layer computes the same family of functions as the paper's
one-hot concatenation) and its continuous codes are the last columns of the noise, uniform in
[-1, 1] like the rest; only the export names them apart (`pipeline.runtime.contract`). The
discriminator is the paper's, with the auxiliary head Q (`pipeline.gan.networks`). Both steps
add the information term: Q must read the codes back from the fakes. After training the codes
are measured (`pipeline.evaluation.codes`): which digit each category draws, what each
continuous code changes; the contract carries the meanings.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline.evaluation import codes
from pipeline.evaluation.family_measures import Evaluation
from pipeline.families.base import Defaults, Fakes, Family, OwnMeasure, Reals
from pipeline.families.infogan import losses, networks
from pipeline.gan import augment
from pipeline.runtime.contract import GeneratorContract
from pipeline.storage.images import to_uint8

log = logging.getLogger(__name__)


class InfoGAN(Family):
    name = "infogan"
    summary = "Unsupervised codes: a category that comes to pick the digit, sliders for style."
    # Chen et al.'s rates for the discriminator (2e-4) and the generator (1e-3).
    defaults = Defaults(learning_rate=1e-3, discriminator_learning_rate=2e-4, beta1=0.5)
    losses = ("gan", "lsgan")  # its batch norm rules out the gradient penalty of wgan-gp
    takes_critic_norm = False  # its discriminator is its own
    own_settings = (
        "categorical_codes",
        "continuous_codes",
        "info_weight",
        "continuous_info_weight",
        "categorical_jitter",
    )

    @property
    def label_values(self) -> int:
        return self.config.categorical_codes

    @property
    def continuous(self) -> int:
        return self.config.continuous_codes

    @property
    def latent_dim(self) -> int:
        return self.config.noise_dim + self.continuous

    def contract(self, code_meanings: str = "") -> GeneratorContract:
        return GeneratorContract(
            self.config.noise_dim,
            categorical_codes=self.label_values,
            continuous_codes=self.continuous,
            code_meanings=code_meanings,
        )

    def describe(self) -> str:
        return (
            "InfoGAN: a categorical code (`category`) and continuous codes are inputs; what "
            "each controls was measured after training and is in the model's metadata."
        )

    def build_discriminator(self, *, synchronized: bool = False):
        return networks.build_infogan_discriminator(
            self.label_values, self.continuous, synchronized=synchronized
        )

    def judge(self, discriminator, images, labels, training: bool):
        outputs = discriminator(images, training=training)
        return outputs[0], outputs[1:]

    def discriminator_fake_labels(self, run, labels, count):
        """The fakes' own codes, not the real images' labels."""
        return run.sample_labels(count)

    def discriminator_loss(self, run, loss, fakes: Fakes, count):
        return loss + tf.cast(self.information(run, fakes), loss.dtype)

    def generator_loss(self, run, fake_logits, fakes: Fakes, real: Reals):
        loss = run.objective.generator(fake_logits, real.logits)
        return loss + tf.cast(self.information(run, fakes), loss.dtype)

    def information(self, run, fakes: Fakes) -> tf.Tensor:
        """The weighted information term of `fakes`, drawn with their codes (the labels and
        the noise's last columns), of which Q predicted the codes. With
        `categorical_jitter`, Q reads the categorical code again from the fakes jittered
        (`pipeline.gan.augment.jitter`): the code must then survive a change of slant, size
        and place, which leaves the digit's shape to carry it."""
        config = self.config
        categorical = fakes.judged[0]
        if config.categorical_jitter:
            jittered = augment.jitter(fakes.images, run.noise)
            categorical = run.judge(jittered, fakes.labels)[1][0]
        continuous = fakes.noise[:, config.noise_dim :] if self.continuous else None
        mean = fakes.judged[1] if self.continuous else None
        term = losses.information_loss(
            categorical, fakes.labels, mean, continuous, config.continuous_info_weight
        )
        return config.info_weight * term

    def after_training(self, run, tracker, metrics) -> str:
        """What the codes control, measured on the saved generator with the tracker's
        classifier naming the digits."""
        if tracker is None:
            return ""
        measured = codes.measure_codes(
            run.draw_saved,
            tracker.classify,
            noise_dim=self.config.noise_dim,
            categorical=self.label_values,
            continuous=self.continuous,
            seed=self.config.seed,
        )
        metrics["codes"] = measured
        meanings = codes.meanings(measured)
        log.info("InfoGAN codes: %s", meanings)
        return meanings

    @classmethod
    def measure(cls, evaluation: Evaluation) -> dict[str, Any]:
        """`codes`: what the exported model's codes control, as after training, with the
        evaluation classifier naming the digits."""
        sampler = evaluation.sampler

        def draw(latent: np.ndarray, categorical: np.ndarray) -> np.ndarray:
            parts = [
                to_uint8(sampler.generate(latent[i : i + 1000], categorical[i : i + 1000]))
                for i in range(0, len(latent), 1000)
            ]
            return np.concatenate(parts)[..., 0]

        measured = codes.measure_codes(
            draw,
            evaluation.digits,
            noise_dim=sampler.contract.noise_dim,
            categorical=sampler.contract.categorical_codes,
            continuous=sampler.contract.continuous_codes,
            seed=evaluation.config.seed,
        )
        log.info("InfoGAN codes: %s", codes.meanings(measured))
        return super().measure(evaluation) | {"codes": measured}

    @classmethod
    def ledger_values(cls, evaluated: dict[str, Any]) -> dict[str, Any]:
        """Its label accuracy is its categorical code's, matched to digits."""
        if "codes" not in evaluated:
            return {}
        return {"label_accuracy": evaluated["codes"]["categorical"]["accuracy"]}

    @classmethod
    def own_measure(cls, row: dict[str, Any]) -> OwnMeasure | None:
        if row.get("label_accuracy") is None:
            return None
        return OwnMeasure("code accuracy", row["label_accuracy"])
