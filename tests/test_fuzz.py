"""Fuzzing with hypothesis: whatever the bytes, params or arguments, only the project's own
clear errors come out, never a traceback."""

import json
import string
from pathlib import Path

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
from pipeline.runtime.sampler import Sampler
from pipeline.storage.idx import parse_idx

# Every example also shows up in the counts the reliability table quotes.
EXAMPLES = 300
REPO = Path(__file__).resolve().parent.parent


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


QUERY_PIECES = ["n=", "n=4", "seed=", "seed=7", "label=", "label=3", "format=npy", "format=x"]
QUERY_PIECES += ["&", "=", "%", "%zz", "%00", ";", "+", "n=1&n=2", "x=1", "é", "\x00"]
queries = (
    st.text(max_size=80)
    | st.lists(st.sampled_from(QUERY_PIECES), max_size=50).map("&".join)
    | st.integers(0, 60).map(lambda count: "&".join(f"a{i}=1" for i in range(count)))
)


@pytest.fixture(scope="module")
def api(model_path, tmp_path_factory):
    from pipeline.serving.api import Api

    return Api.load(model_path, tmp_path_factory.mktemp("no-family-models"))


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    route=st.sampled_from(["sample", "contract", "classify", "encode", "nothing", ""]),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    query=queries,
    body=st.none() | st.binary(max_size=40),
)
def test_the_api_answers_any_request_with_an_image_or_a_json_4xx(api, route, method, query, body):
    """Whatever the route, query string and body: a 200 or a 4xx whose JSON says why in one
    line; never an exception (the server's empty reply)."""
    reply = api.handle(method, route, query, body)
    assert reply.status == 200 or 400 <= reply.status < 500, reply
    if reply.status != 200:
        message = json.loads(reply.body)["error"]
        assert message and "\n" not in message


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    overrides=st.lists(
        st.text(max_size=30)
        | st.builds(
            "{}.{}={}".format,
            st.sampled_from(["train", "export", "evaluate", "nothing", ""]),
            st.sampled_from(["batch_size", "epochs", "opset", "samples", "loss", "x.y", ""]),
            st.text(max_size=12) | st.integers(-5, 10**12).map(str),
        ),
        max_size=3,
    )
)
def test_any_set_value_is_accepted_or_one_line(overrides):
    """`dcgan exp`'s -S values over the repository's params.yaml and preset: accepted, or a
    `ConfigError` of one line, before DVC is called."""
    from pipeline.presets import check_overrides, read_preset

    preset = read_preset(REPO, "lsgan")
    try:
        check_overrides(REPO / "params.yaml", preset, overrides)
    except ConfigError as error:
        assert "\n" not in str(error)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    head=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\x93NUMPY", b"\x93NUMPY\x01\x00", b""]),
    rest=st.binary(max_size=120),
)
def test_image_and_array_bytes_give_images_or_one_line(head, rest):
    from pipeline.errors import PipelineError
    from pipeline.runtime.image_files import decode_images

    try:
        images = decode_images(head + rest, "the body")
    except PipelineError as error:
        assert str(error).startswith("the body") and "\n" not in str(error)
    else:
        assert images.ndim == 3 and images.shape[1:] == (28, 28) and len(images)


metadata_values = st.text(max_size=30) | st.sampled_from(
    ["96", "0", "-1", "1e9", "99999999999999999999", "uniform", "normal", "[0, 1]", "[]", "nan"]
)


@settings(max_examples=100, deadline=None)
@given(
    metadata=st.dictionaries(
        st.sampled_from(
            ["model", "noise_dim", "noise_distribution", "noise_low", "noise_high", "classes"]
        ),
        metadata_values,
        max_size=6,
    ),
    width=st.sampled_from([8, "N"]),
    label=st.booleans(),
)
def test_any_generator_metadata_gives_a_contract_or_one_line(metadata, width, label):
    """A real ONNX model (a linear map of the noise to an image) with arbitrary metadata and a
    fixed or open noise width, with or without a label input, opened by the sampler."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from pipeline.errors import ContractError
    from pipeline.runtime import contract

    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", width])]
    if label:
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]))
    weights = numpy_helper.from_array(np.zeros((8, 784), np.float32), "w")
    shape = numpy_helper.from_array(np.array([-1, 28, 28, 1], np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["z", "w"], ["flat"]),
        helper.make_node("Reshape", ["flat", "shape"], ["images"]),
    ]
    output = [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 28, 28, 1])]
    graph = helper.make_graph(nodes, "g", inputs, output, [weights, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    try:
        read = contract.read(session, "g.onnx")
    except ContractError as error:
        assert str(error).startswith("g.onnx: ") and "\n" not in str(error)
    else:
        assert 0 < read.noise_dim <= contract.MAX_NOISE_DIM


@pytest.fixture(scope="module")
def served_api(model_path, tmp_path_factory):
    """`dcgan serve`'s server with its API, in this process on 127.0.0.1."""
    from pipeline.serving import serve as web
    from pipeline.serving.api import Api

    api = Api.load(model_path, tmp_path_factory.mktemp("no-family-models"))
    server = web.make_server(web.Site.build([model_path], api), "127.0.0.1", 0, timeout=2)
    web.serve_in_background(server)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


header_text = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=40)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "HEAD", "BREW", "", "get"]),
    target=st.sampled_from(["/", "/api/sample?n=2", "/api/classify", "/models.json", "*"])
    | header_text,
    version=st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/9.9", "", "HTTP/1.1 x"]),
    headers=st.lists(st.tuples(header_text, header_text), max_size=6),
    length=st.sampled_from(["exact", "none", "huge"]) | header_text,
    body=st.binary(max_size=40),
)
def test_any_request_on_the_wire_gets_an_answer_and_an_error_as_json(
    served_api, method, target, version, headers, length, body
):
    """Arbitrary request lines, header lines and Content-Length values sent raw to the real
    server: an HTTP answer always (never an empty reply), and every refusal a JSON error, from
    the API or from the HTTP layer itself."""
    import socket

    request_line = f"{method} {target} {version}".strip()
    if not request_line.split():
        return  # no request at all (a blank line): the server hangs up, as HTTP lets it
    lines = [request_line]
    lines += [f"{name}: {value}" for name, value in headers]
    if length == "exact":
        lines.append(f"Content-Length: {len(body)}")
    elif length == "huge":
        lines.append("Content-Length: 99999999999")
    elif length != "none":
        if length.strip().isascii() and length.strip().isdigit():
            return  # a body announced and not sent: the client stalls, and is cut
        lines.append(f"Content-Length: {length}")
    if any("content-length" in name.lower() for name, _ in headers):
        return  # the same: a length the body may not match
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection(("127.0.0.1", served_api), timeout=10) as client:
        client.sendall(raw)
        client.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := client.recv(65536):
            reply += chunk
    assert reply, raw[:200]
    if not reply.startswith(b"HTTP/"):  # HTTP/0.9: a request line without a version
        return
    head, _, payload = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status >= 400 and method != "HEAD" and payload:
        message = json.loads(payload.decode())["error"]
        assert message and "\n" not in message


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    content=st.dictionaries(
        st.sampled_from(["train", "export", "runs", "targets", "evaluate", "other"]),
        st.dictionaries(
            st.sampled_from(["epochs", "model", "loss", "opset", "frechet_distance", "x"]),
            yaml_values,
            max_size=3,
        )
        | yaml_values,
        max_size=4,
    )
    | yaml_values,
    text=st.none() | st.text(max_size=60),
)
def test_any_preset_file_is_a_preset_or_one_line(tmp_path_factory, content, text):
    """A preset file of any YAML (or any text): a `Preset`, or a `ConfigError` of one line
    naming the file, read over the repository's params.yaml."""
    from pipeline.presets import PRESETS_DIR, read_preset

    root = tmp_path_factory.mktemp("presets")
    (root / PRESETS_DIR).mkdir()
    written = text if text is not None else yaml.safe_dump(content)
    (root / PRESETS_DIR / "any.yaml").write_text(written, encoding="utf-8")
    try:
        read_preset(root, "any", REPO / "params.yaml")
    except ConfigError as error:
        assert "\n" not in str(error) and "any.yaml" in str(error)
