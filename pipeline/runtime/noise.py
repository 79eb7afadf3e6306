"""The noise a generator takes, and seeded noise that every language draws alike.

Value k of a seed is SplitMix64's output k (Steele, Lea and Flood 2014), a counter-based
generator, so row i can be drawn without the rows before it. `docs/CONTRACT.md` specifies it;
`web/generator.js` implements it for JavaScript, and a test keeps the two equal. numpy only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

NOISE_DISTRIBUTIONS = ("uniform", "normal")
SEEDED_NOISE = "splitmix64"
SEED_LIMIT = 2**64  # seeds are integers in [0, 2**64)
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(seed: int, first: int, count: int) -> np.ndarray:
    """uint64 `(count,)`: outputs `first` ... `first + count - 1` of SplitMix64 from `seed`,
    output k being mix(seed + (k + 1) * 0x9E3779B97F4A7C15 mod 2**64)."""
    counters = np.arange(first + 1, first + count + 1, dtype=np.uint64)
    z = np.uint64(seed) + counters * _GAMMA  # uint64 arrays wrap modulo 2**64
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def unit_uniform(seed: int, first: int, count: int) -> np.ndarray:
    """float64 in [0, 1): the top 24 bits of each SplitMix64 output over 2**24, exact in
    float32 and in every language's doubles."""
    return (splitmix64(seed, first, count) >> np.uint64(40)).astype(np.float64) / 2.0**24


@dataclass(frozen=True)
class Noise:
    """How a generator's noise is drawn. Training draws `TRAINING_NOISE`."""

    distribution: str = "uniform"
    low: float = -1.0
    high: float = 1.0

    def draw(self, rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
        """float32 `(count, dim)` noise from `rng`."""
        if self.distribution == "normal":
            return rng.standard_normal((count, dim), dtype=np.float32)
        return rng.uniform(self.low, self.high, (count, dim)).astype(np.float32)

    def seeded(self, seed: int, count: int, dim: int, *, first_row: int = 0) -> np.ndarray:
        """float32 `(count, dim)`: rows `first_row` ... of the noise of `seed` as
        docs/CONTRACT.md specifies, the same in Python, the browser and Node. Uniform noise
        is bit-identical everywhere (low + (high - low) * u in doubles, rounded to float32);
        normal noise (Box-Muller on consecutive pairs) may differ in the last bit."""
        first, total = first_row * dim, count * dim
        if self.distribution == "uniform":
            values = self.low + (self.high - self.low) * unit_uniform(seed, first, total)
            return values.astype(np.float32).reshape(count, dim)
        pairs = unit_uniform(seed, 2 * (first // 2), 2 * ((first + total + 1) // 2 - first // 2))
        radius = np.sqrt(-2.0 * np.log(1.0 - pairs[0::2]))
        angle = 2.0 * np.pi * pairs[1::2]
        normal = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).ravel()
        start = first % 2
        return normal[start : start + total].astype(np.float32).reshape(count, dim)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


TRAINING_NOISE = Noise()
