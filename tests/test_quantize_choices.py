"""The int8 variant's choices on tiny ONNX graphs made here: which products stay float32 (a
conditional model's class table), which convolutions make the images (kept float32), and the
fallback to the float32 model, with its reason in the metadata, when int8 strays too far."""

import logging
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_generators import graph_model, layered_generator

from pipeline.export import quantize
from pipeline.runtime.contract import INT8_FALLBACK, WEIGHTS_DIGEST
from pipeline.runtime.model_bytes import weights_digest
from pipeline.runtime.sampler import Sampler


def tensor(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def graph(nodes, outputs=("images",)):
    return helper.make_graph(
        nodes, "g", [tensor("z", ["N", 4])], [tensor(name, None) for name in outputs]
    )


def test_only_products_fed_by_a_gather_are_class_tables():
    nodes = [
        helper.make_node("Gather", ["table", "label"], ["row"], name="gather"),
        helper.make_node("MatMul", ["row", "weights"], ["class_part"], name="class_product"),
        helper.make_node("MatMul", ["z", "weights"], ["noise_part"], name="noise_product"),
        helper.make_node("Gemm", ["row", "weights"], ["other"], name="gemm"),
        helper.make_node("MatMul", ["weights", "row"], ["swapped"], name="row_second"),
    ]
    assert quantize._class_table_products(graph(nodes)) == ["class_product"]


def test_the_output_layer_is_every_convolution_reached_back_from_the_images():
    """z -> conv_a -> relu -> (conv_b, conv_c) -> concat (with a weight, which no node
    makes) -> tanh -> images: the walk stops at conv_b and conv_c and never reaches conv_a;
    a second output adds conv_d."""
    nodes = [
        helper.make_node("Conv", ["z", "w"], ["a"], name="conv_a"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w"], ["b"], name="conv_c"),
        helper.make_node("Conv", ["r", "w"], ["c"], name="conv_b"),
        helper.make_node("Concat", ["b", "c", "b", "w"], ["joined"], name="concat", axis=1),
        helper.make_node("Tanh", ["joined"], ["images"], name="tanh"),
        helper.make_node("Conv", ["r", "w"], ["d"], name="conv_d"),
        helper.make_node("Identity", ["d"], ["second"], name="identity"),
    ]
    assert quantize._output_layer(graph(nodes)) == ["conv_b", "conv_c"]
    assert quantize._output_layer(graph(nodes, ("images", "second"))) == [
        "conv_b",
        "conv_c",
        "conv_d",
    ]


def test_an_output_that_is_an_input_has_no_layer():
    assert quantize._output_layer(graph([], ("z",))) == []


def test_metadata_and_the_weights_digest_are_added_to_what_the_file_has(tmp_path):
    path = graph_model(
        tmp_path / "g.onnx",
        [tensor("z", ["N", 4])],
        [tensor("y", ["N", 4])],
        [helper.make_node("Identity", ["z"], ["y"])],
        {"model": "dcgan-generator"},
    )
    data = quantize._with_metadata(path, "why", "because")
    model = onnx.load_from_string(data)
    assert {p.key: p.value for p in model.metadata_props} == {
        "model": "dcgan-generator",
        "why": "because",
        WEIGHTS_DIGEST: weights_digest(data),
    }
    assert [n.op_type for n in model.graph.node] == ["Identity"]


@pytest.fixture(autouse=True)
def own_folder(tmp_path, monkeypatch):
    """A write to a path relative to the working folder lands in this test's own."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    return layered_generator(tmp_path_factory.mktemp("quantize") / "generator.onnx", (0, 1, 2))


def run(model, out, tolerance, calibration=64):
    return quantize.quantize(
        model, out, calibration_samples=calibration, check_samples=16, tolerance=tolerance
    )


def initializer(model, name):
    (found,) = [t for t in model.graph.initializer if t.name == name]
    return numpy_helper.to_array(found)


def producers(model):
    return {output: node for node in model.graph.node for output in node.output}


def test_the_int8_model_quantizes_the_hidden_layers_and_keeps_the_rest(conditional, tmp_path):
    out = tmp_path / "int8.onnx"
    metrics = run(conditional, out, tolerance=1.0)
    assert metrics["int8_quantized"] is True
    assert metrics["int8_operators"] == ["Conv", "MatMul"]
    assert metrics["int8_bytes"] == out.stat().st_size
    assert 0 < metrics["int8_mean_abs_diff"] <= metrics["int8_max_abs_diff"] <= 2
    model = onnx.load(str(out))
    nodes = {node.name: node for node in model.graph.node}
    made_by = producers(model)
    # The hidden convolution: static QDQ, uint8 activations, int8 weights per output channel
    # in 7 bits.
    hidden = nodes["hidden_conv"]
    assert made_by[hidden.input[0]].op_type == "DequantizeLinear"
    weights = made_by[hidden.input[1]]
    assert weights.op_type == "DequantizeLinear"
    values = initializer(model, weights.input[0])
    assert values.dtype == np.int8 and np.abs(values).max() <= 64
    assert initializer(model, weights.input[1]).shape == (8,)
    activation = made_by[made_by[hidden.input[0]].input[0]]
    assert activation.op_type == "QuantizeLinear"
    assert initializer(model, activation.input[2]).dtype == np.uint8
    # The output layer and the class table stay float32.
    assert nodes["output_conv"].input[1] == "last"
    assert nodes["class_product"].op_type == "MatMul"
    assert nodes["class_product"].input[1] == "class_table"
    # The dense layer: int8 weights per column in 7 bits, dynamic input range.
    dense = nodes["dense_quant"]
    assert dense.op_type == "MatMulInteger"
    dense_weights = initializer(model, dense.input[1])
    assert dense_weights.dtype == np.int8 and np.abs(dense_weights).max() <= 64
    assert initializer(model, "dense_scale").shape == (392,)
    assert INT8_FALLBACK not in Sampler(out).session.get_modelmeta().custom_metadata_map
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8.onnx"]


def test_a_model_exactly_at_the_tolerance_is_int8(conditional, tmp_path):
    first = run(conditional, tmp_path / "a.onnx", tolerance=1.0)
    again = run(conditional, tmp_path / "b.onnx", tolerance=first["int8_mean_abs_diff"])
    assert again["int8_quantized"] and again["int8_operators"] == ["Conv", "MatMul"]


def test_the_convolutions_alone_when_the_dense_layers_stray_too_far(conditional, tmp_path):
    both = run(conditional, tmp_path / "a.onnx", tolerance=1.0)
    fallback = run(conditional, tmp_path / "b.onnx", tolerance=0.0)
    convolutions = fallback["int8_mean_abs_diff"]  # the last one tried
    assert convolutions < both["int8_mean_abs_diff"]
    out = tmp_path / "c.onnx"
    metrics = run(conditional, out, tolerance=convolutions)
    assert metrics["int8_quantized"] and metrics["int8_operators"] == ["Conv"]
    assert metrics["int8_bytes"] == out.stat().st_size
    nodes = {node.name: node for node in onnx.load(str(out)).graph.node}
    assert nodes["dense"].op_type == "MatMul" and "dense_quant" not in nodes
    assert producers(onnx.load(str(out)))[nodes["hidden_conv"].input[1]].op_type == (
        "DequantizeLinear"
    )


def test_calibration_takes_whole_batches_of_64(conditional, tmp_path):
    sizes = {}
    for samples in (64, 127, 128):
        run(conditional, tmp_path / f"{samples}.onnx", tolerance=1.0, calibration=samples)
        sizes[samples] = (tmp_path / f"{samples}.onnx").read_bytes()
    assert sizes[64] == sizes[127] != sizes[128]


def test_the_int8_model_is_logged_with_its_difference(conditional, tmp_path, caplog):
    out = tmp_path / "int8.onnx"
    with caplog.at_level(logging.INFO, logger="pipeline.export.quantize"):
        metrics = run(conditional, out, tolerance=1.0)
    assert caplog.records[-1].getMessage() == (
        f"wrote {out} (Conv and MatMul in int8): mean |int8 - float32| = "
        f"{metrics['int8_mean_abs_diff']:.3g}"
    )


def test_a_model_beyond_the_tolerance_falls_back_to_float32_saying_why(
    conditional, tmp_path, caplog
):
    out = tmp_path / "int8.onnx"
    root_level = logging.getLogger().level
    with caplog.at_level(logging.WARNING, logger="pipeline.export.quantize"):
        metrics = run(conditional, out, tolerance=-1.0)
    assert logging.getLogger().level == root_level
    assert metrics["int8_quantized"] is False and metrics["int8_operators"] == []
    assert metrics["int8_bytes"] == out.stat().st_size
    metadata = Sampler(out).session.get_modelmeta().custom_metadata_map
    reason = metadata[INT8_FALLBACK]
    assert re.fullmatch(
        r"the int8 model differed from the float32 one on average by Conv and MatMul: "
        r"0\.0\d+, Conv: 0\.0\d+ \(quantizing those operators; tolerance -1\)",
        reason,
    ), reason
    assert caplog.records[-1].getMessage() == f"{out}: {reason}, so it holds the float32 model"
    assert Sampler(out).sample(3).tobytes() == Sampler(conditional).sample(3).tobytes()
    assert [p.name for p in tmp_path.iterdir()] == ["int8.onnx"]
