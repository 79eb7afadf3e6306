"""The generator contract: one module spells it, the exported model meets it, the documents
an embedder reads agree with it."""

import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import REPO
from pipeline.runtime import contract, contract_files
from pipeline.runtime.noise import Noise

NAMES = (
    contract.NOISE_INPUT,
    contract.LABEL_INPUT,
    contract.LABEL_MIX_INPUT,
    contract.IMAGES_OUTPUT,
)
SCHEMA_PATH = REPO / "docs/generator-metadata.schema.json"


def metadata_of(path: Path) -> dict[str, str]:
    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


# `model` is also a params.yaml key (`train.model`), which the ledger reads from DVC's params.
PARAMS_KEYS = {
    "model": {
        "pipeline/config.py",
        "pipeline/reporting/ledger.py",
        "pipeline/reporting/report.py",
        "pipeline/reporting/preset_runs.py",
        "pipeline/families/__init__.py",
    },
    # The train keys of the same names, which the InfoGAN family declares as its own.
    "categorical_codes": {"pipeline/families/infogan/__init__.py"},
    "continuous_codes": {"pipeline/families/infogan/__init__.py"},
}


def test_only_the_contract_module_spells_a_name_or_a_metadata_key():
    """The contract module, and the schema it writes for other languages (which spells the
    keys whose values it constrains)."""
    for word in (*contract.METADATA, *NAMES):
        spelled = {
            str(path.relative_to(REPO))
            for path in (REPO / "pipeline").rglob("*.py")
            if re.search(rf"[\"']{re.escape(word)}[\"']", path.read_text())
        }
        spelled.discard("pipeline/runtime/contract_files.py")
        assert spelled == {"pipeline/runtime/contract.py", *PARAMS_KEYS.get(word, ())}, word


def test_the_committed_schema_is_the_generated_one():
    assert json.loads(SCHEMA_PATH.read_text()) == contract_files.metadata_schema()
    jsonschema.Draft202012Validator.check_schema(contract_files.metadata_schema())


def test_the_spec_names_every_key_and_input():
    spec = (REPO / "docs/CONTRACT.md").read_text()
    for word in (*contract.METADATA, *NAMES):
        assert f"`{word}`" in spec, word


@pytest.mark.parametrize("name", ["generator.onnx", "generator-int8.onnx"])
def test_an_exported_model_meets_the_contract(exported_model, name):
    path = exported_model / "models" / name
    metadata = metadata_of(path)
    jsonschema.validate(metadata, json.loads(SCHEMA_PATH.read_text()))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    read = contract.read(session, path)
    assert read == contract.GeneratorContract(8)  # the tiny model's noise, uniform [-1, 1]
    assert [i.name for i in session.get_inputs()] == read.input_names
    noise = read.noise.draw(np.random.default_rng(0), 5, read.noise_dim)
    (images,) = session.run([contract.IMAGES_OUTPUT], {contract.NOISE_INPUT: noise})
    assert images.shape == (5, *contract.IMAGE_SHAPE)
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_a_conditional_model_declares_its_classes(conditional_model):
    path = conditional_model / "models/generator.onnx"
    metadata = metadata_of(path)
    jsonschema.validate(metadata, json.loads(SCHEMA_PATH.read_text()))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    read = contract.read(session, path)
    assert read.classes == tuple(range(10))
    assert read.input_names == [contract.NOISE_INPUT, contract.LABEL_INPUT]


def test_the_schema_rejects_what_a_consumer_cannot_read(exported_model):
    metadata = metadata_of(exported_model / "models/generator.onnx")
    schema = json.loads(SCHEMA_PATH.read_text())
    for key, bad in [("noise_dim", "eight"), ("noise_distribution", "beta"), ("model", "vae")]:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**metadata, key: bad}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in metadata.items() if k != "noise_dim"}, schema)


def test_description_round_trips():
    provenance = contract.Provenance("mnist", "0" * 64, {"seed": 0}, 12, "abc")
    made = contract.GeneratorContract(96, Noise("normal", 0.0, 0.0), (3, 5))
    described = json.loads(json.dumps(made.description(provenance, "float32")))
    assert contract.GeneratorContract.from_description(described) == (made, provenance)


def test_noise_is_drawn_as_declared():
    rng = np.random.default_rng(0)
    uniform = Noise("uniform", -0.5, 0.25).draw(rng, 2000, 3)
    assert uniform.dtype == np.float32 and uniform.shape == (2000, 3)
    assert uniform.min() >= -0.5 and uniform.max() < 0.25
    normal = Noise("normal").draw(rng, 20000, 2)
    assert abs(float(normal.std()) - 1.0) < 0.02


def test_the_committed_manifest_is_the_generated_one():
    committed = json.loads((REPO / "docs" / contract_files.MANIFEST_FILE).read_text())
    assert committed == contract_files.manifest()
    assert committed["inputs"]["noise"] == contract.NOISE_INPUT
