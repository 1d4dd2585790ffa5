"""Exact rounding of a rational to an integer.

Every rounding in qdp -- golden model, hardware and CLI -- is one of these modes, applied
to an exact rational ``num / den`` (``den > 0``):

============== ========================================= ====================================
name           result                                    also known as
============== ========================================= ====================================
``half_even``  nearest, ties to even                     numpy / ONNX / PyTorch round,
                                                         AP_RND_CONV
``half_away``  nearest, ties away from zero              C ``round``, TFLite QUANTIZE,
                                                         AP_RND_INF
``half_up``    nearest, ties toward +inf: floor(v + 1/2) AP_RND
``half_down``  nearest, ties toward -inf: ceil(v - 1/2)  AP_RND_MIN_INF
``half_zero``  nearest, ties toward zero                 AP_RND_ZERO
``floor``      toward -inf (arithmetic right shift)      AP_TRN
``trunc``      toward zero                               AP_TRN_ZERO
``stochastic`` floor(v + r / 2**32)                      --
============== ========================================= ====================================

For ``stochastic``, ``r`` is the 32-bit state of the lane's LFSR for that beat
(:mod:`qdp.golden.lfsr`), so ``u = r / 2**32`` lies in (0, 1) and the result is
``floor(v)`` or ``floor(v) + 1`` with probability equal to the fractional part of v (to
within 2**-32).
"""

import numpy as np

from ._intarray import as_exact

__all__ = ["ROUNDING_MODES", "NEAREST_MODES", "DETERMINISTIC_MODES", "ROUNDING_MODELS",
           "ABSMAX_MODELS", "STOCHASTIC_BITS",
           "check_rounding", "round_div", "round_shift"]

#: Every rounding mode, in the order of the table above (the CLI lists them so).
ROUNDING_MODES = ("half_even", "half_away", "half_up", "half_down", "half_zero",
                  "floor", "trunc", "stochastic")
#: The round-to-nearest modes: they differ only in where a tie goes.
NEAREST_MODES = ROUNDING_MODES[:5]
#: Every mode but ``stochastic`` (which needs a random number per element).
DETERMINISTIC_MODES = tuple(m for m in ROUNDING_MODES if m != "stochastic")

#: How a float-to-integer block rounds x / scale: ``onnx`` rounds the quotient to the
#: float format first (ONNX QuantizeLinear's sequence), then half to even; ``exact``
#: rounds the exact rational once, in any mode.
ROUNDING_MODELS = ("onnx", "exact")
#: How blockwise absmax on floats computes ``qmax * x / absmax`` (and Eq. 2 back):
#: ``exact`` rounds the rational once, ``float32`` as FP32 code does (see
#: :mod:`qdp.golden.absmax_float`).
ABSMAX_MODELS = ("exact", "float32")

#: Width of the random numbers ``r`` used by ``stochastic`` rounding.
STOCHASTIC_BITS = 32


def check_rounding(rounding, name="rounding"):
    """Raise ``ValueError`` unless ``rounding`` names a mode of :data:`ROUNDING_MODES`."""
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"{name}: unknown rounding mode {rounding!r}; "
                         f"expected one of {', '.join(ROUNDING_MODES)}")


def round_div(num, den, rounding, *, random=None):
    """Round the exact rationals ``num / den`` to integers.

    Parameters
    ----------
    num, den : array_like of int
        Numerators and (strictly positive) denominators, broadcast together.
    rounding : str
        One of :data:`ROUNDING_MODES`.
    random : array_like of int, optional
        For ``stochastic`` only: the 32-bit ``r`` of each element, broadcast with ``num``
        and ``den``.

    Returns
    -------
    numpy.ndarray of object
        Exact Python integers.
    """
    check_rounding(rounding)
    if rounding == "stochastic":
        if random is None:
            raise ValueError("random: stochastic rounding needs the LFSR values r")
        num, den, r = np.broadcast_arrays(as_exact(num), as_exact(den), as_exact(random))
    else:
        num, den = np.broadcast_arrays(as_exact(num), as_exact(den))
    shape = num.shape
    # Ufuncs turn 0-d object arrays into bare Python ints (and np.minimum & co. then into
    # overflowing int64), so compute on 1-d arrays and give the shape back at the end.
    num, den = num.reshape(-1), den.reshape(-1)
    if np.any(den <= 0):
        raise ValueError("den: denominators must be positive")
    if rounding == "stochastic":
        r = r.reshape(-1)
        if np.any(r < 0) or np.any(r >= 1 << STOCHASTIC_BITS):
            raise ValueError(f"random: r must lie in 0..2**{STOCHASTIC_BITS}-1")
        return (((num << STOCHASTIC_BITS) + r * den) // (den << STOCHASTIC_BITS)).reshape(shape)
    if random is not None:
        raise ValueError(f"random: only stochastic rounding takes random values, "
                         f"not {rounding!r}")

    floor = num // den
    rem2 = 2 * (num - floor * den)          # 2 * fractional part * den, in [0, 2 den)
    above_half = rem2 > den
    tie = rem2 == den
    exact = rem2 == 0
    negative = num < 0
    if rounding == "floor":
        up = np.zeros(floor.shape, dtype=bool)
    elif rounding == "trunc":
        up = negative & ~exact
    else:
        tie_up = {
            "half_even": (floor % 2) == 1,
            "half_away": ~negative,
            "half_up": np.ones(floor.shape, dtype=bool),
            "half_down": np.zeros(floor.shape, dtype=bool),
            "half_zero": negative,
        }[rounding]
        up = above_half | (tie & tie_up)
    return (floor + up.astype(object)).reshape(shape)


def round_shift(num, shift, rounding, *, random=None):
    """Round ``num / 2**shift`` (``shift >= 0``) to integers; see :func:`round_div`."""
    shift = as_exact(shift)
    if np.any(shift < 0):
        raise ValueError("shift: must be >= 0")
    return round_div(num, np.left_shift(np.ones_like(shift, dtype=object), shift),
                     rounding, random=random)
