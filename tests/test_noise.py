"""The seeded noise every language draws alike (docs/CONTRACT.md), against a reference written
here from the specification with Python's integers, and the noise training draws."""

import math

import numpy as np
import pytest

from pipeline.runtime.noise import TRAINING_NOISE, Noise, splitmix64, unit_uniform

MASK = 2**64 - 1


def reference_splitmix64(seed: int, k: int) -> int:
    z = (seed + (k + 1) * 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def reference_uniform(seed: int, k: int) -> float:
    return (reference_splitmix64(seed, k) >> 40) / 2**24


def test_splitmix64_matches_its_published_outputs():
    # The first outputs from state 0 in the reference implementation (Vigna's splitmix64.c).
    expected = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert [int(x) for x in splitmix64(0, np.arange(3, dtype=np.uint64))] == expected


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 + 7, 2**64 - 1])
def test_splitmix64_is_the_specification_at_any_offset(seed):
    assert [int(x) for x in splitmix64(seed, np.arange(5, 9, dtype=np.uint64))] == [
        reference_splitmix64(seed, k) for k in range(5, 9)
    ]


def test_unit_uniform_is_the_top_24_bits():
    values = unit_uniform(99, np.arange(2, 8, dtype=np.uint64))
    assert values.dtype == np.float64
    assert list(values) == [reference_uniform(99, k) for k in range(2, 8)]
    assert ((values >= 0) & (values < 1)).all()


@pytest.mark.parametrize("first_row", [0, 3])
def test_uniform_rows_are_low_plus_the_range_times_u(first_row):
    noise = Noise("uniform", 2.0, 5.0)
    drawn = noise.seeded(7, 2, 3, first_row=first_row)
    assert drawn.dtype == np.float32 and drawn.shape == (2, 3)
    expected = [
        [2.0 + 3.0 * reference_uniform(7, (first_row + i) * 3 + j) for j in range(3)]
        for i in range(2)
    ]
    np.testing.assert_array_equal(drawn, np.float32(expected))


def reference_normal(seed: int, k: int) -> float:
    m = k // 2
    radius = math.sqrt(-2 * math.log(1 - reference_uniform(seed, 2 * m)))
    angle = 2 * math.pi * reference_uniform(seed, 2 * m + 1)
    return radius * (math.cos(angle) if k % 2 == 0 else math.sin(angle))


@pytest.mark.parametrize(("count", "dim", "first_row"), [(2, 3, 0), (3, 3, 1), (1, 4, 2)])
def test_normal_rows_are_box_muller_on_consecutive_pairs(count, dim, first_row):
    """Odd widths start and end rows in the middle of a pair."""
    drawn = Noise("normal").seeded(11, count, dim, first_row=first_row)
    assert drawn.dtype == np.float32 and drawn.shape == (count, dim)
    expected = [
        [reference_normal(11, (first_row + i) * dim + j) for j in range(dim)] for i in range(count)
    ]
    np.testing.assert_allclose(drawn, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("noise", [Noise(), Noise("normal")])
def test_a_row_does_not_depend_on_the_rows_drawn_with_it(noise):
    whole = noise.seeded(3, 6, 5)
    for first_row in range(6):
        np.testing.assert_array_equal(
            noise.seeded(3, 1, 5, first_row=first_row)[0], whole[first_row]
        )


def test_training_draws_from_the_generator_it_is_given():
    uniform = Noise("uniform", -0.5, 0.25).draw(np.random.default_rng(4), 3, 2)
    expected = np.random.default_rng(4).uniform(-0.5, 0.25, (3, 2)).astype(np.float32)
    np.testing.assert_array_equal(uniform, expected)
    assert uniform.dtype == np.float32
    normal = Noise("normal").draw(np.random.default_rng(4), 3, 2)
    np.testing.assert_array_equal(
        normal, np.random.default_rng(4).standard_normal((3, 2), dtype=np.float32)
    )


def test_the_training_noise_is_uniform_on_minus_one_to_one():
    assert TRAINING_NOISE.as_dict() == {"distribution": "uniform", "low": -1.0, "high": 1.0}
