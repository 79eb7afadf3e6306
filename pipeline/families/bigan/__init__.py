"""BiGAN / ALI (Donahue et al. 2016, "Adversarial Feature Learning"; Dumoulin et al. 2016,
"Adversarially Learned Inference"): an encoder learnt beside the generator, images to noise.

The generator is the seed's, unchanged. The encoder E maps an image to the noise space
(`networks.build_encoder`, beside this module); the discriminator judges pairs, telling (x, E(x)) on
real images from (G(z), z) on drawn noise (`build_joint_discriminator`). The generator step
trains G and E together to swap the two (`losses.bigan_generator_loss`): at the
optimum E inverts G, so G(E(x)) redraws x and E's features describe digits without a label.

The encoder is exported as `models/family/encoder.onnx` (`pipeline.runtime.encode` runs it)
as its weight average, taken at the step whose generator is exported, so the two belong
together. The evaluate stage measures it (`pipeline.evaluation.encoding`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import tensorflow as tf

from pipeline.evaluation import encoding
from pipeline.evaluation.family_measures import Evaluation
from pipeline.families.base import (
    Block,
    Defaults,
    Exporter,
    Fakes,
    Family,
    OwnMeasure,
    Reals,
    save_models,
)
from pipeline.families.bigan import losses, networks
from pipeline.gan.averaging import WeightAverage
from pipeline.gan.placement import precision_policy
from pipeline.runtime.contract import (
    CODES_OUTPUT,
    ENCODER_KIND,
    FEATURES_OUTPUT,
    IMAGE_SHAPE,
    IMAGES_OUTPUT,
    encoder_metadata,
)
from pipeline.runtime.encode import ENCODER_FILE, Encoder
from pipeline.runtime.family_models import FamilyModel
from pipeline.storage.images import from_uint8, paired_grid, save_png

# What a run's ledger row keeps of its encoder's evaluation (`pipeline.evaluation.encoding`).
ENCODER_MEASURES = (
    "nearest_neighbour_accuracy_features",
    "nearest_neighbour_accuracy_codes",
    "reconstruction_ratio",
    "digit_kept",
)
RECONSTRUCTIONS_FILE = "reconstructions.png"  # beside the evaluate stage's sample grid
ENCODER = FamilyModel(
    ENCODER_FILE.removesuffix(".onnx"), ENCODER_KIND, "BiGAN encoder: images to the noise"
)


def encoder_graph(network):
    """An encoder network's two outputs, codes and features, under their contract names:
    images `(N, 28, 28, 1)` in [-1, 1] -> `(N, noise_dim)` and `(N, 1024)`."""
    signature = (tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32, name=IMAGES_OUTPUT),)

    @tf.function(input_signature=signature)
    def encode(images):
        codes, features = network(images, training=False)
        return {CODES_OUTPUT: codes, FEATURES_OUTPUT: features}

    return encode, signature


def encoder_block(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """Every BiGAN run of the ledger with its encoder's measures, the targets' row first."""
    lines = [
        "| run | epochs | levers | 1-NN accuracy, features | 1-NN accuracy, codes | "
        "reconstruction ratio | digit kept | Frechet distance | train s |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        "| target | | | >= 97.50% | | <= 0.600 | >= 90.00% | <= 3.000 | <= 1800 |",
    ]
    for row in rows:
        encoder = row.get("encoder")  # filled in BiGAN runs only
        if not encoder:
            continue
        seconds = row["train_seconds"]
        lines.append(
            f"| `{row['name']}` | {row['epochs']} | {row['levers']} | "
            f"{encoder['nearest_neighbour_accuracy_features']:.2%} | "
            f"{encoder['nearest_neighbour_accuracy_codes']:.2%} | "
            f"{encoder['reconstruction_ratio']:.3f} | {encoder['digit_kept']:.2%} | "
            f"{row['frechet_distance']:.3f} | {'-' if seconds is None else f'{seconds:.0f}'} |"
        )
    return lines


def weights_held(network):
    """`network` called in training mode, whose gradient reaches its input but not its
    weights: what is upstream of it learns through it while it stays as it is."""

    @tf.custom_gradient
    def call(inputs):
        with tf.GradientTape(persistent=True) as tape:  # an outer tape may ask twice
            tape.watch(inputs)
            outputs = network(inputs, training=True)

        def gradient(upstream, variables=None):
            through = tape.gradient(outputs, inputs, output_gradients=upstream)
            return through, [tf.zeros_like(variable) for variable in variables or ()]

        return outputs, gradient

    return call


class BiGAN(Family):
    name = "bigan"
    summary = "An encoder learnt with the generator: a digit to its noise and back, G(E(x))."
    # Donahue et al.'s Adam (beta1 0.5); the encoder learns at the generator's rate, in the
    # same optimizer, and the discriminator at a fifth of it: at the seed's ratio it wins early
    # and the generator draws worse digits (docs/FAMILIES.md, BiGAN).
    # Three epochs, the seed's: the encoder's measures pass their targets there.
    defaults = Defaults(learning_rate=1e-3, discriminator_learning_rate=2e-4, beta1=0.5)
    losses = ("gan",)  # the encoder's half of the loss swaps real and fake: a cross-entropy's
    takes_critic_norm = False  # its discriminator is its own
    own_settings = (
        "reconstruction_weight",
        "code_reconstruction_weight",
        "cycle_trains",
        "unary_scores",
    )
    ledger_fields = (*Family.ledger_fields, "encoder")  # its measures, `ENCODER_MEASURES`
    report_blocks: ClassVar[dict[str, Block]] = {"bigan": ("docs/FAMILIES.md", encoder_block)}
    exporters: ClassVar[dict[str, Exporter]] = {
        ENCODER_KIND: Exporter(encoder_graph, (CODES_OUTPUT, FEATURES_OUTPUT), encoder_metadata)
    }
    generator_sees_real = True  # the encoder's pairs are real images'

    def describe(self) -> str:
        return (
            "Unconditional generator of a BiGAN; its encoder (`models/family/encoder.onnx`) "
            "maps an image to the noise that redraws it."
        )

    def build_discriminator(self, *, synchronized: bool = False):
        return networks.build_joint_discriminator(
            self.config.noise_dim, unary=self.config.unary_scores
        )

    def judge(self, discriminator, images, codes, training: bool):
        return discriminator([images, codes], training=training), None

    def conditioning(self, real, real_labels, noise, fake_labels):
        """Real images with their codes E(x), generated ones with the noise that drew them."""
        return self.encoder(real, training=True)[0], noise

    def generator_loss(self, run, fake_logits, fakes: Fakes, real: Reals) -> tf.Tensor:
        """The adversarial loss on both kinds of pair; with `reconstruction_weight`, plus
        that weight of mean |x - G(E(x))| on the real batch (ALICE's explicit cycle term, Li et
        al. 2017), which asks G(E(x)) to redraw x rather than leave it to the discriminator
        (with `cycle_trains: encoder` it trains E alone: G's digits answer to the
        discriminator only, and the pixel distance, which favours a blur, does not reach G);
        with `code_reconstruction_weight`, plus that weight of mean |z - E(G(z))| on the
        generated batch (the noise's cycle, as ALICE's and BicycleGAN's latent regression): E
        learns to invert G where G draws, without asking G's digits to match pixels."""
        loss = losses.bigan_generator_loss(fake_logits, real.logits)
        weight = self.config.reconstruction_weight
        if weight:
            codes = self.encoder(real.images, training=True)[0]
            if self.config.cycle_trains == "encoder":
                redrawn = weights_held(run.generator)(codes)
            else:
                redrawn = run.generator(codes, training=True)
            distance = losses.reconstruction_loss(real.images, redrawn)
            loss += weight * tf.cast(distance, loss.dtype)
        weight = self.config.code_reconstruction_weight
        if weight:
            found = self.encoder(fakes.images, training=True)[0]
            distance = losses.reconstruction_loss(fakes.noise, found)
            loss += weight * tf.cast(distance, loss.dtype)
        return loss

    def build_state(self, run) -> None:
        """The encoder (trained by the generator's optimizer), its weight average, and the
        copy kept with the best tracked generator."""
        self.encoder = networks.build_encoder(self.config.noise_dim)
        self.average = None
        if self.config.average_decay:
            with precision_policy("float32"):
                averaged = networks.build_encoder(self.config.noise_dim)
            self.average = WeightAverage(
                self.encoder, averaged, self.config.average_decay, self.config.average_horizon
            )
        with precision_policy("float32"):
            self.best = networks.build_encoder(self.config.noise_dim)
        self.best_kept = tf.Variable(False, trainable=False, name="best_encoder_kept")

    def generator_side(self, run) -> list:
        return [run.generator, self.encoder]

    def checkpoint_parts(self, run) -> dict[str, Any]:
        parts: dict[str, Any] = {"encoder": self.encoder, "best_encoder": self.best}
        parts["best_encoder_kept"] = self.best_kept
        if self.average is not None:
            parts["average_encoder"] = self.average.average
            parts["average_encoder_updates"] = self.average.updates
        return parts

    def update_averages(self, run) -> None:
        if self.average is not None:
            self.average.update()

    def exported_encoder(self):
        """The weight average when there is one, else the trained encoder."""
        return self.encoder if self.average is None else self.average.average

    def keep_best(self, run) -> None:
        self.best.set_weights(self.exported_encoder().get_weights())
        self.best_kept.assign(True)

    def write_models(self, run, folder, data, provenance, metrics) -> None:
        """The encoder that belongs to the exported generator, as a float32 network."""
        chosen = self.best if bool(self.best_kept.numpy()) else self.exported_encoder()
        with precision_policy("float32"):
            encoder = networks.build_encoder(self.config.noise_dim)
        encoder.set_weights(chosen.get_weights())
        save_models(folder, [(ENCODER, encoder)], {})

    @classmethod
    def measure(cls, evaluation: Evaluation) -> dict[str, Any]:
        """`bigan`: the exported encoder with the exported generator, as
        `pipeline.evaluation.encoding` measures them, the evaluation classifier naming the
        digits; the first test images and their reconstructions drawn to
        `RECONSTRUCTIONS_FILE`."""
        if evaluation.models is None:
            return super().measure(evaluation)
        path, test = evaluation.models / ENCODER_FILE, evaluation.test
        encoder = Encoder(path)
        encoder.check_pairs_with(evaluation.sampler, path)
        metrics, reconstructed = encoding.measure_encoder(
            encoder,
            evaluation.sampler,
            evaluation.digits,
            evaluation.train,
            (test.images, test.labels),
            evaluation.config.seed,
        )
        columns = evaluation.config.grid_size
        shown = columns**2 // 2
        grid = paired_grid(from_uint8(test.images[:shown]), reconstructed[:shown], columns)
        save_png(grid, evaluation.plots / RECONSTRUCTIONS_FILE, scale=3)
        return super().measure(evaluation) | {"bigan": metrics}

    @classmethod
    def ledger_values(cls, evaluated: dict[str, Any]) -> dict[str, Any]:
        values = super().ledger_values(evaluated)
        if "bigan" in evaluated:
            values["encoder"] = {key: evaluated["bigan"][key] for key in ENCODER_MEASURES}
        return values

    @classmethod
    def own_measure(cls, row: dict[str, Any]) -> OwnMeasure | None:
        if not row.get("encoder"):
            return None
        features = row["encoder"]["nearest_neighbour_accuracy_features"]
        return OwnMeasure("encoder 1-NN accuracy", features)
