"""The networks, optimizers, noise source and compiled step of one training run, for any family.

Per training step: `critic_steps` discriminator steps (one for the GAN losses), each on its own
slice of the real batch and fresh fakes, then one generator step on fresh noise, all in one
compiled `tf.function`. What a family changes (its networks, how its discriminator is read,
what each step adds to the chosen loss) the trainer asks the family
(`pipeline.families.base.Family`). All randomness comes from `train.seed`: a
`tf.random.Generator` whose state is checkpointed with the networks and optimizers (under a
strategy, stateless noise keyed by the step), so a resumed run continues exactly.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from pipeline.config import TrainSettings
from pipeline.errors import TrainingError
from pipeline.families import family_of, resolved
from pipeline.families.base import Fakes, Reals
from pipeline.gan import augment, losses, networks
from pipeline.gan.averaging import WeightAverage
from pipeline.gan.optimizers import FusedAdam
from pipeline.gan.placement import Placement, precision_policy
from pipeline.runtime.noise import TRAINING_NOISE
from pipeline.training import distribution
from pipeline.training.distribution import Distribution, ReplicaNoise
from pipeline.training.exported import BestGenerator, ExportedGenerator
from pipeline.training.schedule import HoldThenLinearDecay


class Trainer:
    """One run's training state and step. `data`: the training split (uint8 images, labels),
    for a family that takes something of it before it builds (the labelled images)."""

    def __init__(
        self,
        config: TrainSettings,
        placement: Placement,
        total_steps: int = 0,
        distributed: Distribution | None = None,
        data: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        self.config = config = resolved(config)
        self.family = family_of(config)
        if data is not None:
            self.family.prepare(*data)
        self.distributed = distributed or Distribution(None, 1)
        strategy = self.distributed.strategy
        if strategy is not None and not self.family.distributes:
            raise TrainingError(f"the {config.model} model trains on one device")
        if strategy is None:
            self._build(placement, total_steps)
            step = self._train_step
        else:
            with strategy.scope():
                self._build(placement, total_steps)
            step = self._distributed_step
        # Two compiled steps when the R1 penalty is on: with it every `r1_every` steps (lazy
        # regularisation), without it in between; a Python choice, so neither graph branches.
        self._steps = [tf.function(functools.partial(step, regularize=False))]
        if config.r1_weight and self.family.takes_r1 and self.objective.takes_r1:
            self._steps.append(tf.function(functools.partial(step, regularize=True)))

    def _build(self, placement: Placement, total_steps: int) -> None:
        """The networks, optimizers, noise source and checkpoint parts (under a strategy's
        scope, so that every variable is mirrored on its replicas). The order of the builds
        fixes the seeded initial weights."""
        config, family = self.config, self.family
        self.total_steps = total_steps
        self.placement = placement
        self.objective = losses.OBJECTIVES[config.loss]
        self.classes = family.label_values
        self.noise_dim = family.latent_dim
        self.replicas = self.distributed.replicas
        synchronized = self.distributed.strategy is not None and config.batch_norm == "synchronized"
        self.generator = family.build_generator(synchronized=synchronized, trained=True)
        self.discriminator = family.build_discriminator(synchronized=synchronized)
        self.average = None
        if config.average_decay:
            with precision_policy("float32"):
                averaged = family.build_generator()
            self.average = WeightAverage(
                self.generator, averaged, config.average_decay, config.average_horizon
            )
        family.build_state(self)
        best = None
        if config.track_every and config.export_weights == "best":
            with precision_policy("float32"):
                best = BestGenerator(family.build_generator())
        self.exported = ExportedGenerator(self, best)
        self.generator_variables = [
            variable
            for network in family.generator_side(self)
            for variable in network.trainable_variables
        ]
        self.generator_optimizer = self._optimizer(self.generator_variables, "generator")
        self.discriminator_optimizer = self._optimizer(
            self.discriminator.trainable_variables, "discriminator"
        )
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        if self.distributed.strategy is None:
            self.noise = tf.random.Generator.from_seed(config.seed)
            noise_state = {"noise": self.noise}
        else:  # stateless, keyed by the step: nothing to checkpoint
            self.noise = ReplicaNoise(config.seed, self.step, self.replicas)
            noise_state = {}
        self.checkpoint_parts = {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "generator_optimizer": self.generator_optimizer,
            "discriminator_optimizer": self.discriminator_optimizer,
            "step": self.step,
            "train_seconds": self.train_seconds,
            **noise_state,
            **family.checkpoint_parts(self),
            **self.exported.checkpoint_parts(),
        }

    def _optimizer(self, variables, side: str):
        config = self.config
        rate = config.learning_rate
        if side == "discriminator":
            rate = config.discriminator_learning_rate
        if config.lr_schedule == "anneal" and self.total_steps:
            updates = self.total_steps
            if side == "discriminator":
                updates *= self.config.critic_steps
            rate = HoldThenLinearDecay(rate, updates)
        if config.optimizer == "rmsprop":
            optimizer = keras.optimizers.RMSprop(rate, rho=losses.RMSPROP_RHO)
        else:
            optimizer = FusedAdam(rate, beta_1=config.beta1, beta_2=config.beta2)
        if self.placement.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(variables)
        return optimizer

    # What the families' step hooks use.
    def sample_noise(self, count) -> tf.Tensor:
        return self.noise.uniform((count, self.noise_dim), TRAINING_NOISE.low, TRAINING_NOISE.high)

    def sample_labels(self, count) -> tf.Tensor:
        return self.noise.uniform((count,), 0, self.classes, dtype=tf.int32)

    def generator_inputs(self, x: tf.Tensor, labels: tf.Tensor | None):
        """The generator's input: `x` alone, or `[x, labels]` when it takes an integer input."""
        return [x, labels] if self.classes else x

    def judge(self, images: tf.Tensor, labels, training: bool = True):
        """The discriminator on `images` as the family reads it: the real/fake logits
        `(N, 1)` and its other outputs (None when there are none)."""
        return self.family.judge(self.discriminator, images, labels, training)

    def seen(self, images: tf.Tensor) -> tf.Tensor:
        """What the discriminator sees of real or generated images: themselves, or with
        `train.augment: translation` each moved by its own random shift
        (`pipeline.gan.augment`)."""
        if self.config.augment == "translation":
            return augment.translate(images, self.noise)
        return images

    # The step.
    def step_inputs(self, real_uint8, labels):
        """The training step's arguments for a global batch: as they are on one device, or
        each replica's share under a strategy."""
        strategy = self.distributed.strategy
        if strategy is None:
            return real_uint8, labels
        parts = self.config.critic_steps
        return distribution.split_batch(strategy, parts, np.asarray(real_uint8), np.asarray(labels))

    def train_step(self, real_uint8, labels) -> tuple[tf.Tensor, tf.Tensor]:
        """One training step on `step_inputs`; the R1 penalty (when on) at every
        `r1_every`-th step, counted from 0, so a resumed run regularises the same steps."""
        regularize = len(self._steps) > 1 and int(self.step.numpy()) % self.config.r1_every == 0
        return self._steps[regularize](real_uint8, labels)

    def step_parts(self) -> dict[str, tf.types.experimental.PolymorphicFunction]:
        """The one-device step's parts, each compiled alone, for the training benchmark's
        profile: (real_uint8, labels) -> losses, or nothing for the average."""

        def discriminator(real_uint8, labels, regularize):
            real = networks.from_uint8(real_uint8)
            return self._discriminator_step(real, tf.cast(labels, tf.int32), regularize)

        def generator(real_uint8, labels):
            real = networks.from_uint8(real_uint8)
            return self._generator_step(tf.shape(real)[0], real, tf.cast(labels, tf.int32))

        return {
            "discriminator": tf.function(functools.partial(discriminator, regularize=False)),
            "discriminator_r1": tf.function(functools.partial(discriminator, regularize=True)),
            "generator": tf.function(generator),
            "average": tf.function(lambda real_uint8, labels: self._update_averages()),
        }

    def _distributed_step(self, real_uint8, labels, *, regularize: bool):
        """`_replica_step` on every replica's share, then the weight average (in cross-replica
        context, where the mirrored generator is one value); the losses averaged over the
        replicas."""
        strategy = self.distributed.strategy
        replica_step = functools.partial(self._replica_step, regularize=regularize)
        d_loss, g_loss = strategy.run(replica_step, args=(real_uint8, labels))
        self._update_averages()
        mean = tf.distribute.ReduceOp.MEAN
        return strategy.reduce(mean, d_loss, axis=None), strategy.reduce(mean, g_loss, axis=None)

    def _train_step(self, real_uint8, labels, *, regularize: bool):
        """`_replica_step`, then the weight averages: the whole step on one device."""
        d_loss, g_loss = self._replica_step(real_uint8, labels, regularize=regularize)
        self._update_averages()
        return d_loss, g_loss

    def _update_averages(self) -> None:
        if self.average is not None:
            self.average.update()
        self.family.update_averages(self)

    def _replica_step(self, real_uint8, labels, *, regularize: bool = False):
        """One generator step after `critic_steps` discriminator steps, each on its own slice
        of `real_uint8` `(critic_steps * N, 28, 28)` and its `labels` `(critic_steps * N,)`;
        returns the mean discriminator loss and the generator loss. `regularize`: the
        discriminator steps add the R1 penalty."""
        if isinstance(self.noise, ReplicaNoise):
            self.noise.begin_step()
        real = networks.from_uint8(real_uint8)  # (N, 28, 28, 1)
        labels = tf.cast(labels, tf.int32)
        steps = self.config.critic_steps
        parts = zip(tf.split(real, steps), tf.split(labels, steps), strict=True)
        d_losses = [
            self._discriminator_step(part, part_labels, regularize) for part, part_labels in parts
        ]
        d_loss = d_losses[0] if steps == 1 else tf.add_n(d_losses) / steps
        g_loss = self._generator_step(tf.shape(real)[0] // steps, real, labels)
        return d_loss, g_loss

    def _discriminator_step(self, real, labels, regularize: bool) -> tf.Tensor:
        """Tell real (-> 1, or a high score) from generated (-> 0, or a low score). With
        `regularize`, plus the R1 penalty, weighted `r1_weight * r1_every` so that applied
        every `r1_every` steps it weighs what it would every step (Karras et al. 2020)."""
        config = self.config
        count = tf.shape(real)[0]
        noise = self.sample_noise(count)
        fake_labels = self.family.discriminator_fake_labels(self, labels, count)
        fake = self.generator(self.generator_inputs(noise, fake_labels), training=True)
        real_given, fake_given = self.family.conditioning(real, labels, noise, fake_labels)
        real, fake = self.seen(real), self.seen(fake)

        def critic(images, training):
            return self.judge(images, real_given, training)[0]

        with tf.GradientTape() as tape:
            if regularize:
                real_logits, r1 = losses.real_gradient_penalty(critic, real)
            else:
                real_logits = critic(real, training=True)
            fake_logits, judged = self.judge(fake, fake_given)
            d_loss = self.objective.discriminator_loss(
                real_logits, fake_logits, 1.0 - config.label_smoothing
            )
            fakes = Fakes(fake, judged, noise, fake_labels)
            d_loss = self.family.discriminator_loss(self, d_loss, fakes, count)
            if regularize:
                weight = 0.5 * config.r1_weight * config.r1_every
                d_loss += weight * tf.cast(r1, d_loss.dtype)
            if self.objective.penalty_weight:
                mix = self.noise.uniform((count, 1, 1, 1), 0.0, 1.0)
                penalty = losses.gradient_penalty(critic, real, fake, mix)
                d_loss += self.objective.penalty_weight * tf.cast(penalty, d_loss.dtype)
            scaled = self.discriminator_optimizer.scale_loss(self._share(d_loss))
        variables = self.discriminator.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.discriminator_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        if self.objective.clip:
            clip = self.objective.clip
            for variable in variables:
                variable.assign(tf.clip_by_value(variable, -clip, clip))
        return d_loss

    def _generator_step(self, count, real: tf.Tensor, real_labels: tf.Tensor) -> tf.Tensor:
        """What the family's generator minimises on fresh fakes (by default: make the
        discriminator call them real); `real` is the step's real batch."""
        noise = self.sample_noise(count)
        labels = self.sample_labels(count) if self.classes else None
        with tf.GradientTape() as tape:
            fake = self.generator(self.generator_inputs(noise, labels), training=True)
            real_given, fake_given = self.family.conditioning(real, real_labels, noise, labels)
            fake_logits, judged = self.judge(self.seen(fake), fake_given)
            fakes = Fakes(fake, judged, noise, labels)
            real_logits = None
            if self.objective.generator_sees_real or self.family.generator_sees_real:
                real_logits = self.judge(self.seen(real), real_given)[0]
            reals = Reals(real, real_labels, real_logits)
            g_loss = self.family.generator_loss(self, fake_logits, fakes, reals)
            scaled = self.generator_optimizer.scale_loss(self._share(g_loss))
        variables = self.generator_variables
        gradients = tape.gradient(scaled, variables)
        self.generator_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return g_loss

    def _share(self, loss: tf.Tensor) -> tf.Tensor:
        """A replica's part of the mean loss: the optimizers sum the replicas' gradients."""
        return loss / self.replicas if self.replicas > 1 else loss

    # What the run draws and saves (`ExportedGenerator`).
    def draw(self, noise: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        return self.exported.draw(noise, labels)

    def draw_saved(self, noise: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        return self.exported.draw_saved(noise, labels)
