"""`dcgan evaluate` on generators made elsewhere: ONNX graphs written here with onnx.helper,
without the project's export stage or its metadata."""

import json
import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import TINY_STAGES, invoke, invoke_ok, set_params, stage_args
from pipeline.data.datasets import load_split


def copier(path, images: np.ndarray) -> None:
    """A generator that returns training images: noise u `(N, 1)` in [0, 1) picks image
    floor(u K) of K, as pixel rows `(N, 784)` in [0, 1], under names of its own."""
    rows = images.reshape(len(images), -1).astype(np.float32) / 255.0
    nodes = [
        helper.make_node("Mul", ["u", "count"], ["scaled"]),
        helper.make_node("Floor", ["scaled"], ["floored"]),
        helper.make_node("Cast", ["floored"], ["index2d"], to=TensorProto.INT64),
        helper.make_node("Squeeze", ["index2d", "axis"], ["index"]),
        helper.make_node("Gather", ["table", "index"], ["pixels"], axis=0),
    ]
    initializers = [
        numpy_helper.from_array(np.array([len(images)], np.float32), "count"),
        numpy_helper.from_array(np.array([1], np.int64), "axis"),
        numpy_helper.from_array(rows, "table"),
    ]
    graph = helper.make_graph(
        nodes,
        "copier",
        [helper.make_tensor_value_info("u", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 784])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


@pytest.fixture(scope="module")
def measured_folder(exported_model):
    """The tiny exported model's folder with a classifier and a copier of its training images."""
    set_params(exported_model, **TINY_STAGES)
    if not (exported_model / "models/classifier.keras").exists():
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(exported_model)
            invoke_ok(*stage_args("classifier"))
    images, _ = load_split(exported_model / "data/mnist", "train")
    copier(exported_model / "copier.onnx", images)
    return exported_model


def evaluate(folder, monkeypatch, *options):
    monkeypatch.chdir(folder)
    args = stage_args("evaluate")
    args[args.index("--model") + 1] = "copier.onnx"
    args = [a for a in args if a not in ("--int8-model", "models/generator-int8.onnx")]
    return invoke(*args, "--metrics", "copier.json", "--plots", "copier-plots", *options)


def test_a_generator_made_elsewhere_is_measured_as_stated(measured_folder, monkeypatch):
    """The copier, stated rightly, draws training images exactly: the memorization measure
    finds each at distance 0; read in the default range [-1, 1] its pixels come out other
    values, and no digit is a copy."""
    result = evaluate(
        measured_folder, monkeypatch, "--noise-range", "0", "1", "--output-range", "0", "1"
    )
    assert result.exit_code == 0, result.output
    copies = json.loads((measured_folder / "copier.json").read_text())["memorization"]
    assert copies["generated"]["copy_share"] == 1.0
    assert copies["generated"]["median_nearest_pixels"] == 0.0
    result = evaluate(measured_folder, monkeypatch, "--noise-range", "0", "1")
    assert result.exit_code == 0, result.output
    misread = json.loads((measured_folder / "copier.json").read_text())["memorization"]
    assert misread["generated"]["median_nearest_pixels"] > 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--noise", "normal", "--noise-range", "0", "1"), "applies to uniform noise only"),
        (("--output-range", "1", "0"), "LOW below HIGH; got 1 0"),
        (("--noise-range", "0", "inf"), "two finite numbers"),
        (("--noise-dim", "3"), "its noise is 1 wide, not the 3 stated"),
        (("--noise-dim", "70000"), "a noise 70000 wide is outside 1-65536"),
    ],
)
def test_what_is_stated_wrongly_is_one_line(measured_folder, monkeypatch, options, message):
    result = evaluate(measured_folder, monkeypatch, *options)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_model_without_metadata_is_measured_on_this_projects_noise_and_says_so(
    measured_folder, monkeypatch, caplog
):
    with caplog.at_level(logging.WARNING, logger="pipeline.evaluation.any_generator"):
        result = evaluate(measured_folder, monkeypatch)
    assert result.exit_code == 0, result.output
    assert (
        "copier.onnx carries no generator metadata: measured with uniform noise in [-1, 1], "
        "images read as values in [-1, 1]"
    ) in caplog.text


def test_a_model_of_two_inputs_is_not_a_generator_of_the_minimal_contract(
    measured_folder, monkeypatch
):
    model = onnx.load(measured_folder / "copier.onnx")
    model.graph.input.append(helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N", 1]))
    onnx.save(model, measured_folder / "copier.onnx")
    try:
        result = evaluate(measured_folder, monkeypatch, "--output-range", "0", "1")
    finally:
        images, _ = load_split(measured_folder / "data/mnist", "train")
        copier(measured_folder / "copier.onnx", images)
    assert result.exit_code == 1
    assert "not a generator of the minimal contract: expected one float32 input" in result.output


def test_the_noise_option_offers_every_distribution_the_runtime_draws():
    from pipeline.cli.stages import evaluate as command
    from pipeline.runtime.noise import NOISE_DISTRIBUTIONS

    (noise,) = [option for option in command.params if option.name == "noise"]
    assert tuple(noise.type.choices) == NOISE_DISTRIBUTIONS
