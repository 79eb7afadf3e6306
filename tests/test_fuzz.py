"""Fuzzing with hypothesis: whatever the bytes, params or arguments, only the project's own
clear errors come out, never a traceback."""

import string

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import encode_idx, invoke
from pipeline.config import (
    BenchmarkConfig,
    EvaluateConfig,
    ExportConfig,
    TrainConfig,
    checks,
    load_benchmark_config,
    load_evaluate_config,
    load_export_config,
    load_train_config,
)
from pipeline.errors import ConfigError, DataFormatError, SamplerError
from pipeline.runtime.idx import parse_idx
from pipeline.runtime.sampler import Sampler

# Every example also shows up in the counts the reliability table quotes.
EXAMPLES = 300


def idx_like():
    """Valid IDX files, then some of their bytes changed or cut: closer to real corruption
    than uniform noise, which almost never gets past the magic number."""
    arrays = (
        st.integers(1, 3)
        .flatmap(lambda rank: st.lists(st.integers(0, 4), min_size=rank, max_size=rank))
        .map(lambda shape: np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape))
    )
    return st.tuples(arrays.map(encode_idx), st.data())


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=64))
def test_idx_reader_on_arbitrary_bytes(data):
    try:
        array = parse_idx(data)
    except DataFormatError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(array, np.ndarray)


@settings(max_examples=EXAMPLES, deadline=None)
@given(idx_like())
def test_idx_reader_on_damaged_idx_files(case):
    valid, data = case
    damaged = bytearray(valid)
    for _ in range(data.draw(st.integers(0, 3))):
        if damaged:
            damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    damaged = bytes(damaged[: data.draw(st.integers(0, len(damaged)))])
    try:
        array = parse_idx(damaged, "x.idx")
    except DataFormatError as error:
        assert str(error).startswith("x.idx: ")
    else:
        assert array.size * array.itemsize + 4 + 4 * array.ndim == len(damaged)


SECTIONS = {
    "train": (checks(TrainConfig), load_train_config),
    "export": (checks(ExportConfig), load_export_config),
    "benchmark": (checks(BenchmarkConfig), load_benchmark_config),
    "evaluate": (checks(EvaluateConfig), load_evaluate_config),
}
yaml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(string.printable, max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    section=st.sampled_from(sorted(SECTIONS)),
    data=st.data(),
)
def test_params_with_wrong_types_and_values(tmp_path, section, data):
    checks, load = SECTIONS[section]
    key = data.draw(st.sampled_from(sorted(checks)))
    value = data.draw(yaml_values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({section: {key: value}}))
    try:
        load(path)
    except ConfigError as error:
        message = str(error)
        assert "\n" not in message
        assert f"{section}.{key}" in message
    # A value that passes is a valid setting: nothing to check beyond not crashing.


@pytest.fixture(scope="module")
def model_path(exported_model):
    return exported_model / "models/generator.onnx"


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(-5, 300) | st.text(max_size=6),
    seed=st.integers(-(2**70), 2**70) | st.text(max_size=6),
    out=st.sampled_from(["a.png", "b.npy", "c.txt", "no/such/folder/x.png", "", ".", "/"])
    | st.text(string.ascii_letters + "./-_ ", max_size=20),
)
def test_dcgan_sample_with_arbitrary_arguments(model_path, tmp_path_factory, count, seed, out):
    folder = tmp_path_factory.mktemp("sample")
    target = str(folder / out) if out and not out.startswith("/") else out
    result = invoke(
        "sample", "--model", str(model_path), "-n", str(count), "--seed", str(seed), "--out", target
    )
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert result.output.strip().splitlines()[-1].startswith("Error: ")


@settings(max_examples=100, deadline=None)
@given(
    count=st.integers(-3, 600),
    seed=st.integers(-(2**70), 2**70),
    batch_size=st.integers(-2, 300),
)
def test_the_sampler_api_with_arbitrary_numbers(model_path, count, seed, batch_size):
    sampler = Sampler(model_path)
    try:
        images = sampler.sample(count, seed=seed, batch_size=batch_size)
    except SamplerError as error:
        assert "\n" not in str(error)
        assert count <= 0 or not 0 <= seed < 2**64 or batch_size <= 0
    else:
        assert images.shape == (count, 28, 28)
        assert images.dtype == np.uint8


@settings(max_examples=60, deadline=None)
@given(
    label=st.integers(-(2**70), 2**70) | st.integers(-3, 13) | st.text(max_size=4),
    labels=st.sampled_from([None, "all", "ALL", ""]),
    count=st.integers(1, 40),
)
def test_dcgan_sample_with_arbitrary_labels(
    conditional_model, tmp_path_factory, label, labels, count
):
    """On a conditional model: exit 0 exactly for a digit 0-9 (or `--labels all` alone)."""
    out = tmp_path_factory.mktemp("labels") / "x.png"
    args = ["sample", "--model", str(conditional_model / "models/generator.onnx")]
    args += ["-n", str(count), "--label", str(label), "--out", str(out)]
    if labels is not None:
        args += ["--labels", labels]
    result = invoke(*args)
    assert "Traceback" not in result.output
    try:
        number = int(str(label))  # what click makes of it: " 7", "+7" and "0_7" are 7
    except ValueError:
        number = None
    valid = number in range(10) and labels is None
    assert (result.exit_code == 0) == valid, result.output
    if not valid:
        assert result.exit_code in (1, 2)
        assert result.output.strip().splitlines()[-1].startswith("Error: ")
        assert not out.exists()
