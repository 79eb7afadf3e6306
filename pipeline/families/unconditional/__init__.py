"""The seed: the classic CS231n-style DCGAN on noise alone (`pipeline.gan.networks`), the
project's default model. Everything it does is the `Family` base class's behaviour."""

from __future__ import annotations

from pipeline.families.base import Defaults, Family


class Unconditional(Family):
    name = "unconditional"
    summary = "The seed DCGAN: noise in, a digit out; which digit is the generator's choice."
    # The generator learns at twice the discriminator's rate, with no Adam momentum: the best
    # of the rate and beta1 sweeps at 3 epochs with R1 (docs/DECISIONS.md).
    defaults = Defaults(learning_rate=3e-3, discriminator_learning_rate=1.5e-3, beta1=0.0)
