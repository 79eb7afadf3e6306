"""The benchmark stage on a tiny model: the files it writes and the arithmetic in them.

No assertion about speed: this is a benchmark, measured on whatever machine runs it.
"""

import json

import pytest

from conftest import QUICK_BENCHMARK, declared_paths, invoke, set_params, stage_args
from pipeline.benchmarks.benchmark import ENGINES, forward_flops
from pipeline.gan.networks import build_generator


def test_the_design_generator_costs_26_3_mflop_per_image():
    assert forward_flops(build_generator(96)) / 1e6 == pytest.approx(26.3, abs=0.05)


@pytest.mark.bf16
def test_writes_metrics_plot_and_table(exported_model, monkeypatch):
    monkeypatch.chdir(exported_model)
    set_params(exported_model, train={"epochs": 1, "noise_dim": 8}, benchmark=QUICK_BENCHMARK)
    result = invoke(*stage_args("benchmark"))
    assert result.exit_code == 0, result.output
    for path in declared_paths("benchmark"):
        assert (exported_model / path).is_file(), path

    metrics = json.loads((exported_model / "metrics/benchmark.json").read_text())
    for engine in ENGINES:
        measured = metrics[engine]
        assert set(measured["samples_per_second"]) == {"1", "4"}
        assert all(rate > 0 for rate in measured["samples_per_second"].values())
        if engine != "tensorflow_bf16":  # emulated on most CPUs: no latency calls
            assert measured["latency_ms"]["p50"] <= measured["latency_ms"]["p99"]
        assert measured["first_inference_seconds"] > 0
        for size, rate in measured["samples_per_second"].items():
            expected = rate * metrics["mflop_per_image"] / 1e3
            assert measured["gflops"][size] == pytest.approx(expected, rel=0.01, abs=0.01)
    for name, (engine, baseline) in {
        "onnxruntime_over_tensorflow": ("onnxruntime", "tensorflow"),
        "int8_over_tensorflow": ("onnxruntime_int8", "tensorflow"),
        "int8_over_tensorflow_bf16": ("onnxruntime_int8", "tensorflow_bf16"),
        "int8_over_onnxruntime": ("onnxruntime_int8", "onnxruntime"),
    }.items():
        for size, ratio in metrics[name].items():
            rates = [metrics[e]["samples_per_second"][size] for e in (engine, baseline)]
            assert ratio == pytest.approx(rates[0] / rates[1], rel=1e-2)
    assert set(metrics["matmul_gflops"]) == {"numpy", "onnxruntime", "tensorflow"}
    assert metrics["matmul_peak_gflops"] == max(metrics["matmul_gflops"].values()) > 0
    assert metrics["onnxruntime_share_of_matmul_peak"]["batch_size"] == 4  # the largest <= 256
    assert metrics["onnxruntime_share_of_matmul_peak"]["share"] > 0
    targets = metrics["targets"]
    assert (
        targets["onnxruntime_over_tensorflow_batch_1"]["measured"]
        == (metrics["onnxruntime_over_tensorflow"]["1"])
    )
    assert targets["onnxruntime_over_tensorflow_min_batch_16_to_1024"]["measured"] is None
    assert targets["int8_over_tensorflow_batch_256"] == {
        "target": 2.0,
        "measured": None,
        "met": False,
    }
    models = exported_model / "models"
    sizes = [(models / name).stat().st_size for name in ("generator.onnx", "generator-int8.onnx")]
    assert targets["float32_file_over_int8_file"]["measured"] == round(sizes[0] / sizes[1], 3)
    assert targets["float32_file_over_int8_file"]["met"] == (sizes[0] / sizes[1] >= 3.5)

    table = (exported_model / "plots/benchmark/throughput.csv").read_text().splitlines()
    assert table[0] == "batch_size,onnxruntime,tensorflow,onnxruntime_int8,tensorflow_bf16"
    assert [row.split(",")[0] for row in table[1:]] == ["1", "4"]
    assert result.stdout.splitlines()[0].split()[:4] == [
        "batch",
        "onnxruntime/s",
        "tensorflow/s",
        "ratio",
    ]
    assert "batch-1 latency p50" in result.stdout
    assert "float32 matrix product GFLOP/s: numpy" in result.stdout


def test_a_missing_onnx_model_is_a_bad_parameter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    set_params(tmp_path)
    result = invoke("benchmark", "--onnx", "nothing.onnx")
    assert result.exit_code == 2
    assert "Invalid value for '--onnx': no such file: nothing.onnx" in result.output
