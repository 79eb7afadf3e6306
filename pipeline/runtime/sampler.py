"""Draw digits from the exported ONNX generator with onnxruntime and numpy alone.

This is the module apps embed: it imports neither TensorFlow nor click, and reads everything it
needs (noise size and distribution, the classes of a conditional model) from the model file
through `pipeline.runtime.contract`. It returns arrays; `pipeline.runtime.sample_files` writes
them to files, and `pipeline.runtime.traversals` makes the figures across its inputs (code
sweeps, every class from one noise, latent walks).

    from pipeline.runtime.sampler import Sampler
    images = Sampler("models/generator.onnx").sample(16, seed=0)  # uint8 (16, 28, 28)
    sevens = Sampler("conditional.onnx").sample(16, seed=0, label=7)
    slanted = Sampler("infogan.onnx").sample(16, seed=0, codes={"category": 3, "c1": 0.8})

An InfoGAN model's continuous codes are drawn as the last columns of the noise (and its
categorical code like a conditional model's label, the values in turn), so everything that
draws noise and labels draws codes too; `codes` fixes some of them.

Memory stays bounded whatever `n` is with `batches`: noise and images are made one batch at a
time. Arguments are checked once, by the public method called.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.errors import ModelOutputError, SamplerError
from pipeline.runtime import contract
from pipeline.runtime.model_bytes import read_checked
from pipeline.runtime.noise import SEED_LIMIT
from pipeline.storage.images import to_uint8

CPU_PROVIDER = "CPUExecutionProvider"
DEFAULT_BATCH_SIZE = 256
MAX_GRID_IMAGES = 4096


class Sampler:
    """An onnxruntime session on a generator: noise `z` `(N, noise_dim)` (and for a conditional
    model, labels `(N,)`; for InfoGAN, its codes) -> images `(N, 28, 28, 1)` in [-1, 1].

    A conditional model's images take the given `label`, or else the classes in turn (image i of
    a call is class i modulo the number of classes), so every call is reproducible. An InfoGAN
    model's categorical code goes in turn the same way.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        threads: int = 0,
        quick_start: bool = False,
        providers: Sequence[str] = (CPU_PROVIDER,),
    ):
        """`quick_start` skips onnxruntime's packing of the weights for its matrix kernels: the
        session opens sooner and large batches run slower (docs/APPS.md). Worth it for a
        one-shot call of a few thousand images or fewer.

        `providers`: onnxruntime's execution providers in order of preference (names such as
        `CUDAExecutionProvider` or short ones such as `cuda`; `available_providers()` lists
        what this onnxruntime has); onnxruntime runs what a provider cannot on the CPU."""
        path = Path(model_path)
        self.session = open_session(
            path, threads=threads, quick_start=quick_start, providers=check_providers(providers)
        )
        self.path = path
        self.contract = contract.read(self.session, path)

    @property
    def noise_dim(self) -> int:
        """The width of the noise drawn per image: the model's noise, then an InfoGAN model's
        continuous codes."""
        return self.contract.latent_dim

    @property
    def classes(self) -> tuple[int, ...]:
        """The values of the integer input: a conditional model's classes, an InfoGAN
        model's categorical code values."""
        return self.contract.classes or tuple(range(self.contract.categorical_codes))

    @property
    def conditional(self) -> bool:
        return self.contract.conditional

    @property
    def infogan(self) -> bool:
        return self.contract.infogan

    def require_conditional(self) -> None:
        if self.infogan:
            raise SamplerError(
                f"{self.path} is an InfoGAN model: it takes codes, not labels "
                f"({codes_text(self.contract)}); e.g. --code category=3"
            )
        if not self.conditional:
            raise SamplerError(
                f"{self.path} is an unconditional model: it takes no label (a model trained "
                "with train.model: conditional does)"
            )

    def check_label(self, label) -> int:
        """`label` as an int, or a `SamplerError` saying why the model cannot draw it."""
        self.require_conditional()
        if isinstance(label, bool) or not isinstance(label, int | np.integer):
            raise SamplerError(f"a label must be a whole number, got {label!r}")
        if int(label) not in self.classes:
            raise SamplerError(
                f"label {label} is not one of the model's classes ({_classes_text(self.classes)})"
            )
        return int(label)

    def labels(self, count: int, label: int | None = None, *, start: int = 0):
        """The labels of `count` images (int64 `(count,)`, None for an unconditional model):
        `label` for each, or the classes in turn from image number `start`."""
        return self.labels_in_turn(count, self.checked_label(label), start)

    def checked_label(self, label) -> int | None:
        """`label` checked (`check_label`), or None."""
        return None if label is None else self.check_label(label)

    def labels_in_turn(self, count: int, label: int | None, start: int = 0):
        """`labels` for a label already checked."""
        if not self.classes:
            return None
        if label is not None:
            return np.full(count, label, np.int64)
        turns = (start + np.arange(count)) % len(self.classes)
        return np.asarray(self.classes, np.int64)[turns]

    def noise(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """`count` noise vectors as the model was trained on (normal: mean 0, std 1)."""
        return self.contract.noise.draw(rng, count, self.noise_dim)

    def seeded_noise(self, seed: int, count: int, *, first_row: int = 0) -> np.ndarray:
        """Rows `first_row` ... of the noise of `seed`, drawn as the contract specifies, so
        the web page and the Node sampler draw the same digits from the same seed."""
        return self.contract.noise.seeded(seed, count, self.noise_dim, first_row=first_row)

    def feed(self, noise: np.ndarray, labels=None, label_mix=None) -> dict[str, np.ndarray]:
        """The session's inputs: the noise, and a conditional model's labels (the classes in
        turn when None) and optional `label_mix` rows (which `labels` then index); for an
        InfoGAN model, `noise` `(N, noise_dim)` ends with the continuous codes and `labels`
        are the categorical codes (in turn when None)."""
        if self.infogan:
            return self._code_feed(noise, labels, label_mix)
        feed = {contract.NOISE_INPUT: noise}
        if not self.conditional:
            if labels is not None or label_mix is not None:
                self.require_conditional()
            return feed
        if labels is None:
            labels = self.labels_in_turn(len(noise), None)
        labels = np.asarray(labels, np.int64)
        if label_mix is None:
            unknown = labels[~np.isin(labels, self.classes)]
            if unknown.size:
                self.check_label(int(unknown[0]))  # raises, naming the classes
        else:
            mix = contract.LABEL_MIX_INPUT
            if mix not in {i.name for i in self.session.get_overridable_initializers()}:
                raise SamplerError(f"{self.path}: this model cannot mix classes (no {mix})")
            feed[mix] = np.asarray(label_mix, np.float32)
        feed[contract.LABEL_INPUT] = labels
        return feed

    def _code_feed(self, noise: np.ndarray, codes, label_mix) -> dict[str, np.ndarray]:
        if label_mix is not None:
            self.require_conditional()
        width = self.contract.noise_dim
        noise = np.asarray(noise, np.float32)
        codes = (
            self.labels_in_turn(len(noise), None) if codes is None else np.asarray(codes, np.int64)
        )
        outside = codes[(codes < 0) | (codes >= len(self.classes))]
        if outside.size:
            raise SamplerError(
                f"category {outside[0]} is not one of the model's categorical codes "
                f"(0-{len(self.classes) - 1})"
            )
        feed = {contract.NOISE_INPUT: noise[:, :width], contract.CATEGORICAL_CODE_INPUT: codes}
        if self.contract.continuous_codes:
            feed[contract.CONTINUOUS_CODE_INPUT] = noise[:, width:]
        return feed

    def check_codes(self, codes: dict[str, object] | None) -> dict[str, float]:
        """`codes` (name -> value, numbers or their text) checked against the model: names
        from `code_names`, the category a whole number among its values, continuous codes
        finite and in their range. Returns name -> value (the category as an int)."""
        if not codes:
            return {}
        if not self.infogan:
            raise SamplerError(
                f"{self.path} takes no codes (a model trained with train.model: infogan does)"
            )
        checked: dict[str, float] = {}
        for name, value in codes.items():
            if name not in self.contract.code_names:
                raise SamplerError(
                    f"unknown code {name!r}: this model's codes are {codes_text(self.contract)}"
                )
            checked[name] = self._code_value(name, value)
        return checked

    def _code_value(self, name: str, value) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SamplerError(f"code {name}: expected a number, got {value!r}") from None
        if name == "category":
            if not number.is_integer() or int(number) not in self.classes:
                raise SamplerError(
                    f"code category: expected a whole number 0-{len(self.classes) - 1}, "
                    f"got {value!r}"
                )
            return int(number)
        low, high = contract.CONTINUOUS_CODE_RANGE
        if not low <= number <= high:
            raise SamplerError(
                f"code {name}: expected a number in [{low:g}, {high:g}], got {value!r}"
            )
        return number

    def with_codes(self, noise: np.ndarray, labels, codes: dict[str, float]):
        """`noise` and `labels` with the fixed `codes` written in (checked by `check_codes`)."""
        for index, name in enumerate(self.contract.code_names[1:]):
            if name in codes:
                noise[:, self.contract.noise_dim + index] = codes[name]
        if "category" in codes:
            labels = np.full(len(noise), codes["category"], np.int64)
        return noise, labels

    def generate(self, noise: np.ndarray, labels=None, *, label_mix=None) -> np.ndarray:
        """Raw generator output for the given noise (and labels, see `feed`): float32
        `(N, 28, 28, 1)` in [-1, 1]; a `SamplerError` if any value is NaN or infinite (a
        damaged file, or weights that diverged), rather than images of garbage."""
        feed = self.feed(noise, labels, label_mix)
        try:
            images = self.session.run([contract.IMAGES_OUTPUT], feed)[0]
        except Exception as error:  # onnxruntime raises its own, unexported exception types
            raise ModelOutputError(
                f"{self.path}: onnxruntime failed while running the model ({_reason(error)})"
            ) from error
        if not np.isfinite(images).all():
            raise ModelOutputError(
                f"{self.path}: the model's output is not finite (NaN or infinity): the file is "
                "damaged or its weights diverged; export it again"
            )
        return images

    def batches(
        self,
        n: int,
        *,
        seed: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        label: int | None = None,
        codes: dict[str, object] | None = None,
    ) -> Iterator[np.ndarray]:
        """uint8 images `(b, 28, 28)` in batches of at most `batch_size`, `n` in all.

        Noise row i and the label of image i depend on i alone (`seeded_noise`), so the images
        do not depend on `batch_size` beyond onnxruntime's float rounding, and the same
        arguments give the same bytes. Bad arguments fail here, before any work.
        """
        check_count(n, seed, batch_size)
        return self._batches(
            n, seed, batch_size, self.checked_label(label), self.check_codes(codes)
        )

    def _batches(self, n: int, seed: int, batch_size: int, label: int | None, codes):
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            labels = self.labels_in_turn(count, label, start)
            noise = self.seeded_noise(seed, count, first_row=start)
            noise, labels = self.with_codes(noise, labels, codes)
            yield to_uint8(self.generate(noise, labels))[..., 0]

    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        label: int | None = None,
        codes: dict[str, object] | None = None,
    ) -> np.ndarray:
        """`n` uint8 images `(n, 28, 28)` in memory (use `batches` for very many)."""
        batches = self.batches(n, seed=seed, batch_size=batch_size, label=label, codes=codes)
        return np.concatenate(list(batches))


def open_session(
    path: Path,
    *,
    threads: int = 0,
    quick_start: bool = False,
    providers: Sequence[str] = (CPU_PROVIDER,),
):
    """An onnxruntime session on the model file at `path` (`Sampler` says what the options
    do; `providers` checked), or a one-line `SamplerError`."""
    if not path.is_file():
        raise SamplerError(f"{path}: no such model file")
    data = read_checked(path, path, SamplerError)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # nothing on stderr: a failure is raised, and reported once, by the caller
    options.log_severity_level = 4
    if quick_start:
        options.add_session_config_entry("session.disable_prepacking", "1")
    try:
        return ort.InferenceSession(data, options, providers=list(providers))
    except Exception as error:  # onnxruntime raises its own, unexported exception types
        raise SamplerError(f"{path}: not a usable ONNX model ({_reason(error)})") from error


def _reason(error: Exception) -> str:
    """The first line of an onnxruntime error, without its code prefix, at most 200 characters."""
    reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(error).strip())
    return reason.splitlines()[0][:200] if reason else type(error).__name__


def available_providers() -> list[str]:
    """The execution providers this onnxruntime build has, best first."""
    return list(ort.get_available_providers())


def check_providers(names: Sequence[str]) -> list[str]:
    """`names` as onnxruntime's provider names (`cuda` -> `CUDAExecutionProvider`), or a
    `SamplerError` naming the ones this onnxruntime has."""
    available = available_providers()
    by_short_name = {p.lower().removesuffix("executionprovider"): p for p in available}
    chosen = []
    for name in [names] if isinstance(names, str) else list(names):
        found = name if name in available else by_short_name.get(str(name).lower())
        if found is None:
            raise SamplerError(
                f"onnxruntime provider {name!r} is not available here; this onnxruntime has "
                f"{', '.join(available)}"
            )
        chosen.append(found)
    if not chosen:
        raise SamplerError(
            f"no onnxruntime provider given; this onnxruntime has {', '.join(available)}"
        )
    return chosen


def check_count(n: int, seed: int, batch_size: int) -> None:
    if n <= 0:
        raise SamplerError(f"the number of images must be positive, got {n}")
    if not 0 <= seed < SEED_LIMIT:
        raise SamplerError(f"the seed must be in [0, 2**64), got {seed}")
    if batch_size <= 0:
        raise SamplerError(f"the batch size must be positive, got {batch_size}")


def codes_text(terms: contract.GeneratorContract) -> str:
    low, high = contract.CONTINUOUS_CODE_RANGE
    named = [f"category (0-{terms.categorical_codes - 1})"]
    named += [f"{name} ([{low:g}, {high:g}])" for name in terms.code_names[1:]]
    return ", ".join(named)


def _classes_text(classes: tuple[int, ...]) -> str:
    if classes == tuple(range(classes[0], classes[-1] + 1)):
        return f"{classes[0]}-{classes[-1]}"
    return ", ".join(str(c) for c in classes)
