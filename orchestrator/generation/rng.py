"""Counter-based random streams: a row's draws depend only on (seed, stream names, row index).

That is what makes output independent of the chunk size and keeps the first rows unchanged when more
rows are generated: there is no sequential generator state to carry from one chunk to the next.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LANE = np.uint64(0xD6E8FEB86659FD93)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))
_TO_UNIT = 1.0 / (1 << 53)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (a bijection on 64-bit words with full avalanche)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


class Stream:
    """Uniform draws addressed by row index; ``lane`` gives further independent draws for the same row."""

    def __init__(self, seed: int, *names: str) -> None:
        digest = hashlib.blake2b(repr((int(seed), names)).encode(), digest_size=8).digest()
        self.key = np.uint64(int.from_bytes(digest, "little"))

    def bits(self, idx: np.ndarray, lane: int = 0) -> np.ndarray:
        with np.errstate(over="ignore"):
            z = _mix(np.asarray(idx, dtype=np.uint64) * _GOLDEN + self.key)
            return _mix(z + np.uint64(lane) * _LANE)

    def uniform(self, idx: np.ndarray, lane: int = 0) -> np.ndarray:
        """Floats in [0, 1)."""
        return (self.bits(idx, lane) >> _S11).astype(np.float64) * _TO_UNIT

    def integers(self, idx: np.ndarray, high: np.ndarray | int, lane: int = 0) -> np.ndarray:
        """Integers in [0, high) (``high`` may differ per row)."""
        out = np.floor(self.uniform(idx, lane) * high).astype(np.int64)
        return np.minimum(out, np.asarray(high, dtype=np.int64) - 1)

    def choice(self, idx: np.ndarray, weights: np.ndarray | list[float], lane: int = 0) -> np.ndarray:
        """Index into ``weights`` drawn with probability proportional to each weight."""
        cum = np.cumsum(np.asarray(weights, dtype=np.float64))
        pick = np.searchsorted(cum / cum[-1], self.uniform(idx, lane), side="right")
        return np.minimum(pick, len(cum) - 1)

    def normal(self, idx: np.ndarray, lane: int = 0) -> np.ndarray:
        """Standard normal draws (Box-Muller on two lanes)."""
        u1 = 1.0 - self.uniform(idx, 2 * lane + 100)
        u2 = self.uniform(idx, 2 * lane + 101)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
