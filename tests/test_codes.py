"""The InfoGAN code measures on hand-made images and generators, with values a reader can
check by hand: image moments, Spearman's correlation, the exact code-to-digit matching."""

import json

import numpy as np
import pytest

from pipeline.evaluation import codes
from pipeline.runtime.noise import TRAINING_NOISE


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


class TestHandCheckedMoments:
    def test_two_dots_on_a_wide_image(self):
        """Dots at (row 0, column 0) and (row 2, column 4) of a 3x5 image: centre (2, 1),
        offsets (-2, -1) and (2, 1), so mu20 = 4, mu02 = 1, mu11 = 2: slant -2, width 2, ink 2."""
        image = np.zeros((1, 3, 5), np.uint8)
        image[0, 0, 0] = image[0, 2, 4] = 255
        measured = codes.image_properties(image)
        assert set(measured) == {"slant", "width", "ink"}
        assert measured["slant"][0] == pytest.approx(-2.0)
        assert measured["width"][0] == pytest.approx(2.0)
        assert measured["ink"][0] == pytest.approx(2.0)

    def test_a_faint_column_is_measured_in_ink(self):
        """Two pixels of 51 (ink 0.2 each) in column 3, rows 1 and 3 of a 5x4 image: total ink
        0.4, upright (slant 0) and no width; mass below 1 still divides the moments."""
        image = np.zeros((1, 5, 4), np.uint8)
        image[0, 1, 3] = image[0, 3, 3] = 51
        measured = codes.image_properties(image)
        assert measured["ink"][0] == pytest.approx(0.4)
        assert measured["width"][0] == pytest.approx(0.0, abs=1e-12)
        assert measured["slant"][0] == pytest.approx(0.0, abs=1e-12)

    def test_a_faint_diagonal_leans_by_its_moments(self):
        """Pixels of 51 at (row 0, column 0) and (row 1, column 1): each offset is +-0.5 in
        both axes, so mu20 = mu02 = mu11 = 0.25 (below 1): slant -1, width 0.5."""
        image = np.zeros((1, 2, 3), np.uint8)
        image[0, 0, 0] = image[0, 1, 1] = 51
        measured = codes.image_properties(image)
        assert measured["slant"][0] == pytest.approx(-1.0)
        assert measured["width"][0] == pytest.approx(0.5)

    @pytest.mark.filterwarnings("error")
    def test_a_horizontal_stroke_has_no_slant_and_no_warning(self):
        image = np.zeros((1, 4, 6), np.uint8)
        image[0, 2, 1:5] = 255
        measured = codes.image_properties(image)
        assert measured["slant"][0] == 0.0
        assert measured["width"][0] == pytest.approx(np.sqrt(1.25))


class TestRanks:
    def test_whole_numbers_with_ties_get_fractional_ranks(self):
        np.testing.assert_array_equal(codes.ranks(np.array([3, 1, 3])), [2.5, 1.0, 2.5])

    def test_each_row_is_ranked_on_its_own(self):
        values = np.array([[[5, 1, 9]], [[2, 2, 2]]])
        np.testing.assert_array_equal(codes.ranks(values), [[[2.0, 1.0, 3.0]], [[2.0, 2.0, 2.0]]])


class TestSpearmanValues:
    def test_rows_of_two(self):
        """Ranks of two values are centred at +-0.5: the scale (0.5) is below 1."""
        x = np.array([[1.0, 2.0], [1.0, 2.0]])
        y = np.array([[3.0, 4.0], [4.0, 3.0]])
        np.testing.assert_array_equal(codes.spearman(x, y), [1.0, -1.0])

    def test_an_off_centre_value(self):
        """Ranks (1, 2, 3) against (1, 3, 2): 1 - 6 * 2 / (3 * 8) = 0.5."""
        assert float(codes.spearman(np.array([1.0, 2.0, 3.0]), np.array([0.0, 7.0, 5.0]))) == (
            pytest.approx(0.5)
        )

    @pytest.mark.filterwarnings("error")
    def test_a_constant_row_beside_a_varying_one(self):
        x = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
        y = np.array([[4.0, 4.0, 4.0], [1.0, 2.0, 3.0]])
        np.testing.assert_array_equal(codes.spearman(x, y), [0.0, 1.0])


def test_ties_in_the_matching_keep_the_lower_digit_for_the_earlier_code():
    assert codes.best_matching(np.ones((3, 3))) == [0, 1, 2]


class Recorder:
    """A 'generator' that records what it is given and draws the category as digit
    (code * 3) mod 10 (the pixel the 'classifier' reads), except that code 0 draws a 1 where
    the first noise value is above 0.5 (so the matched accuracy is below 1)."""

    def __init__(self):
        self.calls = []

    def __call__(self, latent, categorical):
        self.calls.append((latent.copy(), np.asarray(categorical).copy()))
        images = np.zeros((len(latent), 28, 28), np.uint8)
        images[:, 0, 0] = (categorical * 3) % 10
        images[(categorical == 0) & (latent[:, 0] > 0.5), 0, 0] = 1
        images[:, 10, 10] = 255
        images[:, 12, 10] = 255  # an upright stroke whatever the codes
        return images


def read_digit(images):
    return images[:, 0, 0].astype(int)


def test_measure_codes_draws_the_contract_noise_and_sweeps_each_code():
    draw = Recorder()
    measured = codes.measure_codes(
        draw,
        read_digit,
        noise_dim=4,
        categorical=3,
        continuous=2,
        seed=5,
        per_code=6,
        sweeps=4,
        values=3,
    )
    (latent, categorical), *sweeps = draw.calls
    np.testing.assert_array_equal(latent, TRAINING_NOISE.seeded(5, 18, 6))
    np.testing.assert_array_equal(categorical, np.repeat([0, 1, 2], 6))
    base = TRAINING_NOISE.seeded(5, 4, 6, first_row=18)
    assert len(sweeps) == 2
    for k, (rows, sweep_codes) in enumerate(sweeps):
        assert rows.dtype == np.float32
        expected = np.repeat(base, 3, axis=0)
        expected[:, 4 + k] = np.tile([-1.0, 0.0, 1.0], 4)
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_array_equal(sweep_codes, np.repeat([0, 1, 2, 0], 3))
    ones = int((latent[:6, 0] > 0.5).sum())
    assert 0 < ones < 3  # so code 0 still matches digit 0
    assert measured["categorical"] == {
        "accuracy": round((18 - ones) / 18, 4),
        "digit_of_code": [0, 3, 6],
        "images_per_code": 6,
    }
    assert [c["code"] for c in measured["continuous"]] == ["c1", "c2"]
    assert measured["continuous"][0]["sweeps"] == 4
    assert measured["continuous"][0]["spearman"] == {"slant": 0.0, "width": 0.0, "ink": 0.0}


def test_measure_codes_defaults():
    """500 images per code value and 200 sweeps of 9 values, from seed 0."""
    draw = Recorder()
    measured = codes.measure_codes(draw, read_digit, noise_dim=2, categorical=2, continuous=1)
    (latent, _), (rows, _) = draw.calls
    np.testing.assert_array_equal(latent, TRAINING_NOISE.seeded(0, 1000, 3))
    assert rows.shape == (1800, 3)
    np.testing.assert_array_equal(rows[:9, 2], np.linspace(-1, 1, 9, dtype=np.float32))
    assert measured["categorical"]["images_per_code"] == 500
    assert measured["continuous"][0]["sweeps"] == 200


def test_correlations_are_rounded_to_four_digits():
    """c1 sets the stroke's column for the first two of three sweep values only: ranks
    (1, 2, 3) against (1.5, 1.5, 3) correlate sqrt(3) / 2 = 0.8660254..."""

    def draw(latent, categorical):
        images = np.zeros((len(latent), 28, 28), np.uint8)
        for i, row in enumerate(latent):
            top = 10 + round(4 * max(row[-1], 0.0))
            images[i, 10:14, 10] = 255
            images[i, 14, top] = 255  # a foot that moves right with c1 above 0
        return images

    measured = codes.measure_codes(
        draw,
        read_digit,
        noise_dim=1,
        categorical=2,
        continuous=1,
        per_code=1,
        sweeps=2,
        values=3,
    )
    assert measured["continuous"][0]["spearman"]["width"] == 0.866
    assert measured["continuous"][0]["controls"] in {"width", "slant"}


def test_meanings_is_compact_json_of_each_codes_role():
    measured = {
        "categorical": {"accuracy": 0.5, "digit_of_code": [1, None], "images_per_code": 3},
        "continuous": [
            {"code": "c1", "spearman": {"slant": -0.9, "width": 0.1}, "controls": "slant"}
        ],
    }
    assert codes.meanings(measured) == (
        '{"category":{"digit_of_code":[1,null],"accuracy":0.5},'
        '"c1":{"controls":"slant","spearman":-0.9}}'
    )
