"""The light sampler and `dcgan sample`: no TensorFlow, determinism, batching, bad input."""

import json
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_generators import graph_model
from PIL import Image

from conftest import REPO, flipped_weights, invoke, nan_generator, without_metadata
from pipeline.errors import ContractError, ModelOutputError, SamplerError
from pipeline.runtime import model_bytes, traversals
from pipeline.runtime.contract import WEIGHTS_DIGEST
from pipeline.runtime.noise import Noise
from pipeline.runtime.sample_files import save_grid, save_npy
from pipeline.runtime.sampler import Sampler
from pipeline.runtime.traversals import slerp
from pipeline.storage.images import to_uint8


@pytest.fixture(scope="module")
def model_path(exported_model):
    return exported_model / "models/generator.onnx"


@pytest.fixture(scope="module")
def sampler(model_path):
    return Sampler(model_path)


def test_importing_and_sampling_leaves_tensorflow_and_pillow_out(model_path):
    script = f"""
import json, sys
from pipeline.runtime.sampler import Sampler
after_import = sorted(m for m in ("tensorflow", "PIL", "click", "keras") if m in sys.modules)
Sampler({str(model_path)!r}).sample(3)
after_sample = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(json.dumps([after_import, after_sample]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == [[], []]


def test_noise_size_and_distribution_come_from_the_model(sampler):
    assert sampler.noise_dim == 8
    assert sampler.contract.noise == Noise("uniform", -1.0, 1.0)


def test_samples_are_uint8_digits_shaped(sampler):
    images = sampler.sample(5, seed=1)
    assert images.shape == (5, 28, 28)
    assert images.dtype == np.uint8


def test_same_seed_same_bytes_other_seed_other_images(sampler):
    first = sampler.sample(20, seed=7)
    assert sampler.sample(20, seed=7).tobytes() == first.tobytes()
    assert not np.array_equal(sampler.sample(20, seed=8), first)


def test_batches_are_bounded_and_add_up(sampler):
    sizes = [len(batch) for batch in sampler.batches(600, seed=3, batch_size=256)]
    assert sizes == [256, 256, 88]
    together = sampler.sample(600, seed=3, batch_size=256)
    np.testing.assert_array_equal(
        np.concatenate(list(sampler.batches(600, seed=3, batch_size=256))), together
    )


def test_noise_does_not_depend_on_the_batch_size(sampler):
    in_one = sampler.noise(np.random.default_rng(4), 100)
    rng = np.random.default_rng(4)
    in_parts = np.concatenate([sampler.noise(rng, 30), sampler.noise(rng, 70)])
    np.testing.assert_array_equal(in_one, in_parts)


def test_quick_start_draws_the_same_digits(sampler, model_path):
    quick = Sampler(model_path, quick_start=True)
    for count in (1, 300):
        difference = quick.sample(count, seed=4).astype(int) - sampler.sample(count, seed=4)
        assert np.abs(difference).max() <= 1  # float rounding may move a pixel by one level


def test_providers_by_full_or_short_name(model_path, sampler):
    """Only the CPU provider exists here: a CUDA, CoreML or DirectML session is not run."""
    for providers in (["CPUExecutionProvider"], ["cpu"], "CPU"):
        chosen = Sampler(model_path, providers=providers)
        assert chosen.session.get_providers() == ["CPUExecutionProvider"]
        np.testing.assert_array_equal(chosen.sample(4, seed=2), sampler.sample(4, seed=2))


@pytest.mark.parametrize("providers", [["NoSuchExecutionProvider"], ["cpu", "warp-drive"], []])
def test_an_unknown_provider_names_the_available_ones(model_path, providers):
    with pytest.raises(SamplerError, match=r"this onnxruntime has .*CPUExecutionProvider") as info:
        Sampler(model_path, providers=providers)
    assert "\n" not in str(info.value)


def test_the_cli_takes_a_provider_and_refuses_an_unknown_one(model_path, tmp_path):
    out = tmp_path / "cpu.png"
    result = invoke("sample", "--model", str(model_path), "--provider", "cpu", "--out", str(out))
    assert result.exit_code == 0 and out.is_file()
    result = invoke("sample", "--model", str(model_path), "--provider", "cuda", "--out", str(out))
    assert result.exit_code != 0
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert "provider 'cuda' is not available here; this onnxruntime has" in result.output


def test_a_large_npy_is_written_without_holding_it_in_memory(sampler, tmp_path):
    n = 3000  # 2.35 MB of images; a batch of 64 is 50 kB
    tracemalloc.start()
    save_npy(sampler, tmp_path / "many.npy", n, seed=0, batch_size=64)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000
    saved = np.load(tmp_path / "many.npy", mmap_mode="r")
    assert saved.shape == (n, 28, 28)
    np.testing.assert_array_equal(saved[:10], sampler.sample(10, seed=0))
    assert [p.name for p in tmp_path.iterdir()] == ["many.npy"]


def test_wrong_input_rank_is_refused(tmp_path):
    path = graph_model(
        tmp_path / "rank3.onnx",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 2])],
        [helper.make_node("Identity", ["x"], ["y"])],
    )
    with pytest.raises(SamplerError) as caught:
        Sampler(path)
    assert str(caught.value) == (
        f"{path}: not a generator: input 'x' should be float32 (N, noise_dim), "
        "got tensor(float) of shape (N, 8, 2)"
    )


@pytest.mark.parametrize(
    ("label_type", "message"),
    [
        (TensorProto.INT64, "takes a label but its metadata lists no classes"),
        (TensorProto.FLOAT, "input 'label' should be int64 (N,), got tensor(float) of shape (N)"),
    ],
)
def test_a_label_input_needs_int64_and_classes(tmp_path, label_type, message):
    path = graph_model(
        tmp_path / "labelled.onnx",
        [
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 8]),
            helper.make_tensor_value_info("label", label_type, ["N"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        [helper.make_node("Identity", ["z"], ["y"])],
    )
    with pytest.raises(SamplerError) as caught:
        Sampler(path)
    assert str(caught.value).endswith(message)


def test_wrong_output_shape_is_refused(tmp_path):
    path = graph_model(
        tmp_path / "identity.onnx",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        [helper.make_node("Identity", ["z"], ["y"])],
    )
    with pytest.raises(SamplerError) as caught:
        Sampler(path)
    assert str(caught.value) == (
        f"{path}: not a generator: output 'y' should be (N, 28, 28, 1), got (N, 8)"
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.sample(0), "the number of images must be positive, got 0"),
        (lambda s: s.sample(3, seed=-1), r"the seed must be in \[0, 2\*\*64\), got -1"),
        (lambda s: s.sample(3, batch_size=0), "the batch size must be positive, got 0"),
        (lambda s: save_grid(s, "x.png", 5000), "5000 images are too many for one PNG grid"),
        (lambda s: save_npy(s, "x.npy", 0), "the number of images must be positive, got 0"),
    ],
)
def test_bad_requests(sampler, call, message):
    with pytest.raises(SamplerError, match=message):
        call(sampler)


class TestSampleCommand:
    def test_writes_a_png_grid_deterministically(self, model_path, tmp_path):
        for name in ("a.png", "b.png"):
            result = invoke(
                "sample", "--model", str(model_path), "-n", "16", "--out", str(tmp_path / name)
            )
            assert result.exit_code == 0, result.output
            assert result.stdout == f"{tmp_path / name}\n"
        assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
        assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_writes_a_npy(self, model_path, tmp_path, sampler):
        out = tmp_path / "s.npy"
        result = invoke(
            "sample", "--model", str(model_path), "-n", "7", "--seed", "2", "--out", str(out)
        )
        assert result.exit_code == 0, result.output
        np.testing.assert_array_equal(np.load(out), sampler.sample(7, seed=2))

    @pytest.mark.parametrize(
        ("args", "code", "message"),
        [
            (["-n", "0"], 2, "Invalid value for '-n' / '--count': 0 is not in the range x>=1."),
            (
                ["--seed", "-1"],
                2,
                "Invalid value for '--seed': -1 is not in the range 0<=x<=18446744073709551615.",
            ),
            (
                ["--out", "{tmp}/no/such/dir/x.png"],
                2,
                "the folder {tmp}/no/such/dir does not exist",
            ),
            (
                ["--out", "{tmp}/x.jpg"],
                2,
                "x.jpg: the file must end in .png (a grid), .npy or, with --interpolate or --sweep",
            ),
            (
                ["--model", "{tmp}/none.onnx"],
                1,
                "Error: {tmp}/none.onnx: no such model file; `make run` trains and exports one "
                "(or name another with --model)\n",
            ),
            (
                ["--model", "{readme}"],
                1,
                "Error: {readme}: not a usable ONNX model (Failed to load model because protobuf "
                "parsing failed.)\n",
            ),
        ],
    )
    def test_bad_input_is_one_line_and_writes_nothing(
        self, model_path, tmp_path, args, code, message
    ):
        fill = {"tmp": tmp_path, "readme": REPO / "README.md"}
        args = [arg.format(**fill) for arg in args]
        defaults = ["--model", str(model_path), "--out", str(tmp_path / "out.png")]
        result = invoke("sample", *defaults, *args)
        assert result.exit_code == code
        assert message.format(**fill) in result.output
        assert "Traceback" not in result.output
        assert list(tmp_path.iterdir()) == []


def test_make_sample_end_to_end(model_path, tmp_path):
    out = tmp_path / "grid.png"
    started = time.monotonic()
    done = subprocess.run(
        ["make", "-s", "-C", str(REPO), "sample", f"MODEL={model_path}", "N=9", f"OUT={out}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert time.monotonic() - started < 60


def test_slerp_endpoints_norms_and_midpoint():
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    np.testing.assert_array_equal(slerp(start, end, 0.0), start)
    np.testing.assert_allclose(slerp(start, end, 1.0), end, atol=1e-12)
    unit = np.eye(2)
    np.testing.assert_allclose(slerp(unit[:1], unit[1:], 0.5), [[2**-0.5, 2**-0.5]])
    same_norm = (
        end / np.linalg.norm(end, axis=1, keepdims=True) * np.linalg.norm(start, axis=1)[:, None]
    )
    middle = slerp(start, same_norm, 0.37)
    np.testing.assert_allclose(np.linalg.norm(middle, axis=1), np.linalg.norm(start, axis=1))
    np.testing.assert_allclose(slerp(start, 2 * start, 0.5), 1.5 * start)  # parallel: linear


def test_a_walk_passes_exactly_through_its_points(sampler):
    frames = traversals.walk(sampler, 3, seed=5, points=2, steps=4)
    assert frames.shape == (8, 3, 28, 28)
    assert frames.dtype == np.uint8
    stops = sampler.seeded_noise(5, 2 * 3).reshape(2, 3, -1)
    for k, stop in enumerate(stops):
        expected = to_uint8(sampler.generate(stop))[..., 0]
        np.testing.assert_array_equal(frames[4 * k], expected)
    assert len({frame.tobytes() for frame in frames}) > 2  # it moves (the tiny model barely)


def test_dcgan_sample_interpolate_writes_a_gif(model_path, tmp_path):
    out = tmp_path / "walk.gif"
    args = ["-n", "4", "--points", "3", "--steps", "2", "--out", str(out)]
    result = invoke("sample", "--model", str(model_path), "--interpolate", *args)
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert gif.n_frames == 6
    for wrong in (["--out", str(tmp_path / "x.gif")], ["--interpolate", "--out", "x.png"]):
        result = invoke("sample", "--model", str(model_path), *wrong)
        assert result.exit_code == 2
        assert (
            "a .gif needs --interpolate or --sweep, and --interpolate writes a .gif"
            in result.output
        )
    result = invoke(
        "sample", "--model", str(model_path), "--interpolate", "--points", "1", "--out", str(out)
    )
    assert result.exit_code == 1
    assert "a walk needs at least 2 points and 1 step, got 1, 12" in result.output


def test_a_model_whose_output_is_not_finite_is_an_error_not_a_grid(exported_model, tmp_path):
    damaged = nan_generator(exported_model / "models/generator.onnx", tmp_path / "nan.onnx")
    with pytest.raises(ModelOutputError, match=r"nan.onnx: the model's output is not finite"):
        Sampler(damaged).sample(4)
    out = tmp_path / "x.png"
    result = invoke("sample", "--model", str(damaged), "-n", "4", "--out", str(out))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {damaged}: the model's output is not finite (NaN or infinity): the file is "
        "damaged or its weights diverged; export it again"
    ]
    assert not out.exists()


def test_flipped_weight_bytes_are_refused_in_one_line(exported_model, tmp_path):
    """onnx.checker and onnxruntime run such a file and draw noise; its digest tells."""
    import onnx

    source = exported_model / "models/generator.onnx"
    damaged = flipped_weights(source, tmp_path / "flipped.onnx")
    onnx.checker.check_model(str(damaged))  # what the digest is for: the checker passes it
    message = (
        f"{damaged}: its weights do not match the digest in its metadata (the file is damaged "
        "or was edited); export or download it again"
    )
    with pytest.raises(ContractError) as caught:
        Sampler(damaged)
    assert str(caught.value) == message
    out = tmp_path / "x.png"
    result = invoke("sample", "--model", str(damaged), "-n", "4", "--out", str(out))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {message}"]
    assert not out.exists()
    served = invoke("serve", "--model", str(damaged), "--port", "0")
    assert served.exit_code == 1
    assert served.output.strip().splitlines() == [f"Error: {message}"]


def test_every_exported_model_carries_the_digest_of_its_graph(exported_model):
    for name in ("generator.onnx", "generator-int8.onnx"):
        data = (exported_model / "models" / name).read_bytes()
        assert model_bytes.metadata(data)[WEIGHTS_DIGEST] == model_bytes.weights_digest(data)


def test_a_model_without_a_digest_loads_with_a_warning(exported_model, tmp_path, caplog):
    source = exported_model / "models/generator.onnx"
    bare = without_metadata(source, tmp_path / "bare.onnx", WEIGHTS_DIGEST)
    with caplog.at_level("WARNING"):
        sampled = Sampler(bare).sample(3, seed=5)
    assert f"{bare}: no {WEIGHTS_DIGEST} in its metadata: its weights are not checked" in (
        caplog.text
    )
    assert np.array_equal(sampled, Sampler(source).sample(3, seed=5))


def test_the_digest_covers_the_graph_and_not_the_metadata():
    """Hand-made protobuf: field 7 (length-delimited) is what is hashed, field 14 is read as
    the metadata, other fields are skipped whatever their wire type."""
    import hashlib

    graph = b"\x0a\x03abc"
    entry = b"\x0a\x01k\x12\x01v"
    fields = [b"\x08\x07", b"\x3a", bytes([len(graph)]), graph, b"\x72", bytes([len(entry)])]
    model = b"".join(fields) + entry
    assert model_bytes.weights_digest(model) == hashlib.sha256(graph).hexdigest()
    assert model_bytes.metadata(model) == {"k": "v"}
    with pytest.raises(ContractError, match="a field runs past the end"):
        model_bytes.weights_digest(model[:-1])
