"""The ONNX export: parity with TensorFlow, the I/O contract, metadata, and its failure mode."""

import json
import shutil
import signal
import subprocess
import sys
import time

import onnx
import onnxruntime as ort
import pytest

from conftest import FLOAT32_REORDERING, declared_paths, invoke, set_params, stage_args
from pipeline.config import ExportConfig
from pipeline.errors import ExportError
from pipeline.export.export import export
from pipeline.export.quantize import quantize


def test_every_declared_output_is_written(exported_model):
    for path in declared_paths("export"):
        assert (exported_model / path).exists(), path


def test_parity_and_checker(exported_model):
    metrics = json.loads((exported_model / "metrics/export.json").read_text())
    assert 0 <= metrics["max_abs_diff"] <= FLOAT32_REORDERING
    assert metrics["check_samples"] == 256
    assert metrics["onnx_opset"] >= 17
    onnx.checker.check_model(str(exported_model / "models/generator.onnx"), full_check=True)


def test_the_io_contract(exported_model):
    session = ort.InferenceSession(str(exported_model / "models/generator.onnx"))
    (noise,) = session.get_inputs()
    (images,) = session.get_outputs()
    assert (noise.name, noise.type) == ("z", "tensor(float)")
    assert isinstance(noise.shape[0], str)  # the batch dimension is dynamic
    assert noise.shape[1] == 8
    assert (images.name, images.type) == ("images", "tensor(float)")
    assert images.shape[1:] == [28, 28, 1]


def test_metadata_says_what_a_caller_needs(exported_model):
    model = onnx.load(str(exported_model / "models/generator.onnx"))
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    described = json.loads((exported_model / "models/generator.json").read_text())
    assert metadata["noise_dim"] == "8"
    assert (metadata["noise_distribution"], metadata["noise_low"], metadata["noise_high"]) == (
        "uniform",
        "-1.0",
        "1.0",
    )
    assert "NHWC" in metadata["output"]
    assert metadata["output_range"].startswith("[-1, 1]")
    assert metadata["dataset"] == described["provenance"]["dataset"]
    assert json.loads(metadata["train_params"]) == described["provenance"]["train_params"]
    assert metadata["train_code_revision"] == described["provenance"]["train_code_revision"]
    assert metadata["train_steps"] == "2"


def test_a_failed_check_writes_nothing(exported_model, tmp_path):
    out = tmp_path / "generator.onnx"
    out.write_bytes(b"the previous, good model")
    config = ExportConfig(tolerance=1e-30)
    with pytest.raises(ExportError, match=r"onnxruntime and TensorFlow differ by up to .* on 256"):
        export(
            exported_model / "models/generator.keras",
            exported_model / "models/generator.json",
            out,
            config,
        )
    assert out.read_bytes() == b"the previous, good model"
    assert [p.name for p in tmp_path.iterdir()] == ["generator.onnx"]


def test_a_missing_keras_model_is_a_bad_parameter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    set_params(tmp_path)
    result = invoke("export", "--model", "models/none.keras")
    assert result.exit_code == 2
    assert (
        "Invalid value for '--model': no such file: models/none.keras (run `dcgan train` first)"
        in result.output
    )


def test_the_int8_variant_is_close_and_smaller(exported_model):
    metrics = json.loads((exported_model / "metrics/export.json").read_text())
    assert metrics["int8_quantized"] is True
    assert 0 < metrics["int8_mean_abs_diff"] <= 0.05
    float_model = exported_model / "models/generator.onnx"
    int8_model = exported_model / "models/generator-int8.onnx"
    assert metrics["int8_bytes"] == int8_model.stat().st_size < float_model.stat().st_size / 3.5
    assert metrics["int8_operators"] == ["Conv", "MatMul"]
    graph = onnx.load(str(int8_model)).graph
    operators = [node.op_type for node in graph.node]
    # both dense layers dynamically: int8 weights, the input's range from the batch
    assert operators.count("DynamicQuantizeLinear") == operators.count("MatMulInteger") == 2
    assert "MatMul" not in operators
    # the hidden deconvolution's four phases statically; the output layer's four stay float32
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    floats = {tensor.name for tensor in graph.initializer}
    convolutions = [node for node in graph.node if node.op_type == "Conv"]
    assert sorted(node.input[1] in dequantized for node in convolutions) == [False] * 4 + [True] * 4
    consumers = {name: node.op_type for node in graph.node for name in node.input}
    for node in convolutions:  # the output layer's phases are summed into the tanh's input
        kept_float = node.input[1] in floats
        assert consumers[node.output[0]] == ("Add" if kept_float else "QuantizeLinear")


def test_an_int8_model_outside_its_tolerance_falls_back_to_float32(exported_model, tmp_path):
    out = tmp_path / "generator-int8.onnx"
    float_model = exported_model / "models/generator.onnx"
    metrics = quantize(float_model, out, calibration_samples=64, check_samples=32, tolerance=1e-9)
    assert metrics["int8_quantized"] is False
    assert list(tmp_path.iterdir()) == [out]
    written = onnx.load(str(out))
    metadata = {prop.key: prop.value for prop in written.metadata_props}
    reason = metadata["int8_fallback"]
    assert reason.startswith("the int8 model differed from the float32 one on average by Conv ")
    assert " and MatMul: " in reason and ", Conv: " in reason  # both tried, products first
    assert reason.endswith(" (quantizing those operators; tolerance 1e-09)")
    assert metrics["int8_operators"] == []
    assert {node.op_type for node in written.graph.node} == {
        node.op_type for node in onnx.load(str(float_model)).graph.node
    }


@pytest.mark.parametrize("target", ["generator.onnx", "generator-int8.onnx"])
def test_export_killed_while_writing_leaves_the_previous_file(exported_model, tmp_path, target):
    """kill -9 the moment the temporary of `target` appears: the file under the final name is
    still the previous, complete model; a later stage never sees a partial one."""
    work = tmp_path / "repo"
    shutil.copytree(exported_model, work, ignore=shutil.ignore_patterns("checkpoints", "plots"))
    final = work / "models" / target
    before = final.read_bytes()
    command = [sys.executable, "-m", "pipeline", *stage_args("export")]
    process = subprocess.Popen(
        command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if any((work / "models").glob(f".{target}.*")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "export ended before it could be killed"
    assert final.read_bytes() == before
    onnx.checker.check_model(str(final), full_check=True)
