"""`dcgan serve`'s HTTP API over real HTTP on 127.0.0.1: the same digits as the sampler, JSON
errors with 4xx codes, bounded requests, and concurrent clients answered right."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from conftest import nan_generator
from pipeline.runtime.classify import Classifier
from pipeline.runtime.encode import Encoder
from pipeline.runtime.sampler import Sampler
from pipeline.serving import serve as web
from pipeline.serving.api import MAX_BODY_BYTES, MAX_IMAGES, Api
from pipeline.storage.images import make_grid

needs_runtime = pytest.mark.skipif(
    not (web.RUNTIME / web.RUNTIME_FILES[0]).is_file(),
    reason="onnxruntime-web is not in node_modules: `make web-setup` installs it",
)
pytestmark = needs_runtime


@contextlib.contextmanager
def serving(generator, family_folder):
    """The API's base URL while `dcgan serve`'s server runs on 127.0.0.1 in this process."""
    api = Api.load(generator, family_folder)
    server = web.make_server(web.Site.build([generator], api), "127.0.0.1", 0)
    web.serve_in_background(server)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def family_folder(tmp_path_factory, ssl_model, bigan_exported):
    """A folder with both the semi-supervised classifier and the BiGAN encoder."""
    folder = tmp_path_factory.mktemp("family")
    shutil.copy(ssl_model / "models/family/classifier.onnx", folder)
    shutil.copy(bigan_exported / "models/family/encoder.onnx", folder)
    return folder


@pytest.fixture(scope="module")
def api(exported_model, family_folder):
    with serving(exported_model / "models/generator.onnx", family_folder) as url:
        yield url


def call(url: str, body: bytes | None = None, method: str | None = None, **headers):
    """Status, Content-Type and body; a 4xx is an answer, not an error."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_the_contract_says_what_the_generator_takes_and_what_is_served(api):
    status, kind, body = call(api + "/contract")
    assert (status, kind) == (200, "application/json")
    document = json.loads(body)
    assert document["generator"]["model"] == "dcgan-generator"
    assert document["generator"]["noise_dim"] == 8
    assert document["generator"]["output_range"] == [-1.0, 1.0]
    assert document["generator"]["noise"] == {"distribution": "uniform", "low": -1.0, "high": 1.0}
    assert document["generator"]["classes"] == [] and document["generator"]["codes"] is None
    assert document["max_images"] == MAX_IMAGES
    assert document["endpoints"] == [
        "GET /api/contract",
        "GET /api/sample",
        "POST /api/classify",
        "POST /api/encode",
    ]


def test_samples_are_the_samplers_bytes(api, exported_model):
    sampler = Sampler(exported_model / "models/generator.onnx")
    expected = sampler.sample(10, seed=7)
    status, kind, body = call(api + "/sample?n=10&seed=7&format=npy")
    assert (status, kind) == (200, "application/octet-stream")
    assert np.array_equal(np.load(io.BytesIO(body)), expected)
    status, kind, body = call(api + "/sample?n=10&seed=7")
    assert (status, kind) == (200, "image/png")
    grid = np.asarray(Image.open(io.BytesIO(body)))
    assert np.array_equal(grid[::2, ::2], make_grid(expected))  # 2x, as `dcgan sample`


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("n=0", "n must be from 1 to 256, got 0"),
        ("n=257", "n must be from 1 to 256, got 257"),
        ("n=ten", 'n must be a whole number, got "ten"'),
        ("n=%C2%B2", 'n must be a whole number, got "\\u00b2"'),  # a superscript two
        ("seed=-1", "seed must be from 0 to 18446744073709551615, got -1"),
        ("seed=18446744073709551616", "seed must be from 0 to 18446744073709551615, got "),
        ("format=gif", 'format must be png or npy, got "gif"'),
        ("colour=red", 'unknown argument "colour"'),
        ("n=1&n=2", "each argument once"),
        ("label=3", "is an unconditional model: it takes no label"),
        ("category=1", 'unknown argument "category"'),
        ("x=" + "a" * 100, 'unknown argument "x"'),
    ],
)
def test_bad_arguments_are_a_json_400(api, query, message):
    status, kind, body = call(api + "/sample?" + query)
    assert (status, kind) == (400, "application/json")
    assert message in json.loads(body)["error"]


@pytest.mark.parametrize(
    ("path", "method", "status", "message"),
    [
        ("/nothing", None, 404, "no such endpoint /api/nothing: see /api/contract"),
        ("/sample", "POST", 405, "/api/sample takes GET, not POST"),
        ("/classify", None, 405, "/api/classify takes POST, not GET"),
    ],
)
def test_unknown_endpoints_and_methods_are_json_too(api, path, method, status, message):
    body = b"" if method == "POST" else None
    answer = call(api + path, body=body, method=method)
    assert answer[:2] == (status, "application/json")
    assert json.loads(answer[2]) == {"error": message}


def test_a_conditional_models_label_is_honoured(conditional_model, tmp_path):
    with serving(conditional_model / "models/generator.onnx", tmp_path) as url:
        _, _, body = call(url + "/sample?n=5&seed=3&label=4&format=npy")
        status, _, refused = call(url + "/sample?label=12")
        contract = json.loads(call(url + "/contract")[2])
    expected = Sampler(conditional_model / "models/generator.onnx").sample(5, seed=3, label=4)
    assert np.array_equal(np.load(io.BytesIO(body)), expected)
    assert status == 400
    assert "label 12 is not one of the model's classes (0-9)" in json.loads(refused)["error"]
    assert contract["generator"]["classes"] == list(range(10))
    assert contract["endpoints"] == ["GET /api/contract", "GET /api/sample"]


def test_an_infogan_models_codes_are_arguments(infogan_model, tmp_path):
    with serving(infogan_model / "models/generator.onnx", tmp_path) as url:
        _, _, body = call(url + "/sample?n=4&seed=2&category=3&c1=0.5&format=npy")
        status, _, refused = call(url + "/sample?c2=2")
        contract = json.loads(call(url + "/contract")[2])
    sampler = Sampler(infogan_model / "models/generator.onnx")
    expected = sampler.sample(4, seed=2, codes={"category": 3, "c1": 0.5})
    assert np.array_equal(np.load(io.BytesIO(body)), expected)
    assert status == 400 and "code c2: expected a number in [-1, 1]" in json.loads(refused)["error"]
    codes = contract["generator"]["codes"]
    assert codes["category"] == list(range(10))
    assert codes["continuous"] == {"c1": [-1.0, 1.0], "c2": [-1.0, 1.0]}
    meanings = sampler.contract.code_meanings  # measured after training: none in 2 steps
    assert codes["meanings"] == (json.loads(meanings) if meanings else None)


def test_classify_reads_a_png_or_an_array(api, family_folder):
    pixels = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    expected = Classifier(family_folder / "classifier.onnx").predict(
        (pixels.astype(np.float32) / 127.5 - 1)[..., None]
    )
    status, kind, body = call(
        api + "/classify", npy(pixels), **{"Content-Type": "application/x-npy"}
    )
    assert (status, kind) == (200, "application/json")
    answer = json.loads(body)
    assert answer["digits"] == expected.argmax(axis=1).tolist()
    assert np.allclose(answer["probabilities"], expected, atol=1e-6)
    png = io.BytesIO()
    Image.fromarray(pixels[1]).save(png, format="PNG")
    _, _, body = call(api + "/classify", png.getvalue())
    assert json.loads(body)["digits"] == [answer["digits"][1]]


def test_an_array_of_no_images_is_a_json_400(api):
    status, kind, body = call(api + "/classify", npy(np.zeros((0, 28, 28), np.uint8)))
    assert (status, kind) == (400, "application/json")
    assert json.loads(body)["error"] == "the request body: holds no images"


def test_encode_gives_each_images_noise(api, family_folder):
    pixels = np.random.default_rng(1).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    images = (pixels.astype(np.float32) / 127.5 - 1)[..., None]
    expected = Encoder(family_folder / "encoder.onnx").encode(images)
    status, _, body = call(api + "/encode", npy(pixels))
    assert status == 200
    assert np.allclose(json.loads(body)["z"], expected, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 400, "send one PNG or .npy file as the request body"),
        (b"GIF89a", 400, "the request body: not a PNG or .npy file"),
        (npy(np.zeros((2, 5, 5), np.uint8)), 400, "uint8 array of shape (2, 5, 5), expected"),
        (npy(np.zeros((MAX_IMAGES + 1, 28, 28), np.uint8)), 413, "at most 256 images per request"),
        (b"\x93NUMPY" + b"\0" * 20, 400, "the request body: not a readable .npy array"),
    ],
)
def test_bad_bodies_are_refused_in_one_line(api, body, status, message):
    answer = call(api + "/classify", body)
    assert answer[0] == status
    assert message in json.loads(answer[2])["error"]


def test_an_oversized_or_unsized_body_is_refused_before_it_is_read(api):
    import http.client

    host, port = api.removeprefix("http://").removesuffix("/api").split(":")
    for headers, status in (
        ({"Content-Length": str(MAX_BODY_BYTES + 1)}, 413),
        ({"Transfer-Encoding": "chunked"}, 411),
        ({"Content-Length": "²"}, 411),  # a digit to str.isdigit, not to int()
        ({"Content-Length": "12a"}, 411),
    ):
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.putrequest("POST", "/api/classify")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()  # no body follows
        response = connection.getresponse()
        assert response.status == status
        assert "error" in json.loads(response.read())
        connection.close()


def test_a_family_model_that_is_not_served_is_a_404(exported_model, tmp_path):
    with serving(exported_model / "models/generator.onnx", tmp_path) as url:
        answers = [call(url + path, b"x") for path in ("/classify", "/encode")]
    assert [status for status, _, _ in answers] == [404, 404]
    assert "semi-supervised" in json.loads(answers[0][2])["error"]
    assert "bigan" in json.loads(answers[1][2])["error"]


def test_concurrent_clients_each_get_their_own_digits(api, exported_model):
    sampler = Sampler(exported_model / "models/generator.onnx")
    seeds = list(range(24))
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda seed: call(api + f"/sample?n=32&seed={seed}&format=npy"), seeds)
        )
    for seed, (status, _, body) in zip(seeds, answers, strict=True):
        assert status == 200
        assert np.array_equal(np.load(io.BytesIO(body)), sampler.sample(32, seed=seed))


def test_a_model_whose_output_is_not_finite_is_a_json_500(exported_model, tmp_path):
    damaged = nan_generator(exported_model / "models/generator.onnx", tmp_path / "nan.onnx")
    with serving(damaged, tmp_path) as url:
        status, kind, body = call(url + "/sample?n=2")
    assert (status, kind) == (500, "application/json")
    assert "nan.onnx: the model's output is not finite" in json.loads(body)["error"]
