"""`dcgan web-benchmark`: the generator in headless Chromium (onnxruntime-web, WASM) and in Node
(onnxruntime-node) beside native onnxruntime, in one run; the page's time to its first grid; the
browser's pixels against the Python sampler's.

For each model and thread count the three engines are measured one after the other with the same
method (median samples/s of timed windows of about 0.25 s, after a warm-up call), so a drift of
the machine's speed hits them alike. A benchmark, not a test: it reports numbers and ratios and
never fails on speed. Needs Chromium and node_modules (`make web-setup`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from pipeline.benchmarks import browser
from pipeline.errors import PipelineError
from pipeline.runtime import machine
from pipeline.runtime.sampler import Sampler
from pipeline.serving import serve as web
from pipeline.storage.files import write_path_atomically
from pipeline.storage.images import make_grid

log = logging.getLogger(__name__)

BATCHES = (1, 64)
WINDOWS = 5
WINDOW_SECONDS = 0.25
PARITY_IMAGES = 64
# What the page should reach (milliseconds from navigation to the first grid of 64; the largest
# difference from the Python sampler's pixels, in grey levels): reported, never enforced.
TARGETS = {"first_grid_ms": 500.0, "reload_first_grid_ms": 250.0, "parity_max_grey_levels": 1}
API_REQUESTS = 400  # the load run: this many requests of API_IMAGES digits, API_CLIENTS at once
API_CLIENTS = 8
API_IMAGES = 16
NODE_BENCHMARK = web.REPO / "examples/node/benchmark.mjs"
CANVAS_GREY = """() => {
  const canvas = document.getElementById('grid');
  const rgba = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  return {width: canvas.width, height: canvas.height,
          grey: Array.from(rgba.filter((_, i) => i % 4 === 0))};
}"""


def canvas_grid(page) -> np.ndarray:
    """The page's canvas as a uint8 grey image (the grid exactly as drawn)."""
    canvas = page.evaluate(CANVAS_GREY)
    return np.asarray(canvas["grey"], np.uint8).reshape(canvas["height"], canvas["width"])


def open_page(context, url: str):
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(browser.SETTLED, timeout=120_000)
    if page.evaluate("document.body.dataset.state") == "error":
        raise PipelineError(f"the page failed: {page.text_content('#error')}")
    return page


def first_visit_ms(chromium, url: str) -> dict[str, float]:
    """Milliseconds from navigation to each step of the first load, in a fresh browser context
    (an empty cache: a first visit): the page's script running, the runtime compiled, the model
    downloaded, its session made, the first grid drawn (`grid`)."""
    context = chromium.new_context()
    try:
        reached = open_page(context, url).evaluate("window.dcgan.milestones")
        return {name: float(ms) for name, ms in reached.items()}
    finally:
        context.close()


def reload_ms(playwright, url: str, reloads: int, site: web.Site) -> dict[str, Any]:
    """Milliseconds from navigation to the first grid on reloads of a page visited once in a
    browser with a disk cache (a returning visitor: every file revalidated, none sent again),
    and what the server answered during the reloads: how many 304s, how many bytes of files."""
    with tempfile.TemporaryDirectory() as profile, served_answers() as answers:
        context = browser.launch_with_profile(playwright, Path(profile))
        try:
            page = open_page(context, url)
            answers.clear()
            times = []
            for _ in range(reloads):
                page.reload()
                page.wait_for_selector(browser.SETTLED, timeout=120_000)
                times.append(float(page.evaluate("window.dcgan.firstGridMs")))
        finally:
            context.close()
    sent = [
        site.files[path].stat().st_size if path in site.files else len(site.models_json)
        for path, status in answers
        if status == 200
    ]
    return {
        "median": statistics.median(times),
        "loads": times,
        "answers_304": sum(status == 304 for _, status in answers),
        "answers": len(answers),
        "body_bytes": sum(size for size in sent),
    }


@contextmanager
def served_answers() -> Iterator[list[tuple[str, int]]]:
    """(path, status) of every request `dcgan serve` answers meanwhile, from its request log."""
    answers: list[tuple[str, int]] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = re.search(r'"[A-Z]+ (\S+) [^"]*" (\d{3})', record.getMessage())
            if found:
                answers.append((urlsplit(found[1]).path, int(found[2])))

    logger, recorder = logging.getLogger(web.__name__), Recorder()
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # recorded, not printed
    logger.addHandler(recorder)
    try:
        yield answers
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(level)
        logger.propagate = propagate


def api_load(model: Path, requests: int, clients: int, images: int) -> dict[str, Any]:
    """`requests` calls of GET /api/sample (`images` digits as a PNG, a seed each) from
    `clients` threads at once against `dcgan serve` on 127.0.0.1: requests/s and latency
    percentiles. Client and server share the machine's cores."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.serving.api import Api

    api = Api(Sampler(model))
    server = web.make_server(web.Site.build([model], api), "127.0.0.1", 0)
    web.serve_in_background(server)
    url = f"http://127.0.0.1:{server.server_address[1]}/api/sample?n={images}&seed="

    def one(seed: int) -> float:
        started = time.perf_counter()
        with urllib.request.urlopen(url + str(seed), timeout=60) as response:
            response.read()
        return time.perf_counter() - started

    try:
        one(0)  # warm-up
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            latencies = sorted(pool.map(one, range(requests)))
        seconds = time.perf_counter() - started
    finally:
        server.shutdown()
        server.server_close()
    return {
        "generator": model.name,
        "requests": requests,
        "clients": clients,
        "images_per_request": images,
        "requests_per_second": requests / seconds,
        "latency_ms": {
            "p50": 1e3 * float(np.percentile(latencies, 50)),
            "p99": 1e3 * float(np.percentile(latencies, 99)),
        },
    }


def browser_rates(chromium, url: str) -> dict[str, float]:
    context = chromium.new_context()
    try:
        page = open_page(context, url)
        return {
            str(batch): float(
                page.evaluate(
                    "([batch, windows, seconds]) => window.dcgan.benchmark(batch, "
                    "{windows, seconds})",
                    [batch, WINDOWS, WINDOW_SECONDS],
                )
            )
            for batch in BATCHES
        }
    finally:
        context.close()


def save_screenshot(chromium, url: str, path: Path) -> None:
    """The page as a person sees it after loading, written atomically."""
    context = chromium.new_context(viewport={"width": 1000, "height": 820})
    try:
        page = open_page(context, url)
        write_path_atomically(path, lambda temporary: page.screenshot(path=str(temporary)))
    finally:
        context.close()


def native_rates(model: Path, threads: int) -> dict[str, float]:
    sampler = Sampler(model, threads=threads)
    rates = {}
    for batch in BATCHES:
        noise = sampler.seeded_noise(0, batch)
        sampler.generate(noise)
        windows = []
        for _ in range(WINDOWS):
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < WINDOW_SECONDS:
                sampler.generate(noise)
                calls += 1
            windows.append(calls * batch / (time.perf_counter() - start))
        rates[str(batch)] = statistics.median(windows)
    return rates


def node_rates(model: Path, threads: int) -> dict[str, float]:
    node = shutil.which("node")
    if node is None:
        raise PipelineError("Node.js is not installed")
    result = subprocess.run(
        [node, str(NODE_BENCHMARK), str(model), str(threads), *map(str, BATCHES)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipelineError(f"the Node benchmark failed: {reason}")
    return {batch: float(rate) for batch, rate in json.loads(result.stdout).items()}


def pixel_parity(chromium, base: str, model: Path) -> int:
    """The largest |browser - Python sampler| grey level over a grid of 64 from seed 0."""
    context = chromium.new_context()
    try:
        page = open_page(context, f"{base}?model=models/{model.name}&count={PARITY_IMAGES}&seed=0")
        shown = canvas_grid(page).astype(int)
    finally:
        context.close()
    expected = make_grid(Sampler(model).sample(PARITY_IMAGES, seed=0))
    return int(np.abs(shown - expected).max())


def measure(models: dict[str, Path], loads: int, screenshot: Path | None = None) -> dict[str, Any]:
    """Everything `dcgan web-benchmark` reports, for `models` (variant name -> file, `float32`
    among them; the first is the page's default); with `screenshot`, a PNG of the page with its
    first grid."""
    from playwright.sync_api import sync_playwright

    site = web.Site.build(list(models.values()))
    server = web.make_server(site, "127.0.0.1", 0)
    web.serve_in_background(server)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, min(cores, 8)})
    default = next(iter(models))
    results: dict[str, Any] = {
        "machine": machine.describe(),
        "threads": thread_counts,
        "page_default": default,
    }
    try:
        with sync_playwright() as playwright:
            chromium = browser.launch(playwright)
            results["browser"] = f"Chromium {chromium.version}"
            results["onnxruntime_web"] = _package_version("onnxruntime-web")
            results["onnxruntime_node"] = _package_version("onnxruntime-node")
            first_visit_ms(chromium, base)  # the OS file cache warm, as for any later visit
            visits = [first_visit_ms(chromium, base) for _ in range(loads)]
            loads_ms = [visit["grid"] for visit in visits]
            log.info("first grid after %s ms", ", ".join(f"{ms:.0f}" for ms in loads_ms))
            results["first_grid_ms"] = {
                "median": statistics.median(loads_ms),
                "loads": loads_ms,
                "steps_median": {
                    name: statistics.median(visit[name] for visit in visits) for name in visits[0]
                },
            }
            results["reload_first_grid_ms"] = reload_ms(playwright, base, loads, site)
            log.info("reloaded: first grid after %s", results["reload_first_grid_ms"])
            if screenshot is not None:
                save_screenshot(chromium, base, screenshot)
            results["model_bytes"] = {name: path.stat().st_size for name, path in models.items()}
            rates: dict[str, Any] = {}
            for name, path in models.items():
                results.setdefault("parity_max_grey_levels", {})[name] = pixel_parity(
                    chromium, base, path
                )
                for threads in thread_counts:
                    url = f"{base}?model=models/{path.name}&count=1&threads={threads}"
                    key = f"threads_{threads}"
                    rates.setdefault(name, {}).setdefault("browser", {})[key] = browser_rates(
                        chromium, url
                    )
                    rates[name].setdefault("node", {})[key] = node_rates(path, threads)
                    rates[name].setdefault("native", {})[key] = native_rates(path, threads)
                    log.info("%s, %d thread(s): %s", name, threads, _rates_text(rates[name], key))
            chromium.close()
    finally:
        server.shutdown()
        server.server_close()
    results["samples_per_second"] = rates
    results["ratios"] = ratios(rates, thread_counts, default)
    results["api"] = api_load(models[default], API_REQUESTS, API_CLIENTS, API_IMAGES)
    log.info("API: %s", results["api"])
    results["targets"] = judge_page(results)
    return results


def judge_page(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each of `TARGETS` with what the run measured (the worst model's parity), and whether it
    is met: at most the target."""
    measured = {
        "first_grid_ms": results["first_grid_ms"]["median"],
        "reload_first_grid_ms": results["reload_first_grid_ms"]["median"],
        "parity_max_grey_levels": max(results["parity_max_grey_levels"].values()),
    }
    return {
        name: {"target": goal, "measured": measured[name], "met": measured[name] <= goal}
        for name, goal in TARGETS.items()
    }


def ratios(rates: dict[str, Any], thread_counts: list[int], default: str) -> dict[str, Any]:
    """Each engine over native onnxruntime at the same model, threads and batch; and the
    page's default (its first model, all threads) at batch 64 over native float32 on one
    thread, the issue's yardstick."""
    out: dict[str, Any] = {}
    for name, engines in rates.items():
        for engine in ("browser", "node"):
            for key, by_batch in engines[engine].items():
                for batch, rate in by_batch.items():
                    native = engines["native"][key][batch]
                    out.setdefault(name, {}).setdefault(f"{engine}_over_native", {}).setdefault(
                        key, {}
                    )[batch] = rate / native
    page_default = rates[default]["browser"][f"threads_{thread_counts[-1]}"]["64"]
    out["page_default_over_native_float32_1_thread"] = (
        page_default / rates["float32"]["native"]["threads_1"]["64"]
    )
    return out


def _rates_text(engines: dict[str, Any], key: str) -> str:
    parts = []
    for engine in ("browser", "node", "native"):
        rates = engines[engine][key].items()
        parts.append(f"{engine} " + ", ".join(f"{rate:.0f}/s at {batch}" for batch, rate in rates))
    return "; ".join(parts)


def _package_version(name: str) -> str:
    manifest = web.REPO / "node_modules" / name / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "missing"
