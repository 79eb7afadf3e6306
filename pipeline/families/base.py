"""What a GAN family is: one class that says everything that differs between families.

A family builds its two networks, says what its discriminator and generator steps minimise
beyond the chosen loss, what its generator takes (the contract apps rely on), its `auto`
settings, which train keys and losses apply to it, what its run writes besides the generator
and what its evaluation adds. The trainer, the checkpoints, the export, the evaluate stage,
the report and the model card ask the family; none of them compares a family's name.

The step hooks receive the running `Trainer` (`run`): its noise source (`run.noise`), its
discriminator as the family reads it (`run.judge`) and what the discriminator sees of an
image (`run.seen`), so a family's step reads on one screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import tensorflow as tf

from pipeline.evaluation.conditioning import measure_labels
from pipeline.evaluation.family_measures import Evaluation
from pipeline.gan import networks
from pipeline.runtime.contract import GeneratorContract
from pipeline.runtime.family_models import FamilyModel, write_listing
from pipeline.storage.files import write_json_atomically
from pipeline.storage.keras_files import save_keras


@dataclass(frozen=True)
class Defaults:
    """A family's `auto` values, each chosen by the experiment `docs/DECISIONS.md` names."""

    learning_rate: float  # the generator's Adam
    discriminator_learning_rate: float
    beta1: float
    epochs: int = 3
    lr_schedule: str = "constant"
    batch_size: int = 128  # images per discriminator step, the seed's


@dataclass(frozen=True)
class Reals:
    """The generator step's real batch: the images, their labels, and the discriminator's
    logits on them when the loss compares fakes with reals (else None)."""

    images: tf.Tensor
    labels: tf.Tensor | None
    logits: tf.Tensor | None


@dataclass(frozen=True)
class Fakes:
    """One batch of generated images as a step hook sees it: the images, what the
    discriminator said of them beyond the real/fake logit, and the inputs that drew them."""

    images: tf.Tensor
    judged: Any  # the family's extra discriminator outputs (None when there are none)
    noise: tf.Tensor
    labels: tf.Tensor | None


@dataclass(frozen=True)
class OwnMeasure:
    """A family's own measure of one ledger row, as the tables show it beside the common ones:
    what it is, its value (a share, written as a percentage), and what follows it."""

    what: str
    value: float
    note: str = ""

    def text(self) -> str:
        return f"{self.what} {self.value:.2%}{self.note}"


@dataclass(frozen=True)
class Exporter:
    """How the export stage converts a model of one kind that a family's run saves: `graph`
    turns the loaded Keras network into (a tf.function, its input signature), whose outputs
    are named `outputs`; `metadata(provenance, role)` is the ONNX file's metadata
    (`pipeline.runtime.contract`)."""

    graph: Callable[[Any], tuple[Any, tuple]]
    outputs: tuple[str, ...]
    metadata: Callable[..., dict[str, str]]


# A page's generated block: (page, rows of the ledger -> its lines), by the block's name.
Block = tuple[str, Callable[[Path, list[dict[str, Any]]], list[str]]]


class Family:
    """The seed DCGAN's behaviour; a family overrides what it changes."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one sentence: what the family is and what it is for
    defaults: ClassVar[Defaults]
    # the train.loss it takes
    losses: ClassVar[tuple[str, ...]] = ("gan", "lsgan", "softmax", "wgan", "wgan-gp")
    own_settings: ClassVar[tuple[str, ...]] = ()  # train keys no other family reads
    takes_r1: ClassVar[bool] = True  # whether train.r1_weight applies
    generator_sees_real: ClassVar[bool] = False  # its generator step judges the real batch too
    distributes: ClassVar[bool] = True  # whether it trains under a tf.distribute strategy
    # whether train.critic_norm applies: the seed discriminator takes batch norm or not; a
    # discriminator of the family's own has no such choice
    takes_critic_norm: ClassVar[bool] = True
    # The experiments ledger's fields its rows can fill from their evaluation (None where a run
    # has no such measure; here: those of a model that takes the digit), and its own blocks of
    # the generated docs (`make report`).
    ledger_fields: ClassVar[tuple[str, ...]] = ("label_accuracy", "classification_accuracy_score")
    report_blocks: ClassVar[dict[str, Block]] = {}
    # The kinds of model its run saves besides the generator (`write_models`), each with how
    # the export stage converts it.
    exporters: ClassVar[dict[str, Exporter]] = {}

    def __init__(self, config):
        self.config = config  # the resolved train section

    # The generator's inputs.
    @property
    def label_values(self) -> int:
        """How many values the generator's integer input takes; 0: it has none."""
        return 0

    @property
    def latent_dim(self) -> int:
        """The width of the Keras generator's noise input."""
        return self.config.noise_dim

    def contract(self, code_meanings: str = "") -> GeneratorContract:
        """What the exported generator takes: the noise only."""
        return GeneratorContract(self.config.noise_dim)

    def describe(self) -> str:
        """The model card's sentence on what a caller can choose."""
        return "Unconditional: the digit cannot be chosen."

    # The networks.
    def build_generator(self, *, synchronized: bool = False, trained: bool = False):
        return networks.build_generator(
            self.latent_dim, self.label_values, synchronized=synchronized, trained=trained
        )

    def build_discriminator(self, *, synchronized: bool = False):
        return networks.build_discriminator(batch_norm=self.config.critic_norm == "batch")

    # The data.
    def prepare(self, images, labels) -> None:
        """Check the training split (uint8 images, labels) and take what the family needs of
        it, before the trainer builds; raises `TrainingError` when it does not suit."""

    # The step.
    def judge(self, discriminator, images, labels, training: bool):
        """The discriminator on `images`: the real/fake logits `(N, 1)` and its other
        outputs (None when there are none)."""
        return discriminator(images, training=training), None

    def discriminator_fake_labels(self, run, labels, count):
        """The labels the discriminator step's fakes are drawn with: the real batch's."""
        return labels

    def conditioning(self, real, real_labels, noise, fake_labels):
        """What the discriminator takes beside the real and the generated images: their
        labels (read by the conditional model, ignored by the others)."""
        return real_labels, fake_labels

    def discriminator_loss(self, run, loss: tf.Tensor, fakes: Fakes, count) -> tf.Tensor:
        """The discriminator step's loss, given the chosen loss on the real/fake logits."""
        return loss

    def generator_loss(self, run, fake_logits, fakes: Fakes, real: Reals) -> tf.Tensor:
        """The generator step's loss: make the discriminator call the fakes real."""
        return run.objective.generator(fake_logits, real.logits)

    # The run's own state and outputs.
    def build_state(self, run) -> None:
        """Build what the family trains besides the two networks (after them, before the
        optimizers: the order fixes the seeded initial weights)."""

    def generator_side(self, run) -> list:
        """The networks the generator step trains, with one optimizer."""
        return [run.generator]

    def checkpoint_parts(self, run) -> dict[str, Any]:
        """What a resumed run must restore besides the networks, optimizers and noise."""
        return {}

    def keep_best(self, run) -> None:
        """Keep what the family exports with the generator, at the step whose generator has
        the lowest tracked Frechet distance so far (`train.export_weights: best`)."""

    def update_averages(self, run) -> None:
        """Update the family's own weight averages after a step (the generator's is the
        trainer's). Traced into the step: AutoGraph needs a statement besides the docstring."""
        return

    def after_training(self, run, tracker, metrics: dict[str, Any]) -> str:
        """Measure what the family adds (into `metrics`); returns the generator's code
        meanings for its contract ('' when it has none)."""
        return ""

    def write_models(self, run, folder, data, provenance, metrics: dict[str, Any]) -> None:
        """Write the family's networks besides the generator into the empty `folder` (with
        `save_models`); it exists for every family, so DVC always has the output."""

    # The evaluate stage.
    @classmethod
    def measure(cls, evaluation: Evaluation) -> dict[str, Any]:
        """What the evaluate stage measures of this family's exported models beyond every
        generator's measures, by metric key (each a key no other family writes): of a model
        that takes the digit, how it obeys it (`pipeline.evaluation.conditioning`)."""
        return measure_labels(evaluation) if evaluation.sampler.conditional else {}

    # The ledger and the report.
    @classmethod
    def ledger_values(cls, evaluated: dict[str, Any]) -> dict[str, Any]:
        """The `ledger_fields` of one run, from its evaluate metrics (a field the run was not
        measured for left out): a model that takes the digit, its label accuracy and
        Classification Accuracy Score."""
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
        """The family's own measure in one of its ledger rows; None: it has none, or the row
        was not measured for it. A model that takes the digit: its label accuracy, then the
        Classification Accuracy Score where the run was measured for it."""
        if row.get("label_accuracy") is None:
            return None
        score = row.get("classification_accuracy_score")
        note = f", CAS {score[0]:.2%} (real digits {score[1]:.2%})" if score else ""
        return OwnMeasure("label accuracy", row["label_accuracy"], note=note)


def save_models(folder: Path, models: list[tuple[FamilyModel, Any]], files: dict[str, Any]) -> None:
    """Save each (description, float32 Keras network) and each JSON file of `files` (name ->
    content) into `folder`, then the listing that names them for the export stage. Each file
    is written atomically, the listing last."""
    for model, network in models:
        save_keras(network, folder / f"{model.name}.keras")
    for name, content in files.items():
        write_json_atomically(folder / name, content)
    write_listing(folder, [model for model, _ in models], list(files))
