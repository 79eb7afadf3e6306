"""The contract read from and written to model files, on tiny ONNX generators made here:
every metadata text and every refusal a consumer can meet, word for word."""

import json

import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx_generators import PROVENANCE, generator, graph_model

from pipeline.errors import ContractError
from pipeline.runtime import contract
from pipeline.runtime.contract import GeneratorContract, Provenance
from pipeline.runtime.noise import Noise

INFOGAN = GeneratorContract(4, categorical_codes=3, continuous_codes=2, code_meanings='{"c1":1}')


def read(path):
    return contract.read(ort.InferenceSession(str(path)), path)


def value(name, kind, shape):
    return helper.make_tensor_value_info(name, kind, shape)


@pytest.mark.parametrize(
    "terms",
    [
        GeneratorContract(4),
        GeneratorContract(4, Noise("normal"), classes=(3, 5, 7)),
        INFOGAN,
        GeneratorContract(4, Noise("uniform", -2.0, 0.5), categorical_codes=2),
    ],
)
def test_a_model_reads_back_as_the_contract_it_was_written_with(tmp_path, terms):
    assert read(generator(tmp_path / "g.onnx", terms)) == terms


def test_a_dynamic_noise_width_is_read_from_the_metadata(tmp_path):
    path = generator(tmp_path / "g.onnx", GeneratorContract(4), dynamic_noise=True)
    assert read(path).noise_dim == 4


def test_an_infogan_noise_width_is_read_from_the_metadata_too(tmp_path):
    path = generator(tmp_path / "g.onnx", INFOGAN, dynamic_noise=True)
    assert read(path) == INFOGAN


def test_a_model_without_metadata_gets_the_training_noise(tmp_path):
    path = generator(tmp_path / "g.onnx", GeneratorContract(4), metadata={})
    assert read(path) == GeneratorContract(4)


def unconditional_metadata(**changes):
    metadata = GeneratorContract(4).metadata(PROVENANCE, opset=17, export_code_revision="r")
    return {**metadata, **changes}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"noise_dim": "0"}, "the metadata's noise dimension 0 is outside 1-65536"),
        ({"noise_dim": "65537"}, "the metadata's noise dimension 65537 is outside 1-65536"),
        ({"noise_dim": "9" * 30}, f"the metadata's noise dimension {'9' * 20} is outside 1-65536"),
        ({"noise_dim": "four"}, "the noise dimension is neither fixed nor in the metadata"),
        ({"noise_dim": ""}, "the noise dimension is neither fixed nor in the metadata"),
        ({"noise_distribution": "beta"}, "unknown noise distribution 'beta'"),
        ({"noise_low": "low"}, "unreadable noise range in the metadata"),
        ({"noise_high": "high"}, "unreadable noise range in the metadata"),
    ],
)
def test_metadata_a_consumer_cannot_use_is_refused(tmp_path, metadata, message):
    path = generator(
        tmp_path / "g.onnx",
        GeneratorContract(4),
        metadata=unconditional_metadata(**metadata),
        dynamic_noise=True,
    )
    with pytest.raises(ContractError) as caught:
        read(path)
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize("width", [1, 65536])
def test_the_smallest_and_largest_declared_widths_are_accepted(tmp_path, width):
    path = generator(
        tmp_path / "g.onnx",
        GeneratorContract(4),
        metadata=unconditional_metadata(noise_dim=str(width)),
        dynamic_noise=True,
    )
    assert read(path).noise_dim == width


def test_a_noise_range_is_read_from_the_metadata(tmp_path):
    metadata = unconditional_metadata(noise_distribution="normal", noise_low="-3.5", noise_high="2")
    path = generator(tmp_path / "g.onnx", GeneratorContract(4), metadata=metadata)
    assert read(path).noise == Noise("normal", -3.5, 2.0)


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (None, "takes a label but its metadata lists no classes"),
        ("[]", "takes a label but its metadata lists no classes"),
        ("not json", "takes a label but its metadata lists no classes"),
        ('[["a"]]', 'the metadata\'s classes must be whole numbers from 0 to 1023, got [["a"]]'),
    ],
)
def test_a_label_input_needs_classes_in_the_metadata(tmp_path, classes, message):
    terms = GeneratorContract(4, classes=(0, 1))
    metadata = terms.metadata(PROVENANCE, opset=17, export_code_revision="r")
    metadata.pop("classes")
    if classes is not None:
        metadata["classes"] = classes
    path = generator(tmp_path / "g.onnx", terms, metadata=metadata)
    with pytest.raises(ContractError) as caught:
        read(path)
    assert str(caught.value) == f"{path}: {message}"


def test_class_numbers_written_as_text_are_read_as_integers(tmp_path):
    terms = GeneratorContract(4, classes=(0, 1))
    metadata = terms.metadata(PROVENANCE, opset=17, export_code_revision="r")
    path = generator(tmp_path / "g.onnx", terms, metadata={**metadata, "classes": '["0", "1"]'})
    assert read(path).classes == (0, 1)


NOISE = value("z", TensorProto.FLOAT, ["N", 4])
IMAGES = value("images", TensorProto.FLOAT, ["N", 28, 28, 1])


def passthrough(inputs, output=IMAGES):
    """Nodes that make `output` from the first input with a shape computed from its values,
    so onnxruntime keeps the declared output shape (nothing to infer it from)."""
    dims = [size if isinstance(size, int) else 2 for size in contract_shape(output)]
    target = helper.make_tensor("target_value", TensorProto.FLOAT, [len(dims)], dims)
    return [
        helper.make_node("Constant", [], ["target"], value=target),
        helper.make_node("Cast", [inputs[0].name], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["as_float"], ["largest"], keepdims=0),
        helper.make_node("Sub", ["largest", "largest"], ["nothing"]),
        helper.make_node("Add", ["target", "nothing"], ["float_shape"]),
        helper.make_node("Cast", ["float_shape"], ["shape"], to=TensorProto.INT64),
        helper.make_node("Expand", ["nothing", "shape"], [output.name]),
    ]


def contract_shape(info):
    return [
        d.dim_value if d.HasField("dim_value") else d.dim_param
        for d in info.type.tensor_type.shape.dim
    ]


@pytest.mark.parametrize(
    ("inputs", "output", "message"),
    [
        (
            [NOISE, value("label", TensorProto.INT64, ["N"]), value("x", TensorProto.FLOAT, ["N"])],
            IMAGES,
            "not a generator: expected the inputs z (and label), got z, label, x",
        ),
        (
            [value("z", TensorProto.DOUBLE, ["N", 4])],
            IMAGES,
            "not a generator: input 'z' should be float32 (N, noise_dim), got tensor(double) "
            "of shape (N, 4)",
        ),
        (
            [NOISE, value("label", TensorProto.INT64, ["N", 1])],
            IMAGES,
            "not a generator: input 'label' should be int64 (N,), got tensor(int64) of shape "
            "(N, 1)",
        ),
        (
            [NOISE],
            value("images", TensorProto.FLOAT, ["N", 28, 28]),
            "not a generator: output 'images' should be (N, 28, 28, 1), got (N, 28, 28)",
        ),
        (
            [NOISE],
            value("images", TensorProto.FLOAT, ["N", 28, 27, 1]),
            "not a generator: output 'images' should be (N, 28, 28, 1), got (N, 28, 27, 1)",
        ),
        (
            [NOISE],
            value("images", TensorProto.FLOAT, ["N", 28, "W", 2]),
            "not a generator: output 'images' should be (N, 28, 28, 1), got (N, 28, W, 2)",
        ),
    ],
)
def test_a_graph_that_is_not_a_generator_is_refused(tmp_path, inputs, output, message):
    metadata = {"classes": "[0, 1]"}
    path = graph_model(tmp_path / "g.onnx", inputs, [output], passthrough(inputs, output), metadata)
    with pytest.raises(ContractError) as caught:
        read(path)
    assert str(caught.value) == f"{path}: {message}"


def test_an_output_of_unnamed_sizes_is_accepted(tmp_path):
    output = value("images", TensorProto.FLOAT, ["N", "H", "W", "C"])
    path = graph_model(tmp_path / "g.onnx", [NOISE], [output], passthrough([NOISE], output))
    assert read(path) == GeneratorContract(4)


CATEGORICAL = value("code_categorical", TensorProto.INT64, ["N"])
CONTINUOUS = value("code_continuous", TensorProto.FLOAT, ["N", 2])


@pytest.mark.parametrize(
    ("inputs", "metadata", "message"),
    [
        (
            [NOISE, CATEGORICAL, value("x", TensorProto.FLOAT, ["N", 2])],
            {"categorical_codes": "3"},
            "not a generator: expected the inputs z, code_categorical, code_continuous, got z, "
            "code_categorical, x",
        ),
        (
            [NOISE, CATEGORICAL, CONTINUOUS, value("x", TensorProto.FLOAT, ["N"])],
            {"categorical_codes": "3"},
            "not a generator: expected the inputs z, code_categorical, code_continuous, got z, "
            "code_categorical, code_continuous, x",
        ),
        (
            [NOISE, value("code_categorical", TensorProto.FLOAT, ["N"])],
            {"categorical_codes": "3"},
            "input 'code_categorical' should be int64 (N,), got tensor(float) of shape (N)",
        ),
        (
            [NOISE, value("code_categorical", TensorProto.INT64, ["N", 1])],
            {"categorical_codes": "3"},
            "input 'code_categorical' should be int64 (N,), got tensor(int64) of shape (N, 1)",
        ),
        ([NOISE, CATEGORICAL], {}, "takes a categorical code but its metadata has no count"),
        (
            [NOISE, CATEGORICAL],
            {"categorical_codes": "three"},
            "takes a categorical code but its metadata has no count",
        ),
        (
            [NOISE, CATEGORICAL],
            {"categorical_codes": "1"},
            "takes a categorical code but its metadata has no count",
        ),
        (
            [NOISE, CATEGORICAL, value("code_continuous", TensorProto.INT64, ["N", 2])],
            {"categorical_codes": "3"},
            "input 'code_continuous' should be float32 (N, C), got tensor(int64) of shape (N, 2)",
        ),
        (
            [NOISE, CATEGORICAL, value("code_continuous", TensorProto.FLOAT, ["N"])],
            {"categorical_codes": "3"},
            "input 'code_continuous' should be float32 (N, C), got tensor(float) of shape (N)",
        ),
        (
            [NOISE, CATEGORICAL, value("code_continuous", TensorProto.FLOAT, ["N", "C"])],
            {"categorical_codes": "3"},
            "input 'code_continuous' should be float32 (N, C), got tensor(float) of shape (N, C)",
        ),
        (
            [value("z", TensorProto.FLOAT, ["N"]), CATEGORICAL],
            {"categorical_codes": "3"},
            "not a generator: input 'z' should be float32 (N, noise_dim), got tensor(float) of "
            "shape (N)",
        ),
    ],
)
def test_an_infogan_graph_that_breaks_the_contract_is_refused(tmp_path, inputs, metadata, message):
    path = graph_model(tmp_path / "g.onnx", inputs, [IMAGES], passthrough(inputs), metadata)
    with pytest.raises(ContractError) as caught:
        read(path)
    assert str(caught.value) == f"{path}: {message}"


def test_an_infogan_output_is_checked_too(tmp_path):
    output = value("images", TensorProto.FLOAT, ["N", 28, 28, 3])
    inputs = [NOISE, CATEGORICAL]
    path = graph_model(
        tmp_path / "g.onnx",
        inputs,
        [output],
        passthrough(inputs, output),
        {"categorical_codes": "2"},
    )
    with pytest.raises(ContractError) as caught:
        read(path)
    assert str(caught.value).startswith(f"{path}: not a generator: output 'images' should be")


def test_an_infogan_noise_distribution_is_checked_too(tmp_path):
    inputs = [NOISE, CATEGORICAL]
    metadata = {"categorical_codes": "2", "noise_distribution": "beta"}
    path = graph_model(tmp_path / "g.onnx", inputs, [IMAGES], passthrough(inputs), metadata)
    with pytest.raises(ContractError) as caught:
        read(path)
    assert str(caught.value) == f"{path}: unknown noise distribution 'beta'"


def test_an_infogan_model_reads_its_codes_and_meanings(tmp_path):
    inputs = [NOISE, CATEGORICAL, CONTINUOUS]
    metadata = {"categorical_codes": "12", "code_meanings": "{}", "noise_distribution": "normal"}
    path = graph_model(tmp_path / "g.onnx", inputs, [IMAGES], passthrough(inputs), metadata)
    assert read(path) == GeneratorContract(
        4, Noise("normal"), categorical_codes=12, continuous_codes=2, code_meanings="{}"
    )


class TestContractTerms:
    def test_input_and_code_names(self):
        assert GeneratorContract(4).input_names == ["z"]
        assert GeneratorContract(4, classes=(1,)).input_names == ["z", "label"]
        assert INFOGAN.input_names == ["z", "code_categorical", "code_continuous"]
        categorical_only = GeneratorContract(4, categorical_codes=2)
        assert categorical_only.input_names == ["z", "code_categorical"]
        assert INFOGAN.code_names == ("category", "c1", "c2")
        assert GeneratorContract(4).code_names == ()
        assert (INFOGAN.latent_dim, GeneratorContract(4, classes=(1,)).latent_dim) == (6, 4)
        assert (INFOGAN.infogan, INFOGAN.conditional) == (True, False)
        one_code = GeneratorContract(4, categorical_codes=1)
        assert one_code.infogan and not GeneratorContract(4).infogan

    def test_provenance_metadata_is_text_with_sorted_json_params(self):
        provenance = Provenance("mnist", "ab", {"z": 1, "a": [2]}, 7, "rev")
        assert provenance.metadata() == {
            "dataset": "mnist",
            "train_images_sha256": "ab",
            "train_params": '{"a": [2], "z": 1}',
            "train_steps": "7",
            "train_code_revision": "rev",
        }

    def test_unconditional_metadata(self):
        metadata = GeneratorContract(4).metadata(PROVENANCE, opset=17, export_code_revision="r")
        assert metadata == {
            "model": "dcgan-generator",
            "noise_dim": "4",
            "noise_distribution": "uniform",
            "noise_low": "-1.0",
            "noise_high": "1.0",
            "input": "z: float32 (N, 4), N dynamic",
            "output": "images: float32 (N, 28, 28, 1), NHWC, one grey channel",
            "output_range": contract.OUTPUT_RANGE_NOTE,
            **PROVENANCE.metadata(),
            "export_code_revision": "r",
            "opset": "17",
            "graph": contract.GRAPH_NOTE,
        }
        assert list(metadata) == [key for key in contract.METADATA if key in metadata]

    def test_conditional_metadata(self):
        terms = GeneratorContract(4, classes=(3, 5))
        metadata = terms.metadata(PROVENANCE, opset=17, export_code_revision="r")
        assert metadata["classes"] == "[3, 5]"
        assert metadata["input"] == (
            "z: float32 (N, 4), N dynamic; label: int64 (N,), the class of each image, one of "
            "`classes`; optional label_mix: float32 (rows, 2), default the identity: image i "
            "is drawn with the class embeddings weighted by row label[i] (feed rows such as "
            "(1 - t) on one class and t on another, and labels indexing them, to morph)"
        )
        assert "categorical_codes" not in metadata

    def test_infogan_metadata(self):
        metadata = INFOGAN.metadata(PROVENANCE, opset=17, export_code_revision="r")
        assert {k: metadata[k] for k in ("categorical_codes", "continuous_codes")} == {
            "categorical_codes": "3",
            "continuous_codes": "2",
        }
        assert metadata["continuous_code_range"] == "[-1.0, 1.0]"
        assert metadata["code_meanings"] == '{"c1":1}'
        assert metadata["input"] == (
            "z: float32 (N, 4), N dynamic; code_categorical: int64 (N,), the categorical code, "
            "0 to 2; code_continuous: float32 (N, 2), the continuous codes, each in [-1, 1]"
        )
        assert "classes" not in metadata

    def test_infogan_metadata_without_continuous_codes_or_meanings(self):
        terms = GeneratorContract(4, categorical_codes=2)
        metadata = terms.metadata(PROVENANCE, opset=17, export_code_revision="r")
        assert metadata["continuous_codes"] == "0"
        assert "continuous_code_range" not in metadata and "code_meanings" not in metadata
        assert metadata["input"].endswith("the categorical code, 0 to 1")

    def test_the_contract_as_an_api_answer(self):
        assert INFOGAN.as_json() == {
            "model": "dcgan-generator",
            "noise_dim": 4,
            "noise": {"distribution": "uniform", "low": -1.0, "high": 1.0},
            "classes": [],
            "codes": {
                "category": [0, 1, 2],
                "continuous": {"c1": [-1.0, 1.0], "c2": [-1.0, 1.0]},
                "meanings": {"c1": 1},
            },
            "image_shape": [28, 28, 1],
            "output_range": [-1.0, 1.0],
        }
        plain = GeneratorContract(4, classes=(1, 2)).as_json()
        assert (plain["codes"], plain["classes"]) == (None, [1, 2])
        unmeasured = GeneratorContract(4, categorical_codes=2).as_json()["codes"]
        assert unmeasured == {"category": [0, 1], "continuous": {}, "meanings": None}

    def test_the_description_for_the_export_stage(self):
        described = INFOGAN.description(PROVENANCE, "mixed_bfloat16")
        assert described == {
            "noise_dim": 4,
            "noise": {"distribution": "uniform", "low": -1.0, "high": 1.0},
            "classes": None,
            "categorical_codes": 3,
            "continuous_codes": 2,
            "code_meanings": '{"c1":1}',
            "output": {"shape": ["N", 28, 28, 1], "range": [-1.0, 1.0], "layout": "NHWC"},
            "provenance": {
                "dataset": "mnist",
                "train_images_sha256": "0" * 64,
                "train_params": {"noise_dim": 4},
                "train_steps": 7,
                "train_code_revision": "abc123",
            },
            "precision": "mixed_bfloat16",
        }
        assert GeneratorContract.from_description(json.loads(json.dumps(described))) == (
            INFOGAN,
            PROVENANCE,
        )

    def test_a_short_description_reads_with_defaults(self):
        terms, _ = GeneratorContract.from_description(
            {
                "noise_dim": "4",
                "noise": {"distribution": "normal", "low": -1.0, "high": 1.0},
                "classes": ["1", 2],
                "provenance": PROVENANCE.__dict__,
            }
        )
        assert terms == GeneratorContract(4, Noise("normal"), classes=(1, 2))


class TestOtherModels:
    def test_what_a_file_says_it_is(self):
        assert contract.kind_of({"model": "ssl-classifier"}) == "ssl-classifier"
        assert contract.kind_of({}) is None

    def test_classifier_metadata(self):
        provenance = Provenance("mnist", "ab", {"labelled_per_class": 10, "label_seed": 3}, 5, "r")
        assert contract.classifier_metadata(provenance, "average") == {
            "model": "ssl-classifier",
            "role": "average",
            "input": "images: float32 (N, 28, 28, 1), NHWC, one grey channel, N dynamic",
            "input_range": "[-1, 1]; from uint8 pixels p: p / 127.5 - 1",
            "output": "probabilities: float32 (N, 10), the digits 0-9, rows sum to 1",
            "labelled_per_class": "10",
            "label_seed": "3",
            **provenance.metadata(),
        }

    def test_encoder_metadata(self):
        provenance = Provenance("mnist", "ab", {"noise_dim": 6}, 5, "r")
        assert contract.encoder_metadata(provenance, "average") == {
            "model": "bigan-encoder",
            "role": "average",
            "input": "images: float32 (N, 28, 28, 1), NHWC, one grey channel, N dynamic",
            "input_range": "[-1, 1]; from uint8 pixels p: p / 127.5 - 1",
            "output": (
                "z: float32 (N, 6), the generator's noise that draws each image (feed it to "
                "the generator's z); features: float32 (N, 1024), the encoder's last hidden "
                "layer"
            ),
            "noise_dim": "6",
            "noise_distribution": "uniform",
            "noise_low": "-1.0",
            "noise_high": "1.0",
            **provenance.metadata(),
        }
