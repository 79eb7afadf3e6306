"""InfoGAN: its information term, the code measures, the export contract with codes, the
sampler and `dcgan sample` with codes and sweeps, on a tiny trained model."""

import json
import math

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf

from conftest import invoke, invoke_ok
from pipeline.errors import SamplerError
from pipeline.evaluation import codes
from pipeline.gan import losses
from pipeline.runtime import contract, traversals
from pipeline.runtime.images import load_png, make_grid, to_uint8
from pipeline.runtime.sampler import Sampler


class TestInformationLoss:
    def test_uniform_logits_cost_log_k_and_exact_means_nothing_more(self):
        logits = tf.zeros((4, 10))
        codes_ = tf.constant([0, 3, 7, 9])
        continuous = tf.constant([[0.5, -0.5]] * 4)
        value = losses.information_loss(logits, codes_, continuous, continuous)
        assert float(value) == pytest.approx(math.log(10), rel=1e-6)

    def test_hand_computed_value(self):
        """Two codes of two values: cross-entropies log(1 + e^-2) and log(1 + e^2), plus
        0.5 * ((1 - 0)^2 + (0.5 - 0)^2) for the first row's continuous codes, 0 for the
        second's; means over the two rows."""
        logits = tf.constant([[2.0, 0.0], [2.0, 0.0]])
        categorical = tf.constant([0, 1])
        codes_ = tf.constant([[1.0, 0.5], [0.0, 0.0]])
        predicted = tf.zeros((2, 2))
        expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(2))) / 2 + 0.5 * 1.25 / 2
        value = losses.information_loss(logits, categorical, predicted, codes_)
        assert float(value) == pytest.approx(expected, rel=1e-6)

    def test_the_continuous_weight_scales_only_the_continuous_part(self):
        logits = tf.constant([[2.0, 0.0]])
        categorical = tf.constant([0])
        codes_ = tf.constant([[1.0, 0.5]])
        predicted = tf.zeros((1, 2))
        expected = math.log1p(math.exp(-2)) + 0.1 * 0.5 * 1.25
        value = losses.information_loss(logits, categorical, predicted, codes_, 0.1)
        assert float(value) == pytest.approx(expected, rel=1e-6)

    def test_without_continuous_codes_it_is_the_cross_entropy(self):
        logits = tf.constant([[0.0, math.log(3.0)]])
        assert float(losses.information_loss(logits, tf.constant([1]))) == pytest.approx(
            math.log(4 / 3), rel=1e-6
        )


def line_image(slope: float, thickness: int = 1) -> np.ndarray:
    """A uint8 28x28 stroke through the centre whose column moves `slope` pixels per row up."""
    image = np.zeros((28, 28), np.uint8)
    for row in range(4, 24):
        column = round(14 + slope * (14 - row))
        image[row, column : column + thickness] = 255
    return image


class TestImageProperties:
    def test_slant_sign_and_size(self):
        measured = codes.image_properties(
            np.stack([line_image(0.5), line_image(0), line_image(-0.5)])
        )
        assert measured["slant"][0] == pytest.approx(0.5, abs=0.05)
        assert measured["slant"][1] == pytest.approx(0.0, abs=1e-9)
        assert measured["slant"][2] == pytest.approx(-0.5, abs=0.05)

    def test_width_and_ink_grow_with_a_wider_stroke(self):
        measured = codes.image_properties(np.stack([line_image(0, 1), line_image(0, 5)]))
        assert measured["width"][1] > measured["width"][0]
        assert measured["ink"][1] == pytest.approx(5 * measured["ink"][0])

    def test_a_blank_image_measures_zero(self):
        measured = codes.image_properties(np.zeros((1, 28, 28), np.uint8))
        assert all(value[0] == 0 for value in measured.values())


class TestSpearman:
    def test_monotone_rows_are_plus_and_minus_one(self):
        x = np.array([[1.0, 2.0, 3.0, 4.0]] * 2)
        y = np.array([[1.0, 8.0, 27.0, 64.0], [5.0, 1.0, 0.0, -3.0]])
        np.testing.assert_allclose(codes.spearman(x, y), [1.0, -1.0])

    def test_ties_share_their_mean_rank(self):
        """y ranks (1.5, 1.5, 3, 4) against x ranks (1, 2, 3, 4): Pearson of the ranks."""
        x = np.array([1.0, 2.0, 3.0, 4.0])
        y = np.array([0.0, 0.0, 1.0, 2.0])
        a, b = np.array([1, 2, 3, 4.0]), np.array([1.5, 1.5, 3, 4])
        expected = np.corrcoef(a, b)[0, 1]
        assert float(codes.spearman(x, y)) == pytest.approx(expected)

    def test_a_constant_row_correlates_zero(self):
        assert float(codes.spearman(np.arange(5.0), np.ones(5))) == 0.0


class TestBestMatching:
    def test_finds_the_permutation_a_greedy_choice_misses(self):
        """Greedy would give code 0 digit 0 (9), then code 1 digit 1 (1): 10. Best: 8 + 8."""
        counts = np.array([[9.0, 8.0], [8.0, 1.0]])
        assert codes.best_matching(counts) == [1, 0]

    def test_a_shuffled_identity_is_undone(self):
        digits = np.random.default_rng(0).permutation(10)
        counts = np.eye(10)[digits] * 50 + 1
        assert codes.best_matching(counts) == list(digits)

    def test_a_code_no_image_of_which_is_a_free_digit_still_gets_one(self):
        counts = np.array([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 4.0]])
        assert codes.best_matching(counts) == [0, 1, 2]

    def test_more_codes_than_digits_leave_the_weakest_out(self):
        counts = np.array([[5.0, 0.0], [0.0, 5.0], [1.0, 1.0]])
        assert codes.best_matching(counts) == [0, 1, None]


def test_measure_codes_on_a_hand_made_generator():
    """A 'generator' whose category is the digit the 'classifier' reads (code k draws digit
    (k + 3) mod 10) and whose first continuous code is the stroke's slant: accuracy 1, the
    matching found, c1 controls slant with a Spearman correlation of 1."""

    def draw(latent, categorical):
        images = np.stack([line_image(0.6 * row[4]) for row in latent])
        images[:, 0, 0] = (categorical + 3) % 10  # the digit, where the classifier reads it
        return images

    measured = codes.measure_codes(
        draw,
        lambda images: images[:, 0, 0].astype(int),
        noise_dim=4,
        categorical=10,
        continuous=2,
        per_code=5,
        sweeps=4,
    )
    assert measured["categorical"]["accuracy"] == 1.0
    assert measured["categorical"]["digit_of_code"] == [(k + 3) % 10 for k in range(10)]
    first, second = measured["continuous"]
    assert first["controls"] == "slant" and first["spearman"]["slant"] == pytest.approx(1.0)
    assert second["spearman"]["slant"] == 0.0  # c2 changes nothing
    summary = json.loads(codes.meanings(measured))
    assert summary["c1"] == {"controls": "slant", "spearman": 1.0}


class TestExportedInfogan:
    def test_the_onnx_inputs_and_metadata_declare_the_codes(self, infogan_model):
        session = ort.InferenceSession(str(infogan_model / "models" / "generator.onnx"))
        inputs = [(i.name, i.type, i.shape[1:]) for i in session.get_inputs()]
        assert inputs == [
            (contract.NOISE_INPUT, "tensor(float)", [8]),
            (contract.CATEGORICAL_CODE_INPUT, "tensor(int64)", []),
            (contract.CONTINUOUS_CODE_INPUT, "tensor(float)", [2]),
        ]
        metadata = session.get_modelmeta().custom_metadata_map
        assert metadata["categorical_codes"] == "10"
        assert metadata["continuous_codes"] == "2"
        assert json.loads(metadata["continuous_code_range"]) == [-1.0, 1.0]
        assert "classes" not in metadata
        read = contract.read(session, "generator.onnx")
        assert read.code_names == ("category", "c1", "c2")

    def test_the_int8_model_takes_the_same_codes(self, infogan_model):
        sampler = Sampler(infogan_model / "models" / "generator-int8.onnx")
        assert sampler.contract.code_names == ("category", "c1", "c2")
        assert sampler.sample(4, codes={"category": 2}).shape == (4, 28, 28)

    def test_codes_change_the_images_and_fixing_them_is_reproducible(self, infogan_model):
        sampler = Sampler(infogan_model / "models" / "generator.onnx")
        free = sampler.sample(8, seed=1)
        fixed = sampler.sample(8, seed=1, codes={"category": 4, "c1": -1.0})
        again = sampler.sample(8, seed=1, codes={"category": "4", "c1": "-1"})
        assert np.array_equal(fixed, again)
        assert not np.array_equal(free, fixed)
        # Fixing a code is feeding it: the same images as the session given those inputs.
        noise = sampler.seeded_noise(1, 8)
        noise[:, 8] = -1.0
        direct = sampler.session.run(
            None,
            {
                contract.NOISE_INPUT: noise[:, :8],
                contract.CATEGORICAL_CODE_INPUT: np.full(8, 4, np.int64),
                contract.CONTINUOUS_CODE_INPUT: noise[:, 8:],
            },
        )[0]
        assert np.array_equal(fixed, to_uint8(direct)[..., 0])

    def test_a_sweep_varies_only_its_code_across_columns(self, infogan_model):
        sampler = Sampler(infogan_model / "models" / "generator.onnx")
        grid = traversals.sweep(sampler, "c2", 3, seed=5, columns=6, codes={"category": 1})
        assert grid.shape == (3, 6, 28, 28)
        ends = sampler.sample(3, seed=5, codes={"category": 1, "c2": 1.0})
        assert np.array_equal(grid[:, -1], ends)
        categories = traversals.sweep(sampler, "category", 2, seed=5)
        assert categories.shape == (2, 10, 28, 28)
        assert np.array_equal(categories[:, 7], sampler.sample(2, seed=5, codes={"category": 7}))

    @pytest.mark.parametrize(
        ("given", "message"),
        [
            ({"slant": 0.5}, "unknown code 'slant': this model's codes are category (0-9), c1"),
            ({"category": 10}, "code category: expected a whole number 0-9, got 10"),
            ({"category": 2.5}, "code category: expected a whole number 0-9"),
            ({"c1": 1.5}, "code c1: expected a number in [-1, 1], got 1.5"),
            ({"c2": "nan"}, "code c2: expected a number in [-1, 1]"),
            ({"c1": "left"}, "code c1: expected a number, got 'left'"),
        ],
    )
    def test_bad_codes_are_one_clear_error(self, infogan_model, given, message):
        sampler = Sampler(infogan_model / "models" / "generator.onnx")
        with pytest.raises(SamplerError, match=None) as raised:
            sampler.sample(2, codes=given)
        assert message in str(raised.value)

    def test_labels_are_refused_with_the_codes_named(self, infogan_model):
        sampler = Sampler(infogan_model / "models" / "generator.onnx")
        with pytest.raises(SamplerError, match="InfoGAN model: it takes codes, not labels"):
            sampler.sample(2, label=3)
        with pytest.raises(SamplerError, match="cannot sweep 'c3'"):
            traversals.sweep(sampler, "c3", 2)
        with pytest.raises(SamplerError, match="code c1 is swept: do not also fix it"):
            traversals.sweep(sampler, "c1", 2, codes={"c1": 0})

    def test_other_models_take_no_codes(self, exported_model):
        sampler = Sampler(exported_model / "models" / "generator.onnx")
        with pytest.raises(SamplerError, match="takes no codes"):
            sampler.sample(2, codes={"category": 1})
        with pytest.raises(SamplerError, match="takes no codes to sweep"):
            traversals.sweep(sampler, "category", 2)


class TestSampleCommand:
    def test_codes_and_sweeps_write_files(self, infogan_model, tmp_path):
        model = str(infogan_model / "models" / "generator.onnx")
        grid = tmp_path / "grid.png"
        invoke_ok(
            "sample",
            "--model",
            model,
            "-n",
            "4",
            "--code",
            "category=3",
            "--code",
            "c1=0.8",
            "--out",
            str(grid),
        )
        sweep = tmp_path / "sweep.png"
        invoke_ok("sample", "--model", model, "-n", "3", "--sweep", "c1", "--out", str(sweep))
        expected = make_grid(np.zeros((30, 28, 28), np.uint8), 10).shape  # 3 rows of 10
        assert load_png(sweep).shape == (2 * expected[0], 2 * expected[1])
        gif = tmp_path / "sweep.gif"
        invoke_ok("sample", "--model", model, "-n", "2", "--sweep", "category", "--out", str(gif))
        assert gif.stat().st_size > 0

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--code", "c1"], "expected NAME=VALUE, got 'c1'"),
            (["--code", "c1=0", "--code", "c1=1"], "code c1 given twice"),
            (["--code", "tilt=0"], "unknown code 'tilt'"),
            (["--sweep", "c1", "--out", "x.npy"], "--sweep writes a .png grid or a .gif"),
            (["--out", "x.gif"], "a .gif needs --interpolate or --sweep"),
            (["--code", "c1=0", "--interpolate", "--out", "x.gif"], "--code fixes codes"),
        ],
    )
    def test_bad_use_is_one_line_and_writes_nothing(self, infogan_model, tmp_path, args, message):
        model = str(infogan_model / "models" / "generator.onnx")
        args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
        result = invoke("sample", "--model", model, *args)
        assert result.exit_code != 0
        assert message in result.output
        assert "Traceback" not in result.output
        assert list(tmp_path.iterdir()) == []
