"""Golden model of the Quantizer: multiply by a scale, round, add a zero point, saturate.

The hardware (:class:`qdp.hdl.Quantizer`) computes, per element and exactly::

    y = saturate( round( x * M / 2**S ) + Z )

with ``round`` one of :data:`~qdp.golden.rounding.ROUNDING_MODES` and ``saturate`` one of
:data:`~qdp.golden.saturation.SATURATION_MODES`. :func:`requantize_tflite` states TFLite's
integer requantization (``MultiplyByQuantizedMultiplier``) instead.
"""

from fractions import Fraction
import math
import numbers

import numpy as np

from ._intarray import as_exact, as_output, check_fits
from .rounding import check_rounding, round_div, round_shift
from .saturation import check_saturation, saturate

__all__ = ["quantize", "requantize_tflite", "multiplier_from_scale", "quantize_multiplier_tflite"]


def _as_real(value):
    """``value`` as a Python int or float if it is a real scalar, else None.

    NumPy scalars count: frameworks hand scales over as float32.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _check_width(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name}: expected an integer in {lo}..{hi}, got {value!r}")


def quantize(x, multiplier, shift, *, zero_point=0, in_width=32, in_signed=True,
             mult_width=32, out_width=8, out_signed=True, rounding="half_even",
             saturation="sat", random=None):
    """``saturate(round(x * multiplier / 2**shift) + zero_point)``, exactly.

    Parameters
    ----------
    x : array_like of int
        Inputs; each must fit ``in_width`` bits (signed if ``in_signed``).
    multiplier, shift, zero_point : int or array_like of int
        Broadcast against ``x`` (a trailing axis of length ``lanes`` gives per-lane scales).
        ``multiplier`` is unsigned and fits ``mult_width`` bits, ``shift >= 0``, and
        ``zero_point`` lies in the output range.
    in_width, mult_width, out_width : int
        Bit widths (``in_width`` 2..64, ``mult_width`` 1..32, ``out_width`` 2..32).
    in_signed, out_signed : bool
        Signedness of the input and output.
    rounding : str
        A mode of :data:`~qdp.golden.rounding.ROUNDING_MODES`.
    saturation : str
        A mode of :data:`~qdp.golden.saturation.SATURATION_MODES`.
    random : array_like of int, optional
        The LFSR values ``r`` for ``stochastic`` rounding (see :mod:`qdp.golden.lfsr`).

    Returns
    -------
    numpy.ndarray of int64
    """
    _check_width("in_width", in_width, 2, 64)
    _check_width("mult_width", mult_width, 1, 32)
    _check_width("out_width", out_width, 2, 32)
    check_rounding(rounding)
    check_saturation(saturation)
    x, m, s, z = (as_exact(v) for v in (x, multiplier, shift, zero_point))
    check_fits("x", x, in_width, in_signed)
    check_fits("multiplier", m, mult_width, signed=False)
    if np.any(s < 0):
        raise ValueError(f"shift: must be >= 0, got {min(s.flat)}")
    check_fits("zero_point", z, out_width, out_signed)
    rounded = round_shift(x * m, s, rounding, random=random)
    y = saturate(rounded + z, width=out_width, signed=out_signed, saturation=saturation)
    return as_output(y, out_width)


def requantize_tflite(acc, multiplier, shift, *, zero_point=0, in_width=32, out_width=8,
                      out_signed=True, single_rounding=False):
    """TFLite's integer requantization, bit for bit, then zero point and clamp.

    ``multiplier`` is TFLite's ``quantized_multiplier`` (``0 <= M < 2**31``, usually in
    ``[2**30, 2**31)``) and ``shift`` its exponent (positive: left, negative: right),
    ``-31 <= shift <= 30``. The result is
    ``clamp(MultiplyByQuantizedMultiplier(acc, M, shift) + zero_point)``:

    * double rounding (default, TFLite's reference): ``SaturatingRoundingDoublingHighMul``
      -- ``(a * M + nudge) / 2**31`` truncated toward zero with ``nudge = 2**30`` for
      ``a * M >= 0`` and ``1 - 2**30`` otherwise, which rounds to nearest with ties toward
      +inf (``half_up``: the ``+1`` in the negative nudge sends negative ties toward zero) --
      of ``a = acc * 2**max(shift, 0)``, then ``RoundingDivideByPOT`` by ``max(-shift, 0)``
      (``half_away``: ties away from zero);
    * single rounding (``TFLITE_SINGLE_ROUNDING``): ``(acc * M + 2**(30 - shift)) >>
      (31 - shift)``, i.e. ``half_up`` of ``acc * M / 2**(31 - shift)``.

    TFLite computes ``acc * 2**left_shift`` in int32, which overflows (undefined in C++)
    when ``in_width + max(shift, 0) > 32``; qdp computes it exactly. The saturating case
    of ``SaturatingRoundingDoublingHighMul`` (both operands ``-2**31``) cannot occur since
    ``M >= 0``.
    """
    _check_width("in_width", in_width, 2, 32)
    _check_width("out_width", out_width, 2, 32)
    acc, m, s, z = (as_exact(v) for v in (acc, multiplier, shift, zero_point))
    check_fits("acc", acc, in_width, signed=True)
    check_fits("multiplier", m, 31, signed=False)
    if np.any(s < -31) or np.any(s > 30):
        raise ValueError("shift: TFLite shifts lie in -31..30")
    check_fits("zero_point", z, out_width, out_signed)
    acc, m, s = np.broadcast_arrays(acc, m, s)
    if single_rounding:
        scaled = round_shift(acc * m, 31 - s, "half_up")
    else:
        left = np.maximum(s, 0)
        right = np.maximum(-s, 0)
        high = round_shift((acc << left) * m, np.full(acc.shape, 31, dtype=object), "half_up")
        scaled = round_shift(high, right, "half_away")
    y = saturate(scaled + z, width=out_width, signed=out_signed, saturation="sat")
    return as_output(y, out_width)


def multiplier_from_scale(scale, *, mult_width=32, max_shift=63):
    """Convert a positive float scale into ``(M, S, rel_error)`` with ``M / 2**S ~ scale``.

    ``M`` is the ``mult_width``-bit unsigned integer nearest (ties to even) to
    ``scale * 2**S`` for the largest ``S <= max_shift`` at which it still fits, so M keeps as
    many significant bits as the width allows. ``rel_error = |M / 2**S - scale| / scale``,
    computed exactly from the float's value.
    """
    _check_width("mult_width", mult_width, 1, 32)
    value = _as_real(scale)
    if value is None or not (math.isfinite(value) and value > 0):
        raise ValueError(f"scale: expected a finite positive number, got {scale!r}")
    exact = Fraction(value)
    m_max = (1 << mult_width) - 1
    if round(exact) > m_max:
        raise ValueError(f"scale: {scale!r} does not fit a {mult_width}-bit multiplier "
                         f"with shift 0 (largest is {m_max})")
    best = None
    for s in range(max_shift + 1):
        m = round(exact * (1 << s))             # Fraction.__round__ ties to even
        if m > m_max:
            break
        best = (m, s)
    m, s = best
    if m == 0:
        raise ValueError(f"scale: {scale!r} is below the smallest step 2**-{max_shift}")
    rel_error = abs(Fraction(m, 1 << s) - exact) / exact
    return m, s, float(rel_error)


def quantize_multiplier_tflite(scale):
    """TFLite's ``QuantizeMultiplier``: a float scale to ``(M0, shift)`` for
    :func:`requantize_tflite`.

    ``scale = q * 2**shift`` with ``q`` in [0.5, 1) (``frexp``); ``M0 = round(q * 2**31)``
    with ties away from zero (``TfLiteRound``); ``M0 == 2**31`` becomes ``2**30`` with
    ``shift + 1``; a shift below -31 flushes to ``(0, 0)``.
    """
    value = _as_real(scale)
    if value is None or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"scale: expected a finite non-negative number, got {scale!r}")
    scale = value
    if scale == 0:
        return 0, 0
    q, shift = math.frexp(scale)
    m0 = int(round_div(Fraction(q * (1 << 31)).numerator, Fraction(q * (1 << 31)).denominator,
                       "half_away"))
    if m0 == 1 << 31:
        m0 //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return m0, shift
