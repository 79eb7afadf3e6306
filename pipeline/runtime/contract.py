"""The generator's ONNX contract, in one place: the names of its inputs and output, their
shapes, the noise it was trained on and the metadata keys that say so.

Producers (train, export, quantize) write through it and consumers (the sampler, the
benchmarks) read through it; no other module spells a name or a metadata key. Embedders in
other languages follow `docs/CONTRACT.md`, `docs/generator-metadata.schema.json` and
`docs/generator-contract.json` (what the web page and the Node sampler read), which
`pipeline.runtime.contract_files` writes from this module. The noise itself is
`pipeline.runtime.noise`. Standard library only: the light sampler imports it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ContractError
from pipeline.runtime.noise import NOISE_DISTRIBUTIONS, TRAINING_NOISE, Noise

MODEL_KIND = "dcgan-generator"
NOISE_INPUT = "z"  # float32 (N, noise_dim), N dynamic
LABEL_INPUT = "label"  # int64 (N,): a conditional model's class per image
LABEL_MIX_INPUT = "label_mix"  # optional float32 (rows, classes): class weights `label` indexes
CATEGORICAL_CODE_INPUT = "code_categorical"  # int64 (N,): an InfoGAN model's categorical code
CONTINUOUS_CODE_INPUT = "code_continuous"  # float32 (N, C): its continuous codes
CONTINUOUS_CODE_RANGE = (-1.0, 1.0)  # the continuous codes are drawn uniformly in this range
IMAGES_OUTPUT = "images"  # float32 (N, 28, 28, 1) in [-1, 1]
# The semi-supervised model's classifier (docs/CONTRACT.md): the generator's images in,
# the ten digits' probabilities out.
CLASSIFIER_KIND = "ssl-classifier"
PROBABILITIES_OUTPUT = "probabilities"  # float32 (N, 10), rows sum to 1
# The BiGAN model's encoder (docs/CONTRACT.md): images in, the noise that draws them out.
ENCODER_KIND = "bigan-encoder"
CODES_OUTPUT = "z"  # float32 (N, noise_dim): named as the generator input it feeds
FEATURES_OUTPUT = "features"  # float32 (N, ENCODER_FEATURES): the layer before the codes
ENCODER_FEATURES = 1024
IMAGE_SHAPE = (28, 28, 1)
# Every exported model's metadata key for the digest of its graph (`pipeline.runtime.model_bytes`).
WEIGHTS_DIGEST = "weights_sha256"
# A noise width read from metadata is trusted only up to this (this project's is 96): a bound
# checked before noise is allocated for a model that claims more.
MAX_NOISE_DIM = 1 << 16
# Class values read from metadata are trusted in [0, this) (this project's are 0-9): a label
# fed to the model must fit its int64 input and every runtime's integers.
MAX_CLASSES = 1 << 10
CLASSES = 10  # the datasets' labels: MNIST's digits 0-9, Fashion-MNIST's ten item ids
OUTPUT_RANGE = (-1.0, 1.0)  # pixels: uint8 = round-half-even((x + 1) * 127.5), x clipped first

# Every metadata key and what its value says, all strings as ONNX `metadata_props` are.
METADATA = {
    "model": f"always {MODEL_KIND!r}",
    "noise_dim": "the length of each noise vector, a decimal integer",
    "noise_distribution": "how to draw the noise: 'uniform' (in [noise_low, noise_high]) or "
    "'normal' (mean 0, std 1)",
    "noise_low": "the uniform noise's lower bound, a decimal number",
    "noise_high": "the uniform noise's upper bound, a decimal number",
    "input": "the inputs in words",
    "classes": "a conditional model's classes as a JSON list of integers, the values `label` "
    "takes; absent for an unconditional model",
    "categorical_codes": "an InfoGAN model's number of categorical code values (0 ... K-1), a "
    "decimal integer; absent for other models",
    "continuous_codes": "an InfoGAN model's number of continuous codes, a decimal integer",
    "continuous_code_range": "the range the continuous codes were trained on, a JSON pair",
    "code_meanings": (
        "what each InfoGAN code was measured to control, as JSON (docs/FAMILIES.md, InfoGAN)"
    ),
    "output": "the output in words",
    "output_range": "the output's range and how to turn it into uint8 pixels",
    "dataset": "the training data: 'mnist' or 'fashion-mnist'",
    "train_images_sha256": "SHA-256 of the training images file",
    "train_params": "the `train` section of params.yaml, as JSON",
    "train_steps": "generator updates made, a decimal integer",
    "train_code_revision": "the code that trained the weights (git revision)",
    "export_code_revision": "the code that exported the model (git revision)",
    "opset": "the ONNX opset, a decimal integer",
    "graph": "how the graph differs from the Keras one",
    "int8_fallback": "only in generator-int8.onnx when it holds the float32 graph: why",
    WEIGHTS_DIGEST: "SHA-256 (hex) of the bytes of the ModelProto's graph field (field 7: the "
    "operators and weights) as stored in the file; runtimes refuse a model that does not match",
}
REQUIRED_METADATA = ("model", "noise_dim", "noise_distribution", "noise_low", "noise_high")
GRAPH_NOTE = "batch norm folded; transposed convolutions as batched 2x2 convolutions"
OUTPUT_RANGE_NOTE = "[-1, 1]; to uint8 pixels: round((x + 1) * 127.5)"
INT8_FALLBACK = "int8_fallback"


@dataclass(frozen=True)
class Provenance:
    """Where a model's weights come from: each field becomes the metadata key of its name."""

    dataset: str
    train_images_sha256: str
    train_params: dict[str, Any]
    train_steps: int
    train_code_revision: str

    def metadata(self) -> dict[str, str]:
        source = dataclasses.asdict(self)
        source["train_params"] = json.dumps(self.train_params, sort_keys=True)
        return {key: str(value) for key, value in source.items()}


def kind_of(metadata: dict[str, str]) -> str | None:
    """What a model file says it is (`MODEL_KIND`, `CLASSIFIER_KIND`, `ENCODER_KIND`), from
    its metadata."""
    return metadata.get("model")


def trained_family(session) -> str | None:
    """The family (`train.model`) that trained an onnxruntime session's model, from its
    `train_params`; None for a model without them."""
    try:
        params = json.loads(session.get_modelmeta().custom_metadata_map["train_params"])
    except (KeyError, ValueError):
        return None
    model = params.get("model") if isinstance(params, dict) else None
    return model if isinstance(model, str) else None


def classifier_metadata(provenance: Provenance, role: str) -> dict[str, str]:
    """The `metadata_props` of an exported digit classifier: what it is, its input and output
    in words, the labels it learnt from (`labelled_per_class`, `label_seed`) and where its
    weights come from."""
    params = provenance.train_params
    return {
        "model": CLASSIFIER_KIND,
        "role": role,
        "input": f"{IMAGES_OUTPUT}: float32 (N, 28, 28, 1), NHWC, one grey channel, N dynamic",
        "input_range": "[-1, 1]; from uint8 pixels p: p / 127.5 - 1",
        "output": f"{PROBABILITIES_OUTPUT}: float32 (N, 10), the digits 0-9, rows sum to 1",
        "labelled_per_class": str(params["labelled_per_class"]),
        "label_seed": str(params["label_seed"]),
        **provenance.metadata(),
    }


def encoder_metadata(provenance: Provenance, role: str) -> dict[str, str]:
    """The `metadata_props` of an exported BiGAN encoder: what it is, its input and outputs
    in words, the noise its codes live in (the generator's) and where its weights come
    from."""
    noise_dim = provenance.train_params["noise_dim"]
    return {
        "model": ENCODER_KIND,
        "role": role,
        "input": f"{IMAGES_OUTPUT}: float32 (N, 28, 28, 1), NHWC, one grey channel, N dynamic",
        "input_range": "[-1, 1]; from uint8 pixels p: p / 127.5 - 1",
        "output": (
            f"{CODES_OUTPUT}: float32 (N, {noise_dim}), the generator's noise that draws each "
            f"image (feed it to the generator's {NOISE_INPUT}); {FEATURES_OUTPUT}: float32 "
            f"(N, {ENCODER_FEATURES}), the encoder's last hidden layer"
        ),
        "noise_dim": str(noise_dim),
        "noise_distribution": TRAINING_NOISE.distribution,
        "noise_low": str(TRAINING_NOISE.low),
        "noise_high": str(TRAINING_NOISE.high),
        **provenance.metadata(),
    }


@dataclass(frozen=True)
class GeneratorContract:
    """What a caller must know to run a generator: the noise, a conditional model's classes
    (empty for the others), an InfoGAN model's codes (0 for the others) and what they were
    measured to control (JSON text, empty when not measured)."""

    noise_dim: int
    noise: Noise = TRAINING_NOISE
    classes: tuple[int, ...] = ()
    categorical_codes: int = 0
    continuous_codes: int = 0
    code_meanings: str = ""

    @property
    def conditional(self) -> bool:
        return bool(self.classes)

    @property
    def infogan(self) -> bool:
        return self.categorical_codes > 0

    @property
    def latent_dim(self) -> int:
        """The noise width the Keras generator takes: InfoGAN's continuous codes are the last
        columns of its noise (see pipeline.gan.networks)."""
        return self.noise_dim + self.continuous_codes

    @property
    def code_names(self) -> tuple[str, ...]:
        """`category`, then `c1` ... for the continuous codes: how callers name them."""
        if not self.infogan:
            return ()
        return ("category", *(f"c{i + 1}" for i in range(self.continuous_codes)))

    @property
    def input_names(self) -> list[str]:
        if self.infogan:
            continuous = [CONTINUOUS_CODE_INPUT] if self.continuous_codes else []
            return [NOISE_INPUT, CATEGORICAL_CODE_INPUT, *continuous]
        return [NOISE_INPUT, LABEL_INPUT] if self.conditional else [NOISE_INPUT]

    def metadata(
        self, provenance: Provenance, *, opset: int, export_code_revision: str
    ) -> dict[str, str]:
        """The ONNX `metadata_props` of a model with this contract, in `METADATA`'s order."""
        inputs = f"{NOISE_INPUT}: float32 (N, {self.noise_dim}), N dynamic"
        conditioning = {}
        if self.conditional:
            inputs += (
                f"; {LABEL_INPUT}: int64 (N,), the class of each image, one of `classes`; "
                f"optional {LABEL_MIX_INPUT}: float32 (rows, {len(self.classes)}), default the "
                f"identity: image i is drawn with the class embeddings weighted by row "
                f"{LABEL_INPUT}[i] (feed rows such as (1 - t) on one class and t on another, "
                "and labels indexing them, to morph)"
            )
            conditioning = {"classes": json.dumps(list(self.classes))}
        if self.infogan:
            inputs += (
                f"; {CATEGORICAL_CODE_INPUT}: int64 (N,), the categorical code, 0 to "
                f"{self.categorical_codes - 1}"
            )
            conditioning = {
                "categorical_codes": str(self.categorical_codes),
                "continuous_codes": str(self.continuous_codes),
            }
            if self.continuous_codes:
                inputs += (
                    f"; {CONTINUOUS_CODE_INPUT}: float32 (N, {self.continuous_codes}), the "
                    f"continuous codes, each in [{CONTINUOUS_CODE_RANGE[0]:g}, "
                    f"{CONTINUOUS_CODE_RANGE[1]:g}]"
                )
                conditioning["continuous_code_range"] = json.dumps(list(CONTINUOUS_CODE_RANGE))
            if self.code_meanings:
                conditioning["code_meanings"] = self.code_meanings
        metadata = {
            "model": MODEL_KIND,
            "noise_dim": str(self.noise_dim),
            "noise_distribution": self.noise.distribution,
            "noise_low": str(self.noise.low),
            "noise_high": str(self.noise.high),
            "input": inputs,
            **conditioning,
            "output": f"{IMAGES_OUTPUT}: float32 (N, 28, 28, 1), NHWC, one grey channel",
            "output_range": OUTPUT_RANGE_NOTE,
            **provenance.metadata(),
            "export_code_revision": export_code_revision,
            "opset": str(opset),
            "graph": GRAPH_NOTE,
        }
        return {key: metadata[key] for key in METADATA if key in metadata}

    def as_json(self) -> dict[str, Any]:
        """This contract for an app over HTTP (`dcgan serve`'s /api/contract): what the model
        is, its noise, classes and codes, and its images."""
        low, high = CONTINUOUS_CODE_RANGE
        codes = {
            "category": list(range(self.categorical_codes)),
            "continuous": {name: [low, high] for name in self.code_names[1:]},
            "meanings": json.loads(self.code_meanings) if self.code_meanings else None,
        }
        return {
            "model": MODEL_KIND,
            "noise_dim": self.noise_dim,
            "noise": self.noise.as_dict(),
            "classes": list(self.classes),
            "codes": codes if self.infogan else None,
            "image_shape": list(IMAGE_SHAPE),
            "output_range": list(OUTPUT_RANGE),
        }

    def description(self, provenance: Provenance, precision: str) -> dict[str, Any]:
        """What the training stage writes beside the Keras generator (`generator.json`) for
        the export stage: this contract, the provenance and the training precision."""
        return {
            "noise_dim": self.noise_dim,
            "noise": self.noise.as_dict(),
            "classes": list(self.classes) or None,
            "categorical_codes": self.categorical_codes,
            "continuous_codes": self.continuous_codes,
            "code_meanings": self.code_meanings,
            "output": {"shape": ["N", *IMAGE_SHAPE], "range": list(OUTPUT_RANGE), "layout": "NHWC"},
            "provenance": dataclasses.asdict(provenance),
            "precision": precision,
        }

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> tuple[GeneratorContract, Provenance]:
        """The contract and provenance of a `description`; `KeyError`/`TypeError`/`ValueError`
        when it is not one."""
        contract = cls(
            int(description["noise_dim"]),
            Noise(**description["noise"]),
            tuple(int(c) for c in description.get("classes") or ()),
            int(description.get("categorical_codes", 0)),
            int(description.get("continuous_codes", 0)),
            str(description.get("code_meanings", "")),
        )
        return contract, Provenance(**description["provenance"])


def read(session, source: str | Path) -> GeneratorContract:
    """The contract of the model an onnxruntime `InferenceSession` runs, checked: its inputs,
    output and metadata. A model without our metadata still works when its shapes are fixed
    (uniform noise in [-1, 1] is assumed). Raises `ContractError` naming `source`."""
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    if names[1:2] == [CATEGORICAL_CODE_INPUT]:
        return _read_infogan(session, metadata, source)
    if len(inputs) not in (1, 2):
        raise ContractError(
            f"{source}: not a generator: expected the inputs {NOISE_INPUT} (and {LABEL_INPUT}), "
            f"got {', '.join(names)}"
        )
    noise_dim = _noise_dim(inputs[0], metadata, source)
    classes = _classes(inputs[1], metadata, source) if len(inputs) == 2 else ()
    _check_output(session.get_outputs()[0], source)
    return GeneratorContract(noise_dim, _noise(metadata, source), classes)


def _read_infogan(session, metadata: dict[str, str], source) -> GeneratorContract:
    """An InfoGAN generator's contract: the noise, then its code inputs, their counts from the
    metadata (an int64 input does not say how many values it takes)."""
    inputs = session.get_inputs()
    expected = [NOISE_INPUT, CATEGORICAL_CODE_INPUT, CONTINUOUS_CODE_INPUT][: len(inputs)]
    if [i.name for i in inputs] != expected:  # more than three inputs never match
        raise ContractError(
            f"{source}: not a generator: expected the inputs {', '.join(expected)}, got "
            f"{', '.join(i.name for i in inputs)}"
        )
    noise_dim = _noise_dim(inputs[0], metadata, source)
    code = inputs[1]
    if code.type != "tensor(int64)" or len(code.shape) != 1:
        raise ContractError(
            f"{source}: input {code.name!r} should be int64 (N,), got {code.type} of shape "
            f"{_shape_text(code.shape)}"
        )
    categorical = metadata.get("categorical_codes", "")
    if not categorical.isdigit() or int(categorical) < 2:
        raise ContractError(f"{source}: takes a categorical code but its metadata has no count")
    continuous = 0
    if len(inputs) == 3:
        shape = inputs[2].shape
        if inputs[2].type != "tensor(float)" or len(shape) != 2 or not isinstance(shape[1], int):
            raise ContractError(
                f"{source}: input {CONTINUOUS_CODE_INPUT!r} should be float32 (N, C), got "
                f"{inputs[2].type} of shape {_shape_text(shape)}"
            )
        continuous = shape[1]
    _check_output(session.get_outputs()[0], source)
    return GeneratorContract(
        noise_dim,
        _noise(metadata, source),
        categorical_codes=int(categorical),
        continuous_codes=continuous,
        code_meanings=metadata.get("code_meanings", ""),
    )


def _noise_dim(noise, metadata: dict[str, str], source) -> int:
    if noise.type != "tensor(float)" or len(noise.shape) != 2:
        raise ContractError(
            f"{source}: not a generator: input {noise.name!r} should be float32 "
            f"(N, noise_dim), got {noise.type} of shape {_shape_text(noise.shape)}"
        )
    dim = noise.shape[1]
    if isinstance(dim, int):
        return dim
    declared = metadata.get("noise_dim")
    if declared and declared.isdigit():
        if not 0 < int(declared) <= MAX_NOISE_DIM:
            raise ContractError(
                f"{source}: the metadata's noise dimension {declared[:20]} is outside "
                f"1-{MAX_NOISE_DIM}"
            )
        return int(declared)
    raise ContractError(f"{source}: the noise dimension is neither fixed nor in the metadata")


def _classes(label, metadata: dict[str, str], source) -> tuple[int, ...]:
    if label.type != "tensor(int64)" or len(label.shape) != 1:
        raise ContractError(
            f"{source}: not a generator: input {label.name!r} should be int64 (N,), got "
            f"{label.type} of shape {_shape_text(label.shape)}"
        )
    try:
        listed = json.loads(metadata["classes"])
    except (KeyError, ValueError):
        listed = None
    if not isinstance(listed, list) or not listed:
        raise ContractError(f"{source}: takes a label but its metadata lists no classes")
    classes = tuple(_whole(value) for value in listed)  # numbers, or numerals as text
    if not all(value is not None and 0 <= value < MAX_CLASSES for value in classes):
        raise ContractError(
            f"{source}: the metadata's classes must be whole numbers from 0 to "
            f"{MAX_CLASSES - 1}, got {metadata['classes'][:60]}"
        )
    return classes


def _whole(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    return None


def _check_output(image, source) -> None:
    if len(image.shape) != 4 or any(
        isinstance(size, int) and size != expected
        for size, expected in zip(image.shape[1:], IMAGE_SHAPE, strict=True)
    ):
        raise ContractError(
            f"{source}: not a generator: output {image.name!r} should be (N, 28, 28, 1), "
            f"got {_shape_text(image.shape)}"
        )


def _noise(metadata: dict[str, str], source) -> Noise:
    distribution = metadata.get("noise_distribution", TRAINING_NOISE.distribution)
    if distribution not in NOISE_DISTRIBUTIONS:
        raise ContractError(f"{source}: unknown noise distribution {distribution!r}")
    try:
        low = float(metadata.get("noise_low", TRAINING_NOISE.low))
        high = float(metadata.get("noise_high", TRAINING_NOISE.high))
    except ValueError as error:
        raise ContractError(f"{source}: unreadable noise range in the metadata") from error
    return Noise(distribution, low, high)


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(size) for size in shape) + ")"
