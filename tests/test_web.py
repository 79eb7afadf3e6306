"""The web page in a real browser: headless Debian Chromium driven by Playwright, against
`dcgan serve`'s server on 127.0.0.1, with onnxruntime-web from node_modules.

`make web-setup` installs both (`make test` runs it); run by hand without them, these tests skip
with the reason, unless DCGAN_REQUIRE_BROWSER is set (as `.ci/run` does), when they fail.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import flipped_weights, nan_generator, unavailable, without_metadata
from pipeline.benchmarks import browser as chromium
from pipeline.benchmarks.browser import SETTLED
from pipeline.benchmarks.web_benchmark import canvas_grid
from pipeline.runtime import traversals
from pipeline.runtime.classify import Classifier
from pipeline.runtime.contract import WEIGHTS_DIGEST
from pipeline.runtime.encode import Encoder
from pipeline.runtime.sampler import Sampler
from pipeline.serving import serve as web
from pipeline.storage.images import from_uint8, make_grid, to_uint8


@pytest.fixture(scope="module")
def browser():
    reason = chromium.missing()
    if reason:
        unavailable(reason)
    if not (web.RUNTIME / web.RUNTIME_FILES[0]).is_file():
        unavailable("onnxruntime-web is not in node_modules")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = chromium.launch(playwright)
        yield launched
        launched.close()


def not_a_generator(path: Path) -> Path:
    """A valid ONNX model that is not a generator: one input `x`, the identity."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def site(exported_model, conditional_model, infogan_model, tmp_path_factory):
    """The page served on 127.0.0.1 with the tiny float32, int8, conditional and InfoGAN
    models, an InfoGAN model whose metadata lost its category count, two files that are not
    generators, one whose weights were damaged and one without their digest."""
    folder = tmp_path_factory.mktemp("served")
    infogan = infogan_model / "models/generator.onnx"
    models = [
        exported_model / "models/generator.onnx",
        exported_model / "models/generator-int8.onnx",
        shutil.copy(conditional_model / "models/generator.onnx", folder / "conditional.onnx"),
        not_a_generator(folder / "identity.onnx"),
        shutil.copy(infogan, folder / "infogan.onnx"),
        without_metadata(infogan, folder / "broken-infogan.onnx", "categorical_codes"),
        nan_generator(exported_model / "models/generator.onnx", folder / "nan.onnx"),
        flipped_weights(exported_model / "models/generator.onnx", folder / "flipped.onnx"),
        without_metadata(
            exported_model / "models/generator.onnx", folder / "bare.onnx", WEIGHTS_DIGEST
        ),
    ]
    (folder / "text.onnx").write_text("not a model at all\n")
    models.append(folder / "text.onnx")
    server = web.make_server(web.Site.build(models), "127.0.0.1", 0)
    web.serve_in_background(server)
    yield {
        "url": f"http://127.0.0.1:{server.server_address[1]}/",
        "float32": models[0],
        "int8": models[1],
        "conditional": models[2],
        "infogan": models[4],
    }
    server.shutdown()


@pytest.fixture
def page(browser):
    """A fresh page that records uncaught exceptions in `page.uncaught`."""
    context = browser.new_context()
    page = context.new_page()
    page.uncaught = []
    page.on("pageerror", lambda error: page.uncaught.append(error))
    yield page
    context.close()


def open_page(page, site, query: str) -> str:
    page.goto(site["url"] + query)
    page.wait_for_selector(SETTLED, timeout=60_000)
    return page.evaluate("document.body.dataset.state")


def python_grid(model: Path, count: int, seed: int, label: int | None = None) -> np.ndarray:
    return make_grid(Sampler(model).sample(count, seed=seed, label=label))


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_the_page_draws_what_the_python_sampler_draws(page, site, variant):
    name = site[variant].name
    assert open_page(page, site, f"?model=models/{name}&count=16&seed=7") == "ready"
    shown = canvas_grid(page)
    expected = python_grid(site[variant], 16, 7)
    assert shown.shape == expected.shape
    difference = np.abs(shown.astype(int) - expected).max()
    assert difference <= 1, f"{variant}: largest difference {difference} grey levels"
    assert (shown != expected).mean() < 0.01  # float rounding touches a rare pixel, not many
    assert page.text_content("#error") == ""
    assert "16 digits in" in page.text_content("#stat-speed")
    assert page.uncaught == []


def test_a_draw_faster_than_the_clock_is_said_so_and_no_rate_is_made_up(page, site):
    assert open_page(page, site, "?count=16") == "ready"
    shown = page.text_content("#stat-speed")
    assert "Infinity" not in shown and " 0.0 ms" not in shown and "NaN" not in shown
    said = page.evaluate(
        "[0, 0.004, 0.25, 42.4].map((ms) => window.dcgan.speedText(64, ms, 0.005))"
    )
    assert said == [
        "64 digits in less than the clock's step of 0.0050 ms",
        "64 digits in less than the clock's step of 0.0050 ms",
        "64 digits in 0.25 ms (256000 per second)",
        "64 digits in 42 ms (1509 per second)",
    ]
    measured = page.evaluate("window.dcgan.speedText(64, 0)")  # the page's own clock step
    assert measured.startswith("64 digits in less than the clock's step of ")


def test_the_default_model_is_the_first_listed_and_the_form_redraws(page, site):
    assert open_page(page, site, "") == "ready"
    assert page.input_value("#model") == f"models/{site['float32'].name}"
    assert canvas_grid(page).shape == make_grid(np.zeros((64, 28, 28), np.uint8)).shape
    page.fill("#count", "9")
    page.fill("#seed", "18446744073709551615")  # the largest seed
    page.click("#draw")
    page.wait_for_selector(SETTLED)
    expected = python_grid(site["float32"], 9, 2**64 - 1)
    assert np.abs(canvas_grid(page).astype(int) - expected).max() <= 1
    assert page.uncaught == []


def test_the_conditional_model_draws_the_requested_digit(page, site):
    query = "?model=models/conditional.onnx&count=10&seed=3&digit=4"
    assert open_page(page, site, query) == "ready"
    assert page.input_value("#digit") == "4"
    assert not page.is_disabled("#digit")
    fours = canvas_grid(page)
    assert np.abs(fours.astype(int) - python_grid(site["conditional"], 10, 3, 4)).max() <= 1
    page.select_option("#digit", "7")
    page.wait_for_function("document.body.dataset.state === 'ready'")
    sevens = canvas_grid(page)
    assert np.abs(sevens.astype(int) - python_grid(site["conditional"], 10, 3, 7)).max() <= 1
    assert not np.array_equal(fours, sevens)
    page.select_option("#digit", "")  # any: the classes in turn, as the Python sampler draws
    page.wait_for_function("document.body.dataset.state === 'ready'")
    any_digit = python_grid(site["conditional"], 10, 3)
    assert np.abs(canvas_grid(page).astype(int) - any_digit).max() <= 1
    assert page.uncaught == []


def test_an_unconditional_model_offers_no_digit(page, site):
    open_page(page, site, f"?model=models/{site['float32'].name}")
    assert page.is_disabled("#digit")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("models/text.onnx", "models/text.onnx: not an ONNX model"),
        ("models/missing.onnx", "models/missing.onnx: not found (HTTP 404)"),
        ("models/identity.onnx", "not a generator: expected the inputs z (and label), got x"),
        ("models/nan.onnx", "models/nan.onnx: the model's output is not finite (NaN or infinity)"),
        (
            "models/flipped.onnx",
            "models/flipped.onnx: its weights do not match the digest in its metadata",
        ),
    ],
)
def test_a_file_that_is_not_a_generator_is_a_visible_message(page, site, model, message):
    assert open_page(page, site, f"?model={model}") == "error"
    assert page.is_visible("#error")
    assert message in page.text_content("#error")
    assert page.uncaught == []


def test_a_model_without_its_weights_digest_draws_and_says_so(page, site):
    assert open_page(page, site, "?model=models/bare.onnx&count=4") == "ready"
    assert page.is_visible("#warning")
    assert page.text_content("#warning") == (
        f"models/bare.onnx: no {WEIGHTS_DIGEST} in its metadata: its weights are not checked"
    )
    assert open_page(page, site, f"?model=models/{site['float32'].name}&count=4") == "ready"
    assert not page.is_visible("#warning")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("#count", "0", 'the count must be a whole number from 1 to 256, got "0"'),
        ("#count", "257", 'the count must be a whole number from 1 to 256, got "257"'),
        ("#seed", "-1", 'the seed must be a whole number from 0, got "-1"'),
        ("#seed", "1.5", 'the seed must be a whole number from 0, got "1.5"'),
        ("#seed", "18446744073709551616", "the seed must be below 2^64"),
    ],
)
def test_out_of_range_inputs_are_a_visible_message(page, site, field, value, message):
    open_page(page, site, f"?model=models/{site['float32'].name}&count=4")
    before = canvas_grid(page)
    page.fill(field, value)
    page.click("#draw")
    page.wait_for_selector("body[data-state=error]")
    assert page.is_visible("#error")
    assert message in page.text_content("#error")
    np.testing.assert_array_equal(canvas_grid(page), before)  # the last grid stays
    assert page.uncaught == []


def test_a_local_file_can_be_chosen(page, site):
    open_page(page, site, f"?model=models/{site['float32'].name}&count=4&seed=5")
    page.set_input_files("#file", str(site["conditional"]))
    page.wait_for_function(
        "document.body.dataset.state === 'ready' && !!window.dcgan.model"
        " && window.dcgan.model.name === 'conditional.onnx'"
    )
    assert np.abs(canvas_grid(page).astype(int) - python_grid(site["conditional"], 4, 5)).max() <= 1


def test_the_latent_walk_animates(page, site):
    open_page(page, site, f"?model=models/{site['float32'].name}&count=4")
    first = canvas_grid(page)
    page.click("#walk")
    page.wait_for_function("document.body.dataset.state === 'walking'")
    page.wait_for_timeout(1500)
    assert not np.array_equal(canvas_grid(page), first)
    page.click("#draw")  # stops the walk and draws the grid again
    page.wait_for_function("document.body.dataset.state === 'ready'")
    page.wait_for_timeout(200)
    np.testing.assert_array_equal(canvas_grid(page), first)
    assert page.uncaught == []


def test_the_page_is_cross_origin_isolated_and_uses_threads(page, site):
    open_page(page, site, f"?model=models/{site['float32'].name}")
    assert page.evaluate("crossOriginIsolated") is True
    assert page.evaluate("window.dcgan.threads") == min(os.cpu_count() or 1, 8)
    open_page(page, site, f"?model=models/{site['float32'].name}&threads=1")
    assert page.evaluate("window.dcgan.threads") == 1


def test_an_infogan_models_codes_are_controls_that_draw_what_python_draws(page, site):
    infogan = Sampler(site["infogan"])
    assert open_page(page, site, "?model=models/infogan.onnx&count=8&seed=3") == "ready"
    assert page.is_visible("#codes") and page.is_disabled("#digit")
    categories = page.eval_on_selector_all("#code-category option", "os => os.map(o => o.value)")
    assert categories == ["", *map(str, range(10))]
    assert page.is_visible("#code-c1") and page.is_visible("#code-c2")
    assert "InfoGAN, 10 categories, 2 continuous codes" in page.text_content("#stat-model")
    # nothing fixed: the categories in turn, the continuous codes from the noise
    assert np.abs(canvas_grid(page).astype(int) - make_grid(infogan.sample(8, seed=3))).max() <= 1

    def shown_after(action) -> np.ndarray:
        action()
        page.wait_for_function("document.body.dataset.state === 'ready'")
        return canvas_grid(page).astype(int)

    fixed = shown_after(lambda: page.select_option("#code-category", "2"))
    expected = make_grid(infogan.sample(8, seed=3, codes={"category": 2}))
    assert np.abs(fixed - expected).max() <= 1
    slid = shown_after(lambda: page.fill("#code-c1", "0.5"))
    assert page.is_checked("#fix-c1") and page.text_content("#value-c1") == "0.5"
    expected = make_grid(infogan.sample(8, seed=3, codes={"category": 2, "c1": 0.5}))
    assert np.abs(slid - expected).max() <= 1
    assert not np.array_equal(fixed, slid)
    swept = shown_after(lambda: page.select_option("#sweep", "c2"))
    rows = traversals.sweep(infogan, "c2", 8, seed=3, codes={"category": 2, "c1": 0.5})
    assert np.abs(swept - make_grid(rows.reshape(-1, 28, 28), rows.shape[1])).max() <= 1
    assert page.uncaught == []


def test_an_infogan_sweep_of_a_fixed_code_is_a_visible_message(page, site):
    open_page(page, site, "?model=models/infogan.onnx&count=4&c1=0.25&sweep=c1")
    assert page.evaluate("document.body.dataset.state") == "error"
    assert "code c1 is swept: uncheck it or sweep another" in page.text_content("#error")
    assert page.is_checked("#fix-c1")


def test_an_infogan_model_with_a_broken_contract_is_a_visible_message(page, site):
    assert open_page(page, site, "?model=models/broken-infogan.onnx") == "error"
    message = "takes a categorical code but its metadata has no count"
    assert message in page.text_content("#error")
    assert page.uncaught == []


@pytest.fixture(scope="module")
def family_site(bigan_exported, ssl_model, conditional_model, tmp_path_factory):
    """The page with the BiGAN generator (and the conditional one, which the encoder does not
    pair with), the semi-supervised classifier and the BiGAN encoder."""
    folder = tmp_path_factory.mktemp("family-served")
    generator = shutil.copy(bigan_exported / "models/generator.onnx", folder / "bigan.onnx")
    conditional = shutil.copy(conditional_model / "models/generator.onnx", folder / "cond.onnx")
    family = [
        ssl_model / "models/family/classifier.onnx",
        bigan_exported / "models/family/encoder.onnx",
    ]
    server = web.make_server(
        web.Site.build([generator, conditional], family=family), "127.0.0.1", 0
    )
    web.serve_in_background(server)
    yield {
        "url": f"http://127.0.0.1:{server.server_address[1]}/",
        "generator": generator,
        "classifier": family[0],
        "encoder": family[1],
    }
    server.shutdown()


def scribble(page) -> dict:
    """Draw a stroke on the pad with the mouse, lift, and return what the page read."""
    box = page.locator("#pad").bounding_box()
    points = [(0.35, 0.2), (0.65, 0.25), (0.5, 0.55), (0.45, 0.85)]
    page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=6)
    page.mouse.up()
    page.wait_for_selector("body[data-reader=read], body[data-reader=error]")
    return page.evaluate("window.dcgan.reader")


def test_a_drawn_digit_is_classified_and_redrawn_as_python_reads_it(page, family_site):
    page.goto(family_site["url"] + "?count=4")
    page.wait_for_selector("body[data-reader=ready]", timeout=60_000)
    assert page.is_visible("#pad") and page.is_visible("#reconstruction")
    read = scribble(page)
    pixels = np.asarray(read["input"], np.uint8).reshape(1, 28, 28)
    assert 10 < (pixels > 128).sum() < 400  # a stroke, not an empty or a full pad
    images = from_uint8(pixels)
    expected = Classifier(family_site["classifier"]).predict(images)[0]
    np.testing.assert_allclose(read["probabilities"], expected, atol=1e-5)
    digit = int(expected.argmax())
    assert page.text_content("#prediction").startswith(f"digit {digit} (")
    assert page.locator("#probabilities li").count() == 10
    redrawn = Encoder(family_site["encoder"]).reconstruct(Sampler(family_site["generator"]), images)
    shown = np.asarray(read["reconstruction"], int).reshape(28, 28)
    assert np.abs(shown - to_uint8(redrawn)[0, ..., 0]).max() <= 1
    canvas = page.evaluate(
        "Array.from(document.getElementById('reconstruction').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0))"
    )
    assert canvas == read["reconstruction"]  # what a person sees is what was computed
    page.click("#clear")
    assert page.text_content("#prediction") == ""
    assert page.uncaught == []


def test_an_encoder_beside_a_generator_it_does_not_pair_with_is_a_visible_message(
    page, family_site
):
    page.goto(family_site["url"] + "?model=models/cond.onnx&count=4")
    page.wait_for_selector("body[data-reader=ready]", timeout=60_000)
    scribble(page)
    assert page.evaluate("document.body.dataset.reader") == "error"
    message = "the encoder's codes have 8 values; the generator takes 8 and labels or codes"
    assert message in page.text_content("#reader-error")
    assert page.evaluate("document.body.dataset.state") == "ready"  # the grid is unaffected


def test_a_reader_with_a_broken_contract_is_a_visible_message(page, ssl_model, tmp_path):
    broken = without_metadata(
        ssl_model / "models/family/classifier.onnx", tmp_path / "classifier.onnx", "model"
    )
    generator = ssl_model / "models/generator.onnx"
    server = web.make_server(web.Site.build([generator], family=[broken]), "127.0.0.1", 0)
    web.serve_in_background(server)
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/?count=4")
        page.wait_for_selector("body[data-reader=error]", timeout=60_000)
        message = "family/classifier.onnx: neither a classifier nor an encoder"
        assert message in page.text_content("#reader-error")
        assert page.evaluate("document.body.dataset.state") == "ready"
    finally:
        server.shutdown()
