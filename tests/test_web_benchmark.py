"""The browser benchmark's arithmetic and its README lines (the measurement itself runs in
`make bench-web`: Chromium, Node and native onnxruntime for a minute)."""

from __future__ import annotations

import pytest

from pipeline.benchmarks.web_benchmark import judge_page, ratios
from pipeline.reporting.performance import distribute_lines, web_lines


def rates(browser: float, node: float, native: float) -> dict:
    return {
        engine: {
            "threads_1": {"1": value / 4, "64": value},
            "threads_2": {"1": value / 2, "64": 2 * value},
        }
        for engine, value in (("browser", browser), ("node", node), ("native", native))
    }


MEASURED = {"int8": rates(300.0, 900.0, 1000.0), "float32": rates(100.0, 400.0, 500.0)}


def test_each_engine_is_divided_by_native_at_the_same_model_threads_and_batch():
    out = ratios(MEASURED, [1, 2], "int8")
    assert out["int8"]["browser_over_native"]["threads_2"]["64"] == pytest.approx(0.3)
    assert out["float32"]["node_over_native"]["threads_1"]["1"] == pytest.approx(0.8)


def test_the_page_default_is_measured_against_native_float32_on_one_thread():
    # int8 in the browser on 2 threads at batch 64 (600) over native float32, 1 thread (500).
    assert ratios(MEASURED, [1, 2], "int8")["page_default_over_native_float32_1_thread"] == (
        pytest.approx(1.2)
    )


def test_the_readme_lines_name_the_machine_the_default_and_every_figure():
    web = {
        "machine": {"cpu": "Test CPU", "cores": 2, "features": ["avx2"], "versions": {}},
        "browser": "Chromium 1",
        "onnxruntime_web": "1.0",
        "onnxruntime_node": "1.0",
        "page_default": "int8",
        "threads": [1, 2],
        "first_grid_ms": {
            "median": 700.0,
            "loads": [650.0, 700.0, 900.0],
            "steps_median": {"script": 90.0, "download": 300.0, "runtime": 410.0, "session": 620.4},
        },
        "model_bytes": {"int8": 2_000_000, "float32": 4_000_000},
        "parity_max_grey_levels": {"int8": 1, "float32": 0},
        "samples_per_second": MEASURED,
        "ratios": ratios(MEASURED, [1, 2], "int8"),
        "reload_first_grid_ms": {
            "median": 250.0,
            "loads": [240.0, 250.0, 260.0],
            "answers_304": 27,
            "answers": 33,
            "body_bytes": 4_500,
        },
        "api": {
            "generator": "generator-int8.onnx",
            "requests": 400,
            "clients": 8,
            "images_per_request": 16,
            "requests_per_second": 120.4,
            "latency_ms": {"p50": 25.04, "p99": 80.96},
        },
    }
    web["targets"] = judge_page(web)
    text = "\n".join(web_lines(web))
    assert (
        "| first visit: navigation to the first grid of 64, ms (median) | 500 | 700 | **no** |"
        in text
    )
    assert (
        "| reload (304s from the browser's cache): to the first grid, ms | 250 | 250 | yes |"
        in text
    )
    assert (
        "| largest difference from the Python sampler's pixels, grey levels | 1 | 1 | yes |" in text
    )
    assert "after 250 ms median (240, 250, 260); 27 of the reloads' 33 answers" in text
    assert (
        "Median milestones of a first visit: its script running at 90 ms, the runtime compiled "
        "at 410 ms, the model downloaded at 300 ms, the session made at 620 ms." in text
    )
    assert "were 304 without a body, 4 kB of bodies in all." in text
    assert "400 requests of `/api/sample?n=16` (a PNG grid each) from 8 clients" in text
    assert "120 requests/s, latency p50 25.0 ms, p99 81.0 ms." in text
    assert "a 2-core Test CPU with avx2" in text
    assert "700 ms median (650, 700, 900) with the page's default model (int8)" in text
    assert "| int8 | 2 | 64 | 600 | 1,800 | 2,000 | 0.30 |" in text
    assert "The page's default (int8, 2 threads) at batch 64 runs at 1.20x native" in text


def test_the_distribution_lines_give_each_setup_against_no_strategy():
    bench = {
        "batch_size": 128,
        "precision": "float32",
        "machine": {"cpu": "Test CPU", "cores": 2, "features": [], "versions": {}},
        "step_ms": {
            "off": 100.0,
            "mirrored_1": 110.0,
            "mirrored_2": 150.0,
            "multi_worker_2": 200.0,
        },
        "overhead": {
            "mirrored_1": {"ms": 10.0, "percent": 10.0},
            "mirrored_2": {"ms": 50.0, "percent": 50.0},
            "multi_worker_2": {"ms": 100.0, "percent": 100.0},
        },
    }
    text = "\n".join(distribute_lines(bench))
    assert "no strategy: 100 ms per step" in text
    assert "| MirroredStrategy, 2 logical CPU devices | 150 | +50 ms (+50%) |" in text
    assert "| MultiWorkerMirroredStrategy, 2 processes | 200 | +100 ms (+100%) |" in text
