"""The conditional GAN: both networks take the digit, so a caller chooses it.

The generator adds a learned label embedding to its noise; the discriminator is a projection
discriminator (Miyato & Koyama 2018, `pipeline.gan.networks`). In the discriminator step the
fakes take the real batch's labels, so each class is seen as often real as fake (and the
gradient penalty interpolates images of one label); the generator step draws its labels
uniformly.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.errors import TrainingError
from pipeline.evaluation import generated_training
from pipeline.evaluation.conditioning import conditioning
from pipeline.evaluation.family_measures import Evaluation
from pipeline.families.base import Defaults, Family, OwnMeasure
from pipeline.gan import networks
from pipeline.runtime.contract import CLASSES, GeneratorContract

log = logging.getLogger(__name__)


class Conditional(Family):
    name = "conditional"
    summary = "The digit is an input of both networks: `dcgan sample --label 7` draws sevens."
    # It collapses at the unconditional rates and needs the reverse ratio (docs/DECISIONS.md).
    defaults = Defaults(learning_rate=1e-3, discriminator_learning_rate=2e-3, beta1=0.5)
    ledger_fields = ("label_accuracy", "classification_accuracy_score")

    @property
    def label_values(self) -> int:
        return CLASSES

    def contract(self, code_meanings: str = "") -> GeneratorContract:
        return GeneratorContract(self.config.noise_dim, classes=tuple(range(CLASSES)))

    def describe(self) -> str:
        return "Conditional: each image's digit is an input (`label`)."

    def build_discriminator(self, *, synchronized: bool = False):
        return networks.build_discriminator(CLASSES, batch_norm=self.config.critic_norm == "batch")

    def prepare(self, images, labels) -> None:
        if labels.max(initial=0) >= CLASSES:
            raise TrainingError(
                f"label {labels.max()} in the training labels; the conditional model knows "
                f"{CLASSES} classes (0-{CLASSES - 1})"
            )

    def judge(self, discriminator, images, labels, training: bool):
        return discriminator([images, labels], training=training), None

    @classmethod
    def measure(cls, evaluation: Evaluation) -> dict[str, Any]:
        """`conditioning`: how well the generated digits obey their labels (the classes in
        turn, as the stage drew them); with a classifier section, the Classification Accuracy
        Score (`pipeline.evaluation.generated_training`)."""
        requested = evaluation.sampler.labels(evaluation.config.samples)
        generated, reference, test = evaluation.generated, evaluation.reference, evaluation.test
        measured = {
            "conditioning": conditioning(
                requested,
                generated.logits,
                generated.features,
                (reference.labels, reference.logits, reference.features),
                (test.labels, test.features),
                evaluation.sampler.classes,
            )
        }
        log.info(
            "conditioning: label accuracy %.4f (real %.4f), mean per-class Frechet distance "
            "%.3f (real %.3f)",
            measured["conditioning"]["label_accuracy"],
            measured["conditioning"]["real_reference_label_accuracy"],
            measured["conditioning"]["mean_class_frechet_distance"],
            measured["conditioning"]["real_reference_mean_class_frechet_distance"],
        )
        if evaluation.classifier_config is None:
            return measured
        score = generated_training.classification_accuracy_score(
            (generated.images, requested),
            (reference.images, reference.labels),
            (test.images, test.labels),
            evaluation.classifier_config,
        )
        log.info(
            "classification accuracy score: %.4f trained on generated digits, %.4f on as many "
            "real ones",
            score["trained_on_generated"],
            score["trained_on_real"],
        )
        return measured | {"classification_accuracy_score": score}

    @classmethod
    def ledger_values(cls, evaluated: dict[str, Any]) -> dict[str, Any]:
        values = {}
        if "conditioning" in evaluated:
            values["label_accuracy"] = evaluated["conditioning"]["label_accuracy"]
        score = evaluated.get("classification_accuracy_score")
        if score is not None:
            values["classification_accuracy_score"] = (
                score["trained_on_generated"],
                score["trained_on_real"],
            )
        return values

    @classmethod
    def own_measure(cls, row: dict[str, Any]) -> OwnMeasure | None:
        """The label accuracy, followed by the Classification Accuracy Score where the run
        was measured for it."""
        if row.get("label_accuracy") is None:
            return None
        score = row.get("classification_accuracy_score")
        note = f", CAS {score[0]:.2%} (real digits {score[1]:.2%})" if score else ""
        return OwnMeasure("label accuracy", row["label_accuracy"], note=note)
