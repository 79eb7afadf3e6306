"""The conditional GAN: both networks take the digit, so a caller chooses it.

The generator adds a learned label embedding to its noise; the discriminator is a projection
discriminator (Miyato & Koyama 2018, `pipeline.gan.networks`). In the discriminator step the
fakes take the real batch's labels, so each class is seen as often real as fake (and the
gradient penalty interpolates images of one label); the generator step draws its labels
uniformly.
"""

from __future__ import annotations

from pipeline.errors import TrainingError
from pipeline.families.base import Defaults, Family
from pipeline.gan import networks
from pipeline.runtime.contract import CLASSES, GeneratorContract


class Conditional(Family):
    name = "conditional"
    summary = "The digit is an input of both networks: `dcgan sample --label 7` draws sevens."
    # It collapses at the unconditional rates and needs the reverse ratio (docs/DECISIONS.md).
    defaults = Defaults(learning_rate=1e-3, discriminator_learning_rate=2e-3, beta1=0.5)

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
