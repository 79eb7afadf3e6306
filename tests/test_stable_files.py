"""The two writers that make cached outputs byte-stable, on their own (the whole chain of stages,
each run twice in processes of their own: tests/test_reproducible_outputs.py, slow)."""

from __future__ import annotations

import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.export.onnx_names import stable_names
from pipeline.storage.keras_files import save_keras


def converted(counters: tuple[int, int, int], constant: str) -> onnx.ModelProto:
    """A graph as tf2onnx makes it: `z @ W + B` then Relu, its made names carrying a process's
    counters and its weight stored under one of the equal constants' names."""
    a, b, c = counters
    weight = numpy_helper.from_array(np.ones((2, 3), np.float32), constant)
    bias = numpy_helper.from_array(np.zeros(3, np.float32), f"const_fold_opt__{c}")
    nodes = [
        helper.make_node("MatMul", ["z", constant], [f"MatMul__{a}:0"], name=f"MatMul__{a}"),
        helper.make_node("Add", [f"MatMul__{a}:0", bias.name], [f"Add__{b}:0"], name=f"Add__{b}"),
        helper.make_node("Relu", [f"Add__{b}:0"], ["images"], name="Relu"),
    ]
    graph = helper.make_graph(
        nodes,
        f"tf2onnx__{a}",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [None, 3])],
        initializer=[bias, weight],
    )
    return helper.make_model(graph)


def test_the_same_graph_from_two_processes_becomes_the_same_bytes():
    first = converted((7, 12, 3), "dense/kernel__41")
    second = converted((103, 98, 250), "other/kernel__9")
    assert first.SerializeToString() != second.SerializeToString()
    for proto in (first, second):
        stable_names(proto, "generator")
    assert first.SerializeToString() == second.SerializeToString()
    graph = first.graph
    assert [node.name for node in graph.node] == ["MatMul__2", "Add__5", "Relu"]
    assert [tensor.name for tensor in graph.initializer] == ["Add__5.B", "MatMul__2.B"]
    assert (graph.input[0].name, graph.output[0].name, graph.name) == ("z", "images", "generator")
    onnx.checker.check_model(first)


def test_a_keras_file_saved_later_is_the_same_bytes(tmp_path):
    """Keras writes the save date and the zip members' times; zip times count in 2 s steps."""
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(5)(inputs)))
    save_keras(model, tmp_path / "first.keras")
    time.sleep(2.1)
    save_keras(model, tmp_path / "second.keras")
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    loaded = keras.saving.load_model(tmp_path / "second.keras")
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))
