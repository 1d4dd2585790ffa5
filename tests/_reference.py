"""Reference rounding for the tests: each mode's textbook formula on an exact Fraction,
written from the mode table and nothing else (never from the code under test)."""

import math
from fractions import Fraction

TWO32 = 1 << 32


def sign(v):
    return (v > 0) - (v < 0)


def ref_round(v, mode, r=None):
    """Round the Fraction ``v``; ``r`` is the 32-bit random number of ``stochastic``."""
    half = Fraction(1, 2)
    if mode == "half_even":
        return round(v)                     # Fraction.__round__: ties to even
    if mode == "half_away":
        return sign(v) * math.floor(abs(v) + half)
    if mode == "half_up":
        return math.floor(v + half)
    if mode == "half_down":
        return math.ceil(v - half)
    if mode == "half_zero":
        return sign(v) * math.ceil(abs(v) - half)
    if mode == "floor":
        return math.floor(v)
    if mode == "trunc":
        return math.trunc(v)
    if mode == "stochastic":
        return math.floor(v + Fraction(r, TWO32))
    raise ValueError(f"mode: {mode!r}")
