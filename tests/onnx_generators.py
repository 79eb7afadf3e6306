"""Tiny generators written directly in ONNX (no TensorFlow), with the contract's inputs,
output and metadata: fast models for the contract, the sampler's checks and quantization.

Each is `tanh(z W + b)` reshaped to (N, 28, 28, 1); a conditional model adds a class table's
row (`Gather` of `label_mix`, then `MatMul`, as the exported ones), an InfoGAN model a row of a
code table and the continuous codes times their own weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.runtime import contract
from pipeline.runtime.contract import GeneratorContract, Provenance

PIXELS = 28 * 28
PROVENANCE = Provenance("mnist", "0" * 64, {"noise_dim": 4}, 7, "abc123")


def _save(path: Path, graph, metadata: dict[str, str], *, check: bool = True) -> Path:
    """Write `graph` (opset 17) with `metadata` to `path`; `check` runs ONNX's checker, which
    a deliberately broken graph would fail."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _label_mix(classes: tuple[int, ...]) -> onnx.TensorProto:
    """The identity `label_mix` of a conditional model: row c is class c's one-hot weights."""
    table = np.zeros((max(classes) + 1, len(classes)), np.float32)
    table[list(classes), range(len(classes))] = 1
    return numpy_helper.from_array(table, contract.LABEL_MIX_INPUT)


def _weights(name: str, shape, seed: int) -> onnx.TensorProto:
    values = np.random.default_rng(seed).normal(0, 0.5, shape).astype(np.float32)
    return numpy_helper.from_array(values, name)


def generator(
    path: Path,
    terms: GeneratorContract,
    *,
    metadata: dict[str, str] | None = None,
    dynamic_noise: bool = False,
    mixable: bool = True,
    bias: float | None = None,
) -> Path:
    """Write a generator of `terms` to `path`, with `terms`' metadata unless `metadata` is
    given; `dynamic_noise` leaves the noise width unnamed in the graph (read from metadata);
    `mixable` lets a caller override a conditional model's `label_mix`; `bias` sets every
    bias (NaN makes a damaged model)."""
    width = "noise_dim" if dynamic_noise else terms.noise_dim
    inputs = [helper.make_tensor_value_info(contract.NOISE_INPUT, TensorProto.FLOAT, ["N", width])]
    initializers = [_weights("W", (terms.noise_dim, PIXELS), 1), _weights("b", (PIXELS,), 2)]
    if bias is not None:
        initializers[1] = numpy_helper.from_array(np.full(PIXELS, bias, np.float32), "b")
    nodes = [helper.make_node("MatMul", [contract.NOISE_INPUT, "W"], ["zw"])]
    summed = "zw"
    if terms.conditional:
        classes = len(terms.classes)
        inputs.append(helper.make_tensor_value_info(contract.LABEL_INPUT, TensorProto.INT64, ["N"]))
        initializers += [_label_mix(terms.classes), _weights("class_table", (classes, PIXELS), 3)]
        if mixable:
            inputs.append(
                helper.make_tensor_value_info(
                    contract.LABEL_MIX_INPUT, TensorProto.FLOAT, ["rows", classes]
                )
            )
        nodes += [
            helper.make_node("Gather", [contract.LABEL_MIX_INPUT, contract.LABEL_INPUT], ["w"]),
            helper.make_node("MatMul", ["w", "class_table"], ["cw"]),
            helper.make_node("Add", ["zw", "cw"], ["zc"]),
        ]
        summed = "zc"
    if terms.infogan:
        inputs.append(
            helper.make_tensor_value_info(contract.CATEGORICAL_CODE_INPUT, TensorProto.INT64, ["N"])
        )
        initializers.append(_weights("code_table", (terms.categorical_codes, PIXELS), 4))
        nodes += [
            helper.make_node("Gather", ["code_table", contract.CATEGORICAL_CODE_INPUT], ["kw"]),
            helper.make_node("Add", ["zw", "kw"], ["zk"]),
        ]
        summed = "zk"
        if terms.continuous_codes:
            inputs.append(
                helper.make_tensor_value_info(
                    contract.CONTINUOUS_CODE_INPUT,
                    TensorProto.FLOAT,
                    ["N", terms.continuous_codes],
                )
            )
            initializers.append(_weights("C", (terms.continuous_codes, PIXELS), 5))
            nodes += [
                helper.make_node("MatMul", [contract.CONTINUOUS_CODE_INPUT, "C"], ["ccw"]),
                helper.make_node("Add", ["zk", "ccw"], ["zkc"]),
            ]
            summed = "zkc"
    initializers.append(numpy_helper.from_array(np.array([-1, 28, 28, 1], np.int64), "shape"))
    nodes += [
        helper.make_node("Add", [summed, "b"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["flat"]),
        helper.make_node("Reshape", ["flat", "shape"], [contract.IMAGES_OUTPUT]),
    ]
    output = helper.make_tensor_value_info(
        contract.IMAGES_OUTPUT, TensorProto.FLOAT, ["N", 28, 28, 1]
    )
    graph = helper.make_graph(nodes, "generator", inputs, [output], initializers)
    if metadata is None:
        metadata = terms.metadata(PROVENANCE, opset=17, export_code_revision="def456")
    return _save(path, graph, metadata)


def graph_model(path: Path, inputs, outputs, nodes, metadata=None) -> Path:
    """Any graph of `nodes` with the given value infos and metadata."""
    graph = helper.make_graph(nodes, "graph", inputs, outputs)
    return _save(path, graph, metadata or {}, check=False)


def layered_generator(path: Path, classes: tuple[int, ...]) -> Path:
    """A conditional generator shaped like the exported ones for quantization: a dense layer
    on the noise plus a class-table row (`Gather` of `label_mix`, `MatMul`), a hidden 3x3
    convolution, and an output convolution whose 16 channels `DepthToSpace` turns into the
    28x28 image (as the packed last deconvolution's phases), then tanh, in NHWC."""
    terms = GeneratorContract(4, classes=classes)
    initializers = [
        _weights("dense", (4, 392), 1),
        _weights("dense_bias", (392,), 2),
        _weights("class_table", (len(classes), 392), 3),
        _label_mix(classes),
        numpy_helper.from_array(np.array([-1, 8, 7, 7], np.int64), "grid"),
        _weights("hidden", (8, 8, 3, 3), 4),
        _weights("hidden_bias", (8,), 5),
        _weights("last", (16, 8, 1, 1), 6),
    ]
    nodes = [
        helper.make_node("MatMul", [contract.NOISE_INPUT, "dense"], ["zw"], name="dense"),
        helper.make_node("Gather", [contract.LABEL_MIX_INPUT, contract.LABEL_INPUT], ["w"]),
        helper.make_node("MatMul", ["w", "class_table"], ["cw"], name="class_product"),
        helper.make_node("Add", ["zw", "cw"], ["zc"]),
        helper.make_node("Add", ["zc", "dense_bias"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["act"]),
        helper.make_node("Reshape", ["act", "grid"], ["grid_in"]),
        helper.make_node(
            "Conv", ["grid_in", "hidden", "hidden_bias"], ["h"], name="hidden_conv", pads=[1] * 4
        ),
        helper.make_node("Relu", ["h"], ["h_act"]),
        helper.make_node("Conv", ["h_act", "last"], ["phases"], name="output_conv"),
        helper.make_node("DepthToSpace", ["phases"], ["nchw"], blocksize=4),
        helper.make_node("Tanh", ["nchw"], ["squashed"]),
        helper.make_node("Transpose", ["squashed"], [contract.IMAGES_OUTPUT], perm=[0, 2, 3, 1]),
    ]
    inputs = [
        helper.make_tensor_value_info(contract.NOISE_INPUT, TensorProto.FLOAT, ["N", 4]),
        helper.make_tensor_value_info(contract.LABEL_INPUT, TensorProto.INT64, ["N"]),
        helper.make_tensor_value_info(
            contract.LABEL_MIX_INPUT, TensorProto.FLOAT, ["rows", len(classes)]
        ),
    ]
    output = helper.make_tensor_value_info(
        contract.IMAGES_OUTPUT, TensorProto.FLOAT, ["N", 28, 28, 1]
    )
    graph = helper.make_graph(nodes, "generator", inputs, [output], initializers)
    return _save(path, graph, terms.metadata(PROVENANCE, opset=17, export_code_revision="r"))
