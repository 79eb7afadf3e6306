"""The Node.js sampler (examples/node/sample.mjs, onnxruntime-node) and the JavaScript contract
(web/generator.js) against the Python ones: the same noise bit for bit, the same digits.

Needs Node.js and `npm ci` (`make web-setup`); skips with the reason otherwise, unless
DCGAN_REQUIRE_BROWSER is set (as `.ci/run` does).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import flipped_weights, invoke_ok, nan_generator, unavailable, without_metadata
from pipeline.runtime.contract import WEIGHTS_DIGEST
from pipeline.runtime.noise import Noise
from pipeline.runtime.sampler import Sampler

REPO = Path(__file__).resolve().parent.parent
NODE_SAMPLER = REPO / "examples/node/sample.mjs"


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    reason = None
    if path is None:
        reason = "Node.js is not installed"
    elif not (REPO / "node_modules/onnxruntime-node").is_dir():
        reason = "onnxruntime-node is not in node_modules"
    if reason:
        unavailable(reason)
    return path


def run_node(node: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [node, str(NODE_SAMPLER), *args], capture_output=True, text=True, timeout=120
    )


def javascript(node: str, code: str):
    """The JSON that `code` (an async body with `g`, web/generator.js, in scope) returns."""
    script = (
        f"const g = await import({json.dumps((REPO / 'web/generator.js').as_uri())});\n"
        f"console.log(JSON.stringify(await (async () => {{ {code} }})()));"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_javascript_draws_the_same_noise_bits(node):
    contract = {"latentDim": 5}
    for seed in (0, 7, 2**64 - 1):
        for noise, first_row in ((Noise(), 0), (Noise(), 3), (Noise("uniform", -2.0, 0.5), 1)):
            spec = {"distribution": noise.distribution, "low": noise.low, "high": noise.high}
            drawn = javascript(
                node,
                f"return Array.from(g.seededNoise({json.dumps({**contract, 'noise': spec})}, "
                f"{seed}n, 4, {first_row}));",
            )
            expected = noise.seeded(seed, 4, 5, first_row=first_row)
            np.testing.assert_array_equal(np.asarray(drawn, np.float32).reshape(4, 5), expected)
    normal = {"latentDim": 3, "noise": {"distribution": "normal", "low": -1, "high": 1}}
    drawn = javascript(node, f"return Array.from(g.seededNoise({json.dumps(normal)}, 11n, 5, 1));")
    expected = Noise("normal").seeded(11, 5, 3, first_row=1)
    np.testing.assert_allclose(np.asarray(drawn, np.float32).reshape(5, 3), expected, rtol=1e-6)


def test_seeded_rows_do_not_depend_on_where_a_batch_starts():
    noise = Noise()
    whole = noise.seeded(3, 10, 7)
    np.testing.assert_array_equal(whole[4:], noise.seeded(3, 6, 7, first_row=4))
    normal = Noise("normal")
    np.testing.assert_array_equal(normal.seeded(3, 9, 3)[5:], normal.seeded(3, 4, 3, first_row=5))
    assert abs(normal.seeded(1, 2000, 50).std() - 1) < 0.01


def test_javascript_pixels_round_as_python_does(node):
    values = [-1.5, -1.0, -0.99607843, 0.0, 0.003921569, 0.5, 1.0, 2.0]
    pixels = javascript(
        node,
        f"return Array.from(g.toUint8({{outputRange: [-1, 1]}}, "
        f"new Float32Array({json.dumps(values)})));",
    )
    from pipeline.storage.images import to_uint8

    assert pixels == to_uint8(np.asarray(values, np.float32)).tolist()


@pytest.mark.parametrize("variant", ["generator.onnx", "generator-int8.onnx"])
def test_node_draws_what_the_python_sampler_draws(node, exported_model, tmp_path, variant):
    model = exported_model / "models" / variant
    out = tmp_path / "node.npy"
    result = run_node(node, "--model", str(model), "-n", "300", "--seed", "9", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "300 images, seed 9" in result.stdout
    drawn = np.load(out)
    expected = Sampler(model).sample(300, seed=9)  # two of Node's batches of 256
    assert drawn.shape == expected.shape == (300, 28, 28)
    assert np.abs(drawn.astype(int) - expected).max() <= 1
    assert (drawn != expected).mean() < 0.01  # float rounding touches a rare pixel, not many


def test_the_node_png_is_dcgan_samples_png(node, exported_model, tmp_path):
    model = exported_model / "models/generator.onnx"
    args = ["--model", str(model), "-n", "10", "--seed", "4", "--out"]
    run_node(node, *args, str(tmp_path / "n.png"))
    invoke_ok("sample", *args, str(tmp_path / "p.png"))
    with Image.open(tmp_path / "n.png") as node_png, Image.open(tmp_path / "p.png") as python_png:
        assert node_png.mode == python_png.mode == "L"
        difference = np.abs(np.asarray(node_png, int) - np.asarray(python_png, int))
    assert difference.max() <= 1
    pgm = tmp_path / "n.pgm"
    run_node(node, "--model", str(model), "-n", "10", "--seed", "4", "--out", str(pgm))
    with Image.open(pgm) as image, Image.open(tmp_path / "n.png") as png:
        np.testing.assert_array_equal(np.asarray(image), np.asarray(png))


def test_node_draws_a_conditional_models_digit(node, conditional_model, tmp_path):
    model = conditional_model / "models/generator.onnx"
    out = tmp_path / "threes.npy"
    result = run_node(node, "--model", str(model), "-n", "6", "--label", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert np.abs(np.load(out).astype(int) - Sampler(model).sample(6, label=3)).max() <= 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-n", "0"], 2, '-n must be a whole number from 1 to 4096, got "0"'),
        (["--seed=-3"], 2, 'the seed must be a whole number from 0, got "-3"'),
        (["--seed", str(2**64)], 2, "the seed must be below 2^64"),
        (["--out", "x.jpg"], 2, '--out must end in .png, .pgm or .npy, got "x.jpg"'),
        (["--threads", "2048"], 2, "--threads must be a whole number from 0 (onnxruntime"),
        (["--bogus"], 2, "Unknown option '--bogus'"),
        (["--model", "missing.onnx"], 1, "missing.onnx: no such model file"),
        (["--model", "README.md"], 1, "README.md: not an ONNX model"),
        (["--label", "3"], 1, "is an unconditional model: it takes no label"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    node, exported_model, tmp_path, args, code, message
):
    model = ["--model", str(exported_model / "models/generator.onnx")]
    out = tmp_path / "out.png"
    result = run_node(node, *model, "--out", str(out), *args)
    assert result.returncode == code
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith("Error: ") and message in first_line, result.stderr
    assert "    at " not in result.stderr  # no stack trace
    assert list(tmp_path.iterdir()) == []


def test_node_fixes_an_infogan_models_codes(node, infogan_model, tmp_path):
    model = infogan_model / "models/generator.onnx"
    out = tmp_path / "codes.npy"
    codes = ["--code", "category=3", "--code", "c1=0.5"]
    result = run_node(
        node, "--model", str(model), "-n", "6", "--seed", "2", *codes, "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    expected = Sampler(model).sample(6, seed=2, codes={"category": 3, "c1": 0.5})
    assert np.abs(np.load(out).astype(int) - expected).max() <= 1
    drawn = tmp_path / "drawn.npy"  # no codes: the category in turn, the rest from the noise
    run_node(node, "--model", str(model), "-n", "12", "--seed", "2", "--out", str(drawn))
    assert np.abs(np.load(drawn).astype(int) - Sampler(model).sample(12, seed=2)).max() <= 1


@pytest.mark.parametrize("code", ["c2", "category"])
def test_node_sweeps_a_code_as_dcgan_sample_does(node, infogan_model, tmp_path, code):
    model = infogan_model / "models/generator.onnx"
    args = ["--model", str(model), "-n", "3", "--seed", "5", "--sweep", code, "--code", "c1=-0.25"]
    result = run_node(node, *args, "--out", str(tmp_path / "n.png"))
    assert result.returncode == 0, result.stderr
    invoke_ok("sample", *args, "--out", str(tmp_path / "p.png"))
    with Image.open(tmp_path / "n.png") as node_png, Image.open(tmp_path / "p.png") as python_png:
        assert node_png.size == python_png.size == (2 * (2 + 10 * 30), 2 * (2 + 3 * 30))
        difference = np.abs(np.asarray(node_png, int) - np.asarray(python_png, int))
    assert difference.max() <= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--code", "category=10"], 'code category: expected a whole number 0-9, got "10"'),
        (["--code", "c1=1.5"], 'code c1: expected a number in [-1, 1], got "1.5"'),
        (["--code", "c9=0"], "unknown code c9: this model's codes are category, c1, c2"),
        (["--code", "c1"], '--code takes NAME=VALUE (e.g. category=3 or c1=0.5), got "c1"'),
        (["--sweep", "c1", "--code", "c1=0"], "code c1 is swept: do not also fix it"),
        (["--label", "3"], "is an InfoGAN model: it takes codes, not labels"),
    ],
)
def test_bad_codes_are_one_line(node, infogan_model, tmp_path, args, message):
    model = ["--model", str(infogan_model / "models/generator.onnx")]
    result = run_node(node, *model, "--out", str(tmp_path / "out.png"), *args)
    assert result.returncode != 0
    assert message in result.stderr.splitlines()[0], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_npm_test_and_npm_run_sample_work_as_the_readme_says(node, exported_model, tmp_path):
    npm = shutil.which("npm")
    if npm is None:
        unavailable("npm is not installed")
    tested = subprocess.run([npm, "test"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert tested.returncode == 0, tested.stdout[-2000:]
    assert "# fail 0" in tested.stdout  # the package imported by its name, through `exports`
    model, out = exported_model / "models/generator.onnx", tmp_path / "x.npy"
    args = ["run", "--silent", "sample", "--", "--model", str(model), "-n", "5", "--out", str(out)]
    sampled = subprocess.run([npm, *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert sampled.returncode == 0, sampled.stderr
    assert np.abs(np.load(out).astype(int) - Sampler(model).sample(5)).max() <= 1


def test_node_refuses_a_model_whose_output_is_not_finite(node, exported_model, tmp_path):
    damaged = nan_generator(exported_model / "models/generator.onnx", tmp_path / "nan.onnx")
    out = tmp_path / "x.png"
    result = run_node(node, "--model", str(damaged), "-n", "4", "--out", str(out))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {damaged}: the model's output is not finite (NaN or infinity): the file is "
        "damaged or its weights diverged"
    ]
    assert not out.exists()


def test_node_refuses_damaged_weights_and_warns_of_a_model_without_their_digest(
    node, exported_model, tmp_path
):
    source = exported_model / "models/generator.onnx"
    damaged = flipped_weights(source, tmp_path / "flipped.onnx")
    out = tmp_path / "x.npy"
    result = run_node(node, "--model", str(damaged), "-n", "4", "--out", str(out))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {damaged}: its weights do not match the digest in its metadata (the file is "
        "damaged or was edited); export or download it again"
    ]
    assert not out.exists()
    bare = without_metadata(source, tmp_path / "bare.onnx", WEIGHTS_DIGEST)
    result = run_node(node, "--model", str(bare), "-n", "4", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"Warning: {bare}: no {WEIGHTS_DIGEST} in its metadata: its weights are not checked"
    ]
    assert np.abs(np.load(out).astype(int) - Sampler(source).sample(4)).max() <= 1


def test_node_refuses_metadata_claiming_an_absurd_noise_width(node, tmp_path):
    from test_hostile_input import claiming_noise

    model = claiming_noise(tmp_path / "claims.onnx", str(10**12))
    result = run_node(node, "--model", str(model), "--out", str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"Error: {model}: the metadata's noise dimension 1000000000000 is outside 1-65536"
    )


def test_node_refuses_metadata_listing_a_class_beyond_its_integers(
    node, conditional_model, tmp_path
):
    from test_hostile_input import listing_classes

    source = conditional_model / "models/generator.onnx"
    model = listing_classes(source, tmp_path / "classes.onnx", "[99999999999999999999]")
    result = run_node(node, "--model", str(model), "--out", str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"Error: {model}: the metadata's classes must be whole numbers from 0 to 1023, "
        "got [99999999999999999999]"
    )


def test_node_on_a_full_or_read_only_disk_is_one_line_and_leaves_nothing(
    node, exported_model, small_disk
):
    model = str(exported_model / "models/generator.onnx")
    (small_disk / "filler").write_bytes(bytes(7 * 2**20))  # 1 MB left; 4096 digits take 3.2 MB
    out = small_disk / "x.npy"
    result = run_node(node, "--model", model, "-n", "4096", "--out", str(out))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {out}: cannot write: no space left on the device"
    ]
    assert [p.name for p in small_disk.iterdir()] == ["filler"]
    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = run_node(node, "--model", model, "-n", "4", "--out", str(out))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {out}: cannot write: the file system is read-only"
    ]
