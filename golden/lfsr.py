"""The random numbers of ``stochastic`` rounding.

Each lane owns a 32-bit Galois LFSR with the maximal-length polynomial
x^32 + x^22 + x^2 + x + 1. One step is::

    state = (state >> 1) ^ (0x80200003 if state & 1 else 0)

Lane ``k`` starts (and restarts on reset) from ``lane_seed(seed, k)``. The state *before*
a step is the ``r`` that rounds the beat; the register steps once per accepted input
beat. The state is never 0, so ``u = r / 2**32`` lies strictly between 0 and 1.
"""

import numpy as np

__all__ = ["LFSR_TAPS", "DEFAULT_SEED", "lane_seed", "lfsr_step", "lfsr_values"]

LFSR_TAPS = 0x8020_0003
DEFAULT_SEED = 0x1234_5678
_MASK = 0xFFFF_FFFF


def lane_seed(seed, lane):
    """The start state of ``lane``: ``seed`` xor ``lane * 0x9E3779B9`` (mod 2**32), 1 if 0."""
    state = (seed ^ (lane * 0x9E37_79B9)) & _MASK
    return state or 1


def lfsr_step(state):
    """One Galois step of a 32-bit state (int or uint64 array)."""
    return (state >> 1) ^ ((state & 1) * LFSR_TAPS)


def lfsr_values(seed, lanes, beats):
    """The ``r`` used by each beat and lane: an int64 array of shape ``(beats, lanes)``."""
    state = np.array([lane_seed(seed, k) for k in range(lanes)], dtype=np.uint64)
    out = np.empty((beats, lanes), dtype=np.int64)
    for t in range(beats):
        out[t] = state
        state = lfsr_step(state)
    return out
