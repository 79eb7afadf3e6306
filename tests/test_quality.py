"""Quality measures on hand-made data with answers known in closed form."""

import numpy as np
import pytest

from pipeline.evaluation import quality


class TestKernelDistance:
    def test_by_hand_on_two_points_each(self):
        # k(a, b) = (ab + 1)^3 in one dimension: within {0, 1} and within {0, 2} the one pair
        # off the diagonal gives 1; across, k = 1, 1, 1, 27: mean 7.5. 1 + 1 - 2 * 7.5 = -13.
        mean, spread = quality.kernel_distance([[0.0], [1.0]], [[0.0], [2.0]], subsets=3)
        assert (mean, spread) == (pytest.approx(-13.0, rel=1e-12), pytest.approx(0.0, abs=1e-12))

    def test_the_expectation_of_two_unit_gaussians_one_shifted(self):
        # E k for independent a, b: E a^3 E b^3 + 3 E a^2 E b^2 + 3 E a E b + 1. N(0, 1) with
        # itself: 4; N(1, 1) with itself (moments 1, 2, 4): 32; the two: 7. 4 + 32 - 14 = 22.
        rng = np.random.default_rng(0)
        a, b = rng.normal(size=(20_000, 1)), rng.normal(1.0, size=(20_000, 1))
        mean, spread = quality.kernel_distance(a, b, subsets=50)
        assert mean == pytest.approx(22.0, abs=3 * spread / np.sqrt(50) + 0.5)

    def test_unbiased_where_the_frechet_distance_is_not(self):
        # Two samples of 50 from one distribution: the Frechet distance of 16 dimensions
        # reads far above 0, the kernel distance is 0 within its spread.
        rng = np.random.default_rng(2)
        a, b = rng.normal(size=(50, 16)), rng.normal(size=(50, 16))
        assert quality.frechet_distance_of(a, b) > 3.0
        many = [
            quality.kernel_distance(rng.normal(size=(50, 16)), rng.normal(size=(50, 16)), 1)[0]
            for _ in range(200)
        ]
        assert abs(np.mean(many)) < 3 * np.std(many) / np.sqrt(len(many))

    def test_a_sample_of_one_is_refused(self):
        with pytest.raises(ValueError, match="at least 2 rows"):
            quality.kernel_distance([[0.0]], [[1.0], [2.0]])


class TestFrechetDistance:
    def test_a_set_against_itself_is_zero(self):
        features = np.random.default_rng(0).normal(size=(500, 16))
        assert quality.frechet_distance_of(features, features) == pytest.approx(0.0, abs=1e-8)

    def test_is_symmetric(self):
        rng = np.random.default_rng(1)
        a, b = rng.normal(size=(400, 8)), rng.normal(1.0, 2.0, size=(300, 8))
        assert quality.frechet_distance_of(a, b) == pytest.approx(
            quality.frechet_distance_of(b, a), rel=1e-9
        )

    def test_closed_form_for_commuting_covariances(self):
        # ||(0,0) - (3,4)||^2 + tr(I + 4I - 2 * 2I) = 25 + 2
        distance = quality.frechet_distance([0, 0], np.eye(2), [3, 4], 4 * np.eye(2))
        assert distance == pytest.approx(27.0, rel=1e-12)

    def test_matches_the_eigenvalues_of_c1_c2_when_they_do_not_commute(self):
        cov1 = np.array([[2.0, 0.5], [0.5, 1.0]])
        cov2 = np.array([[1.0, -0.3], [-0.3, 3.0]])
        trace_root = np.sum(np.sqrt(np.linalg.eigvals(cov1 @ cov2).real))
        expected = 1.0 + np.trace(cov1) + np.trace(cov2) - 2 * trace_root
        assert quality.frechet_distance([0, 0], cov1, [1, 0], cov2) == pytest.approx(expected)

    def test_small_variances_are_not_clipped(self):
        """Eigenvalues under 1 enter the trace term as they are: for 0.01 I and 0.04 I in 3
        dimensions, tr(C1 + C2 - 2 (C1 C2)^1/2) = 3 (0.01 + 0.04 - 2 * 0.02) = 0.03."""
        distance = quality.frechet_distance(
            np.zeros(3), 0.01 * np.eye(3), np.zeros(3), 0.04 * np.eye(3)
        )
        assert distance == pytest.approx(0.03, rel=1e-9)

    def test_singular_covariances_stay_real_and_finite(self):
        flat = np.zeros((3, 3))
        flat[0, 0] = 1.0
        assert quality.frechet_distance(np.zeros(3), flat, np.zeros(3), flat) == pytest.approx(0.0)

    def test_statistics_are_unbiased(self):
        features = np.array([[0.0], [2.0]])
        mean, cov = quality.gaussian_statistics(features)
        assert mean.tolist() == [1.0]
        assert float(cov) == pytest.approx(2.0)  # ((0-1)^2 + (2-1)^2) / (2 - 1)


class TestClassifierScore:
    def test_constant_prediction_scores_one(self):
        probabilities = np.tile(np.eye(10)[3], (100, 1))
        assert quality.classifier_score(probabilities, splits=10) == pytest.approx((1.0, 0.0))

    def test_confident_uniform_spread_scores_ten(self):
        probabilities = np.tile(np.eye(10), (20, 1))
        mean, std = quality.classifier_score(probabilities, splits=10)
        assert mean == pytest.approx(10.0, rel=1e-6)
        assert std == pytest.approx(0.0, abs=1e-6)

    def test_undecided_predictions_score_one(self):
        assert quality.classifier_score(np.full((50, 10), 0.1), splits=5)[0] == pytest.approx(1.0)


def test_class_coverage():
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.45, 0.55], [0.1, 0.9]])
    coverage = quality.class_coverage(probabilities)
    # The key names are read by evaluate, report and the README: they are the contract.
    assert set(coverage) == {
        "class_shares",
        "class_entropy",
        "class_entropy_max",
        "smallest_class_share",
        "largest_class_share",
        "unsure_share",
    }
    assert coverage["class_entropy_max"] == pytest.approx(np.log(2))
    assert coverage["class_shares"] == [0.5, 0.5]
    assert coverage["class_entropy"] == pytest.approx(np.log(2))
    assert coverage["smallest_class_share"] == coverage["largest_class_share"] == 0.5
    assert coverage["unsure_share"] == 0.0
    unsure = quality.class_coverage(np.array([[0.4, 0.3, 0.3], [1.0, 0.0, 0.0]]))
    assert unsure["unsure_share"] == 0.5
    assert unsure["smallest_class_share"] == 0.0


class TestPrecisionRecall:
    real = np.arange(10, dtype=float)[:, None]  # 0, 1, ..., 9 on a line

    def test_the_same_set_is_fully_precise_and_recalled(self):
        assert quality.precision_recall(self.real, self.real, k=3) == (1.0, 1.0)

    def test_a_far_away_set_has_neither(self):
        assert quality.precision_recall(self.real, self.real + 100, k=3) == (0.0, 0.0)

    def test_a_faithful_but_narrow_set(self):
        # Generated 0.5..3.5 lie inside the real balls: precision 1. Their own balls (radius to
        # the 3rd neighbour: 3, 2, 2, 3) cover [-2.5, 6.5], i.e. real points 0..6: recall 0.7.
        generated = np.array([[0.5], [1.5], [2.5], [3.5]])
        assert quality.precision_recall(self.real, generated, k=3, block=3) == (1.0, 0.7)

    def test_k_defaults_to_three(self):
        # With k = 3 the narrow set above recalls 0.7; with 1 or 2 neighbours its balls are
        # smaller, so the default must be 3 to give the same answer.
        generated = np.array([[0.5], [1.5], [2.5], [3.5]])
        assert quality.precision_recall(self.real, generated, block=3) == (1.0, 0.7)
        assert quality.precision_recall(self.real, generated, k=2, block=3) != (1.0, 0.7)

    def test_softmax_rows_sum_to_one(self):
        probabilities = quality.softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
        np.testing.assert_allclose(probabilities, [[1.0, 0.0], [0.5, 0.5]])


class TestBlindSpots:
    """Each pins down a behaviour a mutation run found untested."""

    def test_float32_inputs_give_the_float64_answer(self):
        rng = np.random.default_rng(3)
        features = rng.normal(size=(300, 6)).astype(np.float32) * 1e3 + 1e4
        mean, cov = quality.gaussian_statistics(features)
        mean64, cov64 = quality.gaussian_statistics(features.astype(np.float64))
        np.testing.assert_array_equal(mean, mean64)
        np.testing.assert_array_equal(cov, cov64)
        logits = rng.normal(scale=30.0, size=(50, 10)).astype(np.float32)
        np.testing.assert_array_equal(
            quality.softmax(logits), quality.softmax(logits.astype(np.float64))
        )
        probabilities = quality.softmax(logits)
        assert quality.classifier_score(probabilities.astype(np.float32), 2) == (
            quality.classifier_score(probabilities.astype(np.float32).astype(np.float64), 2)
        )
        a, b = rng.normal(size=(40, 3)), rng.normal(size=(30, 3))
        assert quality.precision_recall(a.astype(np.float32) * 1e4, b.astype(np.float32) * 1e4) == (
            quality.precision_recall(
                (a.astype(np.float32) * 1e4).astype(np.float64),
                (b.astype(np.float32) * 1e4).astype(np.float64),
            )
        )

    def test_the_psd_root_ignores_negative_round_off(self):
        """Covariances from fewer samples than dimensions have eigenvalues of about -1e-17."""
        features = np.random.default_rng(4).normal(size=(3, 12))
        mean, cov = quality.gaussian_statistics(features)
        assert np.linalg.eigvalsh(cov).min() < 0  # round-off, the case being tested
        distance = quality.frechet_distance(mean, cov, mean, cov)
        assert np.isfinite(distance) and distance == pytest.approx(0.0, abs=1e-9)

    def test_the_classifier_score_uses_ten_splits_by_default(self):
        probabilities = quality.softmax(np.random.default_rng(5).normal(size=(110, 10)))
        assert quality.classifier_score(probabilities) == quality.classifier_score(
            probabilities, 10
        )
        assert quality.classifier_score(probabilities) != quality.classifier_score(
            probabilities, 11
        )

    def test_an_empty_class_leaves_the_entropy_finite(self):
        probabilities = np.eye(4)[[0, 0, 1, 2]]  # class 3 never predicted
        coverage = quality.class_coverage(probabilities)
        assert coverage["class_entropy"] == pytest.approx(-(0.5 * np.log(0.5) + 0.5 * np.log(0.25)))
        assert coverage["smallest_class_share"] == 0.0

    def test_a_top_probability_at_the_threshold_is_sure(self):
        probabilities = np.array([[0.5, 0.5, 0.0], [0.4, 0.35, 0.25], [0.9, 0.05, 0.05]])
        assert quality.class_coverage(probabilities)["unsure_share"] == pytest.approx(1 / 3)

    def test_close_points_are_not_floored_at_distance_one(self):
        real = np.array([[0.0], [0.1], [0.2], [0.3]])
        far = np.array([[0.05], [0.15], [0.25], [0.35]]) + 0.6
        # every real point's nearest neighbour is 0.1 away: 0.6 is outside every ball
        assert quality.precision_recall(real, far, k=1) == (0.0, 0.0)

    def test_blocks_cover_every_point(self):
        rng = np.random.default_rng(6)
        real, generated = rng.normal(size=(9, 2)), rng.normal(size=(7, 2))
        whole = quality.precision_recall(real, generated, k=2)
        assert quality.precision_recall(real, generated, k=2, block=2) == whole
        assert quality.precision_recall(real, generated, k=2, block=1) == whole

    def test_known_real_radii_give_the_same_shares(self):
        rng = np.random.default_rng(7)
        real, generated = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.5
        radii = quality.kth_neighbour_radii(real, 3, block=7)
        whole = quality.precision_recall(real, generated, k=3, block=7)
        assert quality.precision_recall(real, generated, k=3, block=7, real_radii=radii) == whole
        assert 0 < whole[0] < 1 and 0 < whole[1] < 1

    def test_squared_distances_are_the_expression_as_written_bit_for_bit(self):
        rng = np.random.default_rng(8)
        rows, columns = rng.normal(size=(50, 16)), rng.normal(size=(60, 16))
        written = np.maximum(
            np.sum(rows**2, axis=1)[:, None]
            + np.sum(columns**2, axis=1)[None, :]
            - 2 * rows @ columns.T,
            0.0,
        )
        np.testing.assert_array_equal(quality._squared_distances(rows, columns), written)
        assert quality._squared_distances(rows[:1], rows[:1])[0, 0] == pytest.approx(0, abs=1e-12)

    def test_a_point_on_a_ball_boundary_is_inside(self):
        real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k = 1: every radius is 1
        on_boundary = np.array([[-1.0], [4.0]])
        precision, _ = quality.precision_recall(real, on_boundary, k=1)
        assert precision == 1.0

    def test_float32_statistics_give_the_float64_distance(self):
        """The distance's eigendecompositions run in float64 whatever the inputs' precision
        (in float32 they round differently)."""
        rng = np.random.default_rng(5)
        a = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
        b = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5)) + 0.3
        statistics = [*quality.gaussian_statistics(a), *quality.gaussian_statistics(b)]
        expected = quality.frechet_distance(*statistics)
        for index in range(4):
            lowered = list(statistics)
            lowered[index] = lowered[index].astype(np.float32)
            lowered64 = [s.astype(np.float64) for s in lowered]
            assert quality.frechet_distance(*lowered) == quality.frechet_distance(*lowered64)
        assert expected > 0

    def test_distances_are_float64_whatever_the_points_precision(self):
        """Quarter steps above 1000, exact in float32: their squares near 10^6 keep only a
        sixteenth in float32, enough to move a point across a ball's edge, so the measure
        must compute in float64 (exact here) to recall 4 of the 6 real points."""
        real = np.array([1001.5, 1000.75, 1000.0, 1001.75, 1001.75, 1000.0], np.float32)
        generated = np.array([1001.0, 1001.5, 1001.5, 1000.75, 1001.5, 1001.5], np.float32)
        measured = quality.precision_recall(real[:, None], generated[:, None])
        assert measured == (1.0, 4 / 6)
        exact = quality.precision_recall(
            real[:, None].astype(np.float64), generated[:, None].astype(np.float64)
        )
        assert measured == exact

    def test_class_shares_are_rounded_to_five_digits(self):
        probabilities = np.eye(3)[[0, 1, 2]]
        assert quality.class_coverage(probabilities)["class_shares"] == [0.33333] * 3
