"""The contract as files for other languages: a JSON Schema of the generator's metadata and
a manifest of its fixed part (names, shapes, ranges, the seeded noise).

The web page and the Node sampler read `docs/generator-contract.json` instead of spelling
names themselves; `python -m pipeline.runtime.contract_files docs` writes both files from
`pipeline.runtime.contract` (a test keeps the committed copies equal to it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pipeline.runtime.contract import (
    CATEGORICAL_CODE_INPUT,
    CLASSES,
    CLASSIFIER_KIND,
    CODES_OUTPUT,
    CONTINUOUS_CODE_INPUT,
    CONTINUOUS_CODE_RANGE,
    ENCODER_FEATURES,
    ENCODER_KIND,
    FEATURES_OUTPUT,
    IMAGE_SHAPE,
    IMAGES_OUTPUT,
    INT8_FALLBACK,
    LABEL_INPUT,
    LABEL_MIX_INPUT,
    MAX_CLASSES,
    MAX_NOISE_DIM,
    METADATA,
    MODEL_KIND,
    NOISE_INPUT,
    OUTPUT_RANGE,
    PROBABILITIES_OUTPUT,
    REQUIRED_METADATA,
    WEIGHTS_DIGEST,
)
from pipeline.runtime.noise import NOISE_DISTRIBUTIONS, SEED_LIMIT, SEEDED_NOISE, TRAINING_NOISE


def metadata_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the metadata as a JSON object of strings."""
    decimal = {"type": "string", "pattern": "^[0-9]+$"}
    number = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"}
    special = {
        "model": {"const": MODEL_KIND},
        "noise_dim": decimal,
        "noise_distribution": {"enum": list(NOISE_DISTRIBUTIONS)},
        "noise_low": number,
        "noise_high": number,
        "classes": {"type": "string", "pattern": r"^\[[0-9]+(, [0-9]+)*\]$"},
        "categorical_codes": decimal,
        "continuous_codes": decimal,
        "train_steps": decimal,
        "opset": decimal,
        "train_images_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        WEIGHTS_DIGEST: {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "DCGAN generator ONNX metadata_props",
        "description": (
            f"Inputs: {NOISE_INPUT} float32 (N, noise_dim); a conditional model also "
            f"{LABEL_INPUT} int64 (N,) and optional {LABEL_MIX_INPUT} float32 (rows, classes); "
            f"an InfoGAN model {CATEGORICAL_CODE_INPUT} int64 (N,) and {CONTINUOUS_CODE_INPUT} "
            "float32 (N, C). "
            f"Output: {IMAGES_OUTPUT} float32 (N, 28, 28, 1) in [-1, 1]. See docs/CONTRACT.md."
        ),
        "type": "object",
        "required": list(REQUIRED_METADATA),
        "properties": {
            key: {"type": "string", **special.get(key, {}), "description": text}
            for key, text in METADATA.items()
        },
        "additionalProperties": {"type": "string"},
    }


def manifest() -> dict[str, Any]:
    """The contract's fixed part as JSON for other languages: the names, shapes and ranges,
    the noise a model without metadata takes, the seeded noise's generator, and the names of
    the BiGAN encoder and the semi-supervised classifier. What varies by model (noise size and
    range, classes) is in each model's metadata."""
    return {
        "model": MODEL_KIND,
        "inputs": {
            "noise": NOISE_INPUT,
            "label": LABEL_INPUT,
            "label_mix": LABEL_MIX_INPUT,
            "code_categorical": CATEGORICAL_CODE_INPUT,
            "code_continuous": CONTINUOUS_CODE_INPUT,
        },
        "continuous_code_range": list(CONTINUOUS_CODE_RANGE),
        "max_noise_dim": MAX_NOISE_DIM,
        "max_classes": MAX_CLASSES,
        "output": IMAGES_OUTPUT,
        "image_shape": list(IMAGE_SHAPE),
        "output_range": list(OUTPUT_RANGE),
        "required_metadata": list(REQUIRED_METADATA),
        "noise_distributions": list(NOISE_DISTRIBUTIONS),
        "default_noise": TRAINING_NOISE.as_dict(),
        "seeded_noise": SEEDED_NOISE,
        "seed_limit": str(SEED_LIMIT),
        "int8_fallback": INT8_FALLBACK,
        # every exported model's digest of its graph field (pipeline/runtime/model_bytes.py)
        "weights_digest": WEIGHTS_DIGEST,
        # The BiGAN model's encoder (models/family/encoder.onnx): the generator's images in,
        # the noise that redraws them out; its metadata names its noise as a generator's does.
        "encoder": {
            "model": ENCODER_KIND,
            "input": IMAGES_OUTPUT,
            "input_range": list(OUTPUT_RANGE),
            "outputs": {"codes": CODES_OUTPUT, "features": FEATURES_OUTPUT},
            "features": ENCODER_FEATURES,
        },
        # The semi-supervised model's classifier (models/family/classifier.onnx): the
        # generator's images in, each digit's probability out.
        "classifier": {
            "model": CLASSIFIER_KIND,
            "input": IMAGES_OUTPUT,
            "input_range": list(OUTPUT_RANGE),
            "output": PROBABILITIES_OUTPUT,
            "classes": CLASSES,
        },
    }


SCHEMA_FILE = "generator-metadata.schema.json"
MANIFEST_FILE = "generator-contract.json"


def main(argv: list[str]) -> None:
    """Write `metadata_schema()` and `manifest()` into the folder given (docs/ holds the
    committed copies)."""
    folder = Path(argv[0])
    (folder / SCHEMA_FILE).write_text(json.dumps(metadata_schema(), indent=2) + "\n")
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest(), indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
