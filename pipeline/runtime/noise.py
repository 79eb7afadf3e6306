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


def splitmix64(seed: int, k: np.ndarray) -> np.ndarray:
    """Output k of SplitMix64 from `seed` for each uint64 k: mix(seed + (k + 1) *
    0x9E3779B97F4A7C15 mod 2**64), so any value is drawn without the ones before it."""
    z = np.uint64(seed) + (k + np.uint64(1)) * _GAMMA  # uint64 arrays wrap modulo 2**64
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def unit_uniform(seed: int, k: np.ndarray) -> np.ndarray:
    """float64 in [0, 1): the top 24 bits of SplitMix64's output k over 2**24, exact in
    float32 and in every language's doubles."""
    return (splitmix64(seed, k) >> np.uint64(40)) / 2.0**24


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
        k = np.arange(first_row * dim, (first_row + count) * dim, dtype=np.uint64)
        if self.distribution == "uniform":
            values = self.low + (self.high - self.low) * unit_uniform(seed, k)
        else:  # value k is one of the pair k // 2 makes: even k its cosine, odd k its sine
            pair = k - k % np.uint64(2)
            radius = np.sqrt(-2.0 * np.log(1.0 - unit_uniform(seed, pair)))
            angle = 2.0 * np.pi * unit_uniform(seed, pair + np.uint64(1))
            values = np.where(k % np.uint64(2) == 0, np.cos(angle), np.sin(angle)) * radius
        return values.astype(np.float32).reshape(count, dim)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


TRAINING_NOISE = Noise()
