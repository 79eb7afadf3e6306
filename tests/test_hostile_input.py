"""Configuration and model files made to mislead: one `Error:` line before anything is
allocated or trained (docs/RELIABILITY.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import invoke
from pipeline.config import load_train_config
from pipeline.errors import ConfigError, ModelOutputError, SamplerError
from pipeline.export.checks import with_digest
from pipeline.runtime.contract import MAX_CLASSES, MAX_NOISE_DIM
from pipeline.runtime.sampler import Sampler


def claiming_noise(path, noise_dim: str):
    """A model whose noise width is dynamic and whose metadata claims `noise_dim`."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["z"], ["images"])],
        "claims",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", "D"])],
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 28, 28, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(model, {"model": "dcgan-generator", "noise_dim": noise_dim})
    onnx.save(model, str(path))
    return path


def test_metadata_claiming_an_absurd_noise_width_is_refused(tmp_path):
    path = claiming_noise(tmp_path / "claims.onnx", str(10**12))
    with pytest.raises(SamplerError) as caught:
        Sampler(path)
    assert str(caught.value) == (
        f"{path}: the metadata's noise dimension 1000000000000 is outside 1-{MAX_NOISE_DIM}"
    )


def listing_classes(source: Path, path: Path, classes: str) -> Path:
    """The conditional generator at `source` with its metadata's classes replaced."""
    model = onnx.load(str(source))
    for prop in model.metadata_props:
        if prop.key == "classes":
            prop.value = classes
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("classes", ["[99999999999999999999]", "[-1, 3]", "[2.5]", "[1024]"])
def test_metadata_listing_classes_out_of_bounds_is_refused(conditional_model, tmp_path, classes):
    source = conditional_model / "models/generator.onnx"
    path = listing_classes(source, tmp_path / "classes.onnx", classes)
    with pytest.raises(SamplerError) as caught:
        Sampler(path)
    assert str(caught.value) == (
        f"{path}: the metadata's classes must be whole numbers from 0 to {MAX_CLASSES - 1}, "
        f"got {classes}"
    )


def bad_reshape(source, path):
    """The generator at `source` with its last Reshape asking for 3 images whatever the batch
    (its digest made anew): it loads, and fails while it runs."""
    model = onnx.load(str(source))
    last = next(node for node in model.graph.node if model.graph.output[0].name in node.output)
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name == last.input[1]:
            shape = numpy_helper.from_array(np.array([3, -1, 28, 1], np.int64), tensor.name)
            model.graph.initializer[index].CopyFrom(shape)
    path.write_bytes(with_digest(model))
    return path


def test_onnxruntime_failing_while_it_runs_is_one_line(exported_model, tmp_path):
    path = bad_reshape(exported_model / "models/generator.onnx", tmp_path / "reshape.onnx")
    with pytest.raises(ModelOutputError, match="onnxruntime failed while running the model"):
        Sampler(path).sample(4)
    out = tmp_path / "x.png"
    result = invoke("sample", "--model", str(path), "-n", "4", "--out", str(out))
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {path}: onnxruntime failed while running the model (")
    assert "Reshape" in line and not out.exists()


def test_params_that_are_not_utf8_are_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(b"train:\n  seed: 0\n  model: \xff\xfe\n")
    with pytest.raises(ConfigError) as caught:
        load_train_config(path)
    assert str(caught.value) == f"{path}: not UTF-8 text (byte 0xff at offset 26)"


def test_a_huge_value_is_quoted_short(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  batch_size: '" + "9" * 1_000_000 + "'\n")
    with pytest.raises(ConfigError) as caught:
        load_train_config(path)
    message = str(caught.value)
    assert message.startswith(
        f"{path}: train.batch_size: expected auto or a positive integer, got '999"
    )
    words = ": train.batch_size: expected auto or a positive integer, got "
    assert message.endswith("...") and len(message) <= len(str(path)) + len(words) + 60
