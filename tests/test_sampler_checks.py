"""The light sampler's checks of what a caller asks for, word for word, on tiny ONNX
generators made here (no TensorFlow): counts, seeds, providers, labels, codes, feeds."""

from pathlib import Path

import numpy as np
import pytest
from onnx_generators import generator

from pipeline.errors import ModelOutputError, SamplerError
from pipeline.runtime import sampler as sampler_module
from pipeline.runtime.contract import GeneratorContract
from pipeline.runtime.sampler import Sampler, check_count, check_providers
from pipeline.storage.images import to_uint8


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generators")
    return {
        "plain": Sampler(generator(folder / "plain.onnx", GeneratorContract(4))),
        "conditional": Sampler(
            generator(folder / "conditional.onnx", GeneratorContract(4, classes=(3, 4, 5)))
        ),
        "sparse": Sampler(
            generator(folder / "sparse.onnx", GeneratorContract(4, classes=(1, 3)), mixable=False)
        ),
        "infogan": Sampler(
            generator(
                folder / "infogan.onnx",
                GeneratorContract(4, categorical_codes=3, continuous_codes=2),
            )
        ),
    }


def refused(call, message):
    with pytest.raises(SamplerError) as caught:
        call()
    assert str(caught.value) == message


class TestCounts:
    def test_the_smallest_and_largest_accepted(self):
        check_count(1, 0, 1)
        check_count(1, 2**64 - 1, 1)

    @pytest.mark.parametrize(
        ("n", "seed", "batch", "message"),
        [
            (0, 0, 1, "the number of images must be positive, got 0"),
            (1, -1, 1, "the seed must be in [0, 2**64), got -1"),
            (1, 2**64, 1, f"the seed must be in [0, 2**64), got {2**64}"),
            (1, 0, 0, "the batch size must be positive, got 0"),
        ],
    )
    def test_refused(self, n, seed, batch, message):
        refused(lambda: check_count(n, seed, batch), message)


class TestProviders:
    def test_full_short_and_single_names(self):
        assert check_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
        assert check_providers(["cpu", "CPU"]) == ["CPUExecutionProvider"] * 2
        assert check_providers("cpu") == ["CPUExecutionProvider"]

    def test_unknown_and_none(self):
        have = ", ".join(sampler_module.available_providers())
        refused(
            lambda: check_providers(["cpu", "tpu"]),
            f"onnxruntime provider 'tpu' is not available here; this onnxruntime has {have}",
        )
        refused(
            lambda: check_providers([]),
            f"no onnxruntime provider given; this onnxruntime has {have}",
        )


class TestModelFiles:
    def test_a_missing_file_and_a_folder(self, tmp_path):
        refused(
            lambda: Sampler(tmp_path / "none.onnx"), f"{tmp_path / 'none.onnx'}: no such model file"
        )
        refused(lambda: Sampler(tmp_path), f"{tmp_path}: no such model file")

    def test_a_file_that_is_not_onnx(self, tmp_path):
        path = tmp_path / "text.onnx"
        path.write_text("not a model")
        with pytest.raises(SamplerError) as caught:
            Sampler(path)
        assert str(caught.value).startswith(f"{path}: not a usable ONNX model (")
        assert str(caught.value).endswith("protobuf parsing failed.)")
        assert "[ONNXRuntimeError]" not in str(caught.value)

    def test_a_file_that_cannot_be_read(self):
        """/proc/self/mem is a file whose reading from the start fails (EIO), even for root."""
        path = Path("/proc/self/mem")
        refused(lambda: Sampler(path), f"{path}: cannot read (Input/output error)")

    def test_the_defaults_use_every_core_packed_weights_and_the_cpu(self, models):
        session = models["plain"].session
        assert session.get_session_options().intra_op_num_threads == 0
        with pytest.raises(RuntimeError, match="does not have configuration"):
            session.get_session_options().get_session_config_entry("session.disable_prepacking")
        assert session.get_providers() == ["CPUExecutionProvider"]

    def test_an_unknown_provider_is_refused_before_the_file_is_read(self, models):
        with pytest.raises(SamplerError, match="provider 'tpu' is not available here"):
            Sampler(models["plain"].path, providers=["tpu"])

    def test_a_graph_that_breaks_the_contract_names_its_file(self, tmp_path):
        path = generator(tmp_path / "g.onnx", GeneratorContract(4, classes=(1, 2)), metadata={})
        refused(lambda: Sampler(path), f"{path}: takes a label but its metadata lists no classes")

    def test_threads_and_quick_start_draw_the_same_images(self, models):
        plain = models["plain"]
        quick = Sampler(plain.path, threads=1, quick_start=True)
        options = quick.session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert options.get_session_config_entry("session.disable_prepacking") == "1"
        np.testing.assert_array_equal(quick.sample(5, seed=3), plain.sample(5, seed=3))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad input\nmore"), "bad input"),
        (RuntimeError("x" * 300), "x" * 200),
        (ValueError(""), "ValueError"),
        (RuntimeError("  plain\n"), "plain"),
    ],
)
def test_the_reason_is_one_short_line(error, reason):
    assert sampler_module._reason(error) == reason


class TestLabels:
    def test_what_each_model_takes(self, models):
        assert models["conditional"].classes == (3, 4, 5)
        assert models["infogan"].classes == (0, 1, 2)
        assert models["plain"].classes == ()
        assert models["infogan"].noise_dim == 6
        assert (models["conditional"].conditional, models["conditional"].infogan) == (True, False)

    def test_labels_in_turn_from_a_start(self, models):
        conditional = models["conditional"]
        np.testing.assert_array_equal(conditional.labels(5, start=2), [5, 3, 4, 5, 3])
        np.testing.assert_array_equal(conditional.labels(4), [3, 4, 5, 3])
        np.testing.assert_array_equal(conditional.labels(2, 4), [4, 4])
        assert conditional.labels(2).dtype == np.int64
        assert conditional.labels(2, np.int64(4)).dtype == np.int64
        assert models["plain"].labels(3) is None

    def test_bad_labels(self, models):
        conditional = models["conditional"]
        refused(lambda: conditional.check_label(True), "a label must be a whole number, got True")
        refused(lambda: conditional.check_label(4.0), "a label must be a whole number, got 4.0")
        refused(
            lambda: conditional.check_label(6),
            "label 6 is not one of the model's classes (3-5)",
        )
        refused(
            lambda: models["sparse"].check_label(2),
            "label 2 is not one of the model's classes (1, 3)",
        )
        assert conditional.check_label(np.int64(5)) == 5

    def test_a_label_for_a_model_that_takes_none(self, models):
        refused(
            lambda: models["plain"].check_label(1),
            f"{models['plain'].path} is an unconditional model: it takes no label (a model "
            "trained with train.model: conditional does)",
        )
        refused(
            lambda: models["infogan"].check_label(1),
            f"{models['infogan'].path} is an InfoGAN model: it takes codes, not labels "
            "(category (0-2), c1 ([-1, 1]), c2 ([-1, 1])); e.g. --code category=3",
        )


class TestFeeds:
    def test_a_conditional_feed(self, models):
        conditional = models["conditional"]
        noise = np.zeros((4, 4), np.float32)
        feed = conditional.feed(noise)
        np.testing.assert_array_equal(feed["label"], [3, 4, 5, 3])
        assert feed["label"].dtype == np.int64 and feed["z"] is noise
        refused(
            lambda: conditional.feed(noise, [3, 9, 4, 1]),
            "label 9 is not one of the model's classes (3-5)",
        )
        mixed = conditional.feed(noise, [0, 1, 0, 1], [[1, 0, 0], [0.5, 0.5, 0]])
        assert mixed["label_mix"].dtype == np.float32
        np.testing.assert_array_equal(mixed["label_mix"], [[1, 0, 0], [0.5, 0.5, 0]])
        given = conditional.feed(noise, np.array([3, 4, 5, 3], np.int32))["label"]
        assert given.dtype == np.int64

    def test_a_mix_draws_the_classes_it_weights(self, models):
        """Row c of the model's own table is class c, so a mix row of class 4 alone draws 4s."""
        conditional = models["conditional"]
        noise = conditional.seeded_noise(0, 2)
        np.testing.assert_array_equal(
            conditional.generate(noise, [0, 0], label_mix=[[0, 1, 0]]),
            conditional.generate(noise, [4, 4]),
        )

    def test_mixing_needs_an_overridable_table(self, models):
        sparse = models["sparse"]
        refused(
            lambda: sparse.feed(np.zeros((1, 4), np.float32), [0], [[1, 0]]),
            f"{sparse.path}: this model cannot mix classes (no label_mix)",
        )

    def test_an_unconditional_model_takes_no_labels_or_mix(self, models):
        plain = models["plain"]
        noise = np.zeros((2, 4), np.float32)
        assert list(plain.feed(noise)) == ["z"]
        with pytest.raises(SamplerError, match="unconditional model"):
            plain.feed(noise, [1, 2])
        with pytest.raises(SamplerError, match="unconditional model"):
            plain.feed(noise, None, [[1.0]])

    def test_an_infogan_feed_splits_the_noise(self, models):
        infogan = models["infogan"]
        noise = np.arange(18, dtype=np.float64).reshape(3, 6)
        feed = infogan.feed(noise)
        np.testing.assert_array_equal(feed["z"], noise[:, :4])
        np.testing.assert_array_equal(feed["code_continuous"], noise[:, 4:])
        np.testing.assert_array_equal(feed["code_categorical"], [0, 1, 2])
        assert feed["z"].dtype == np.float32 and feed["code_categorical"].dtype == np.int64
        given = infogan.feed(noise, np.array([2, 2, 0], np.int32))["code_categorical"]
        np.testing.assert_array_equal(given, [2, 2, 0])
        assert given.dtype == np.int64
        for bad in (-1, 3):
            refused(
                lambda bad=bad: infogan.feed(noise, [0, bad, 1]),
                f"category {bad} is not one of the model's categorical codes (0-2)",
            )
        with pytest.raises(SamplerError, match="InfoGAN model"):
            infogan.feed(noise, None, [[1.0]])

    def test_an_infogan_model_without_continuous_codes(self, tmp_path):
        model = Sampler(generator(tmp_path / "g.onnx", GeneratorContract(4, categorical_codes=2)))
        assert list(model.feed(np.zeros((2, 4), np.float32))) == ["z", "code_categorical"]


class TestCodes:
    def test_checked_codes(self, models):
        infogan = models["infogan"]
        assert infogan.check_codes(None) == {} and infogan.check_codes({}) == {}
        checked = infogan.check_codes({"category": "2", "c1": "-1", "c2": 1})
        assert checked == {"category": 2, "c1": -1.0, "c2": 1.0}
        assert isinstance(checked["category"], int) and isinstance(checked["c1"], float)

    @pytest.mark.parametrize(
        ("codes", "message"),
        [
            (
                {"c3": 0},
                "unknown code 'c3': this model's codes are category (0-2), "
                "c1 ([-1, 1]), c2 ([-1, 1])",
            ),
            ({"c1": "x"}, "code c1: expected a number, got 'x'"),
            ({"c1": None}, "code c1: expected a number, got None"),
            ({"c1": 1.5}, "code c1: expected a number in [-1, 1], got 1.5"),
            ({"c2": -1.01}, "code c2: expected a number in [-1, 1], got -1.01"),
            ({"category": 1.5}, "code category: expected a whole number 0-2, got 1.5"),
            ({"category": 3}, "code category: expected a whole number 0-2, got 3"),
            ({"category": -1}, "code category: expected a whole number 0-2, got -1"),
        ],
    )
    def test_bad_codes(self, models, codes, message):
        refused(lambda: models["infogan"].check_codes(codes), message)

    def test_a_model_without_codes(self, models):
        refused(
            lambda: models["plain"].check_codes({"c1": 0}),
            f"{models['plain'].path} takes no codes (a model trained with train.model: infogan "
            "does)",
        )

    def test_fixed_codes_are_written_into_the_noise_and_labels(self, models):
        noise = np.zeros((2, 6), np.float32)
        noise, labels = models["infogan"].with_codes(noise, None, {"c2": 0.5, "category": 1})
        np.testing.assert_array_equal(noise[:, 4:], [[0, 0.5], [0, 0.5]])
        np.testing.assert_array_equal(labels, [1, 1])
        assert labels.dtype == np.int64
        noise, labels = models["infogan"].with_codes(noise, "kept", {"c1": -0.5})
        assert labels == "kept" and (noise[:, 4] == -0.5).all()

    def test_a_fixed_code_reaches_every_image(self, models):
        infogan = models["infogan"]
        fixed = infogan.sample(4, seed=2, codes={"category": 1, "c1": 0.25})
        noise = infogan.seeded_noise(2, 4)
        noise[:, 4] = 0.25
        expected = infogan.generate(noise, np.ones(4, np.int64))
        np.testing.assert_array_equal(fixed, to_uint8(expected)[..., 0])


class TestDrawing:
    def test_batches_of_any_size_give_the_same_images(self, models):
        conditional = models["conditional"]
        whole = conditional.sample(7, seed=5)
        parts = list(conditional.batches(7, seed=5, batch_size=2))
        assert [len(p) for p in parts] == [2, 2, 2, 1]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
        assert whole.dtype == np.uint8 and whole.shape == (7, 28, 28)
        assert sampler_module.DEFAULT_BATCH_SIZE == 256
        np.testing.assert_array_equal(conditional.sample(3), conditional.sample(3, seed=0))
        np.testing.assert_array_equal(next(conditional.batches(3)), conditional.sample(3, seed=0))

    def test_a_label_fixes_every_image(self, models):
        conditional = models["conditional"]
        fours = conditional.sample(3, seed=1, label=4)
        noise = conditional.seeded_noise(1, 3)
        expected = to_uint8(conditional.generate(noise, np.full(3, 4)))[..., 0]
        np.testing.assert_array_equal(fours, expected)
        assert not np.array_equal(fours, conditional.sample(3, seed=1))

    def test_bad_arguments_fail_before_any_work(self, models):
        refused(lambda: models["plain"].batches(0), "the number of images must be positive, got 0")
        with pytest.raises(SamplerError, match="unconditional"):
            models["plain"].batches(2, label=1)

    def test_noise_as_the_model_was_trained_on(self, models):
        drawn = models["infogan"].noise(np.random.default_rng(0), 3)
        assert drawn.shape == (3, 6) and drawn.dtype == np.float32

    def test_a_damaged_model_is_an_error_not_images(self, tmp_path):
        damaged = Sampler(generator(tmp_path / "nan.onnx", GeneratorContract(4), bias=np.nan))
        with pytest.raises(ModelOutputError) as caught:
            damaged.sample(2)
        assert str(caught.value) == (
            f"{damaged.path}: the model's output is not finite (NaN or infinity): the file is "
            "damaged or its weights diverged; export it again"
        )

    def test_onnxruntime_failing_is_one_line(self, models):
        plain = models["plain"]
        with pytest.raises(ModelOutputError) as caught:
            plain.generate(np.zeros((2, 5), np.float32))
        message = str(caught.value)
        assert message.startswith(f"{plain.path}: onnxruntime failed while running the model (")
        assert "invalid dimensions" in message
        assert "\n" not in message and "[ONNXRuntimeError]" not in message
