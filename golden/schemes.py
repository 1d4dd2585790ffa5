"""The seeds' float quantization schemes, as golden helpers.

These are the float-facing side of qdp: they take float tensors and float scales, the way
a training framework hands them over. Floats are allowed here, but every rounding is done
exactly: a float is a dyadic rational, so ``f / s + z`` or ``qmax * x / absmax`` is an exact
rational of the inputs, and it is rounded with :func:`~qdp.golden.rounding.round_div`,
the same rounding the hardware uses. Frameworks compute these expressions in float32
first and round the float result; the two agree except where that float error carries
the value across a rounding tie (the conformance tests count those cases).

Only the returned scales (``c``, ``s``, ``scale``) and the dequantized values are computed
in floating point.
"""

from fractions import Fraction
import math
import numbers

import numpy as np

from ._intarray import as_exact, int_range
from .rounding import check_rounding, round_div
from .saturation import saturate

__all__ = [
    "absmax_quantize", "absmax_dequantize",
    "zeropoint_params", "zeropoint_quantize", "zeropoint_dequantize",
    "fixed_point_frac_bits", "fixed_point_quantize",
    "calibrate_minmax",
]


def _check_int(name, value, lo, hi, why=""):
    if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
            or not lo <= value <= hi):
        raise ValueError(f"{name}: expected an integer in {lo}..{hi}{why}, got {value!r}")
    return int(value)


def _check_scale(name, value):
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not math.isfinite(value) or not value > 0):
        raise ValueError(f"{name}: expected a finite positive number, got {value!r}")
    return float(value)


def _check_real(name, value):
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not math.isfinite(value)):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _check_deterministic(rounding):
    check_rounding(rounding)
    if rounding == "stochastic":
        raise ValueError("rounding: the float helpers take the deterministic modes only; "
                         "stochastic rounding needs the LFSR values (use round_div)")


def _exact_ratio(name, values):
    """Exact ``(num, den)`` object arrays of integers with ``values == num / den``.

    Integers give ``den = 1``. Floats up to 64 bits are dyadic: ``f = m * 2**e`` with
    ``m * 2**53`` an integer (``frexp``), so no precision is lost.
    """
    array = np.asarray(values)
    kind = array.dtype.kind
    if kind in "iuO":
        num = as_exact(array)
        return num, np.ones(num.shape, dtype=object)
    if kind != "f" or array.dtype.itemsize > 8:
        raise TypeError(f"{name}: expected integers or floats of at most 64 bits, "
                        f"got dtype {array.dtype}")
    # 1-d throughout: numpy turns 0-d results into scalars (int64 ones overflow).
    f = array.astype(np.float64).reshape(-1)
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{name}: values must be finite (got inf or nan)")
    mantissa, exponent = np.frexp(f)
    num = np.ldexp(mantissa, 53).astype(np.int64).astype(object)
    exponent = exponent.astype(np.int64) - 53
    up = np.maximum(exponent, 0).astype(object)
    down = np.maximum(-exponent, 0).astype(object)
    num = np.left_shift(num, up)
    den = np.left_shift(np.ones(f.shape, dtype=object), down)
    return num.reshape(array.shape), den.reshape(array.shape)


def _as_int_output(values):
    return np.asarray(values, dtype=object).astype(np.int64)


def _to_float(values):
    # np.asarray first: arithmetic on a 0-d object array yields a bare Python int.
    return np.asarray(values, dtype=object).astype(np.float64)


# --- absmax symmetric -------------------------------------------------------------------

def absmax_quantize(x, *, bits=8, rounding="half_even"):
    """Symmetric absmax quantization of a whole tensor: ``q = round(c * x)``.

    With ``qmax = 2**(bits-1) - 1`` and ``c = qmax / max|x|``, the seeds' scheme.

    Parameters
    ----------
    x : array_like of float or int
        The tensor (finite values). One scale covers all of it.
    bits : int, optional
        Width of the signed result, 2..32 (default 8: ``qmax = 127``).
    rounding : str, optional
        A deterministic mode of :data:`~qdp.golden.rounding.ROUNDING_MODES`
        (default ``"half_even"``).

    Returns
    -------
    q : numpy.ndarray of int64
        Same shape as ``x``, in ``[-qmax, qmax]``.
    c : float
        ``qmax / max|x|``, the factor that :func:`absmax_dequantize` divides by. When every
        element is 0, ``q`` is all zeros and ``c = 1.0`` (any finite positive ``c`` maps
        ``q = 0`` back to 0; 1.0 avoids an infinite or undefined factor).

    Notes
    -----
    ``q`` is ``round(qmax * x / max|x|)`` rounded exactly from the rational value of the
    inputs, as the blockwise absmax hardware computes it. Evaluating ``c * x`` in floating
    point instead rounds twice and can fall on the wrong side of a tie: for ``x = [23, 46]``,
    ``127 * 23 / 46 = 63.5`` exactly (``q = 64``), while ``(127 / 46) * 23`` evaluates to
    ``63.49999999999999`` in float64 and rounds to 63.
    """
    bits = _check_int("bits", bits, 2, 32)
    _check_deterministic(rounding)
    num, den = _exact_ratio("x", x)
    qmax = (1 << (bits - 1)) - 1
    if num.size == 0:
        return np.zeros(num.shape, dtype=np.int64), 1.0
    flat_x = np.asarray(x).reshape(-1)
    if flat_x.dtype.kind == "f":
        absmax = Fraction(float(np.max(np.abs(flat_x.astype(np.float64)))))   # exact
    else:
        absmax = Fraction(int(np.max(np.abs(num.reshape(-1)))))
    if absmax == 0:
        return np.zeros(num.shape, dtype=np.int64), 1.0
    q = round_div(qmax * num * absmax.denominator, den * absmax.numerator, rounding)
    return _as_int_output(q), qmax / float(absmax)


def absmax_dequantize(q, c):
    """``q / c`` as float64: the inverse of :func:`absmax_quantize`.

    Parameters
    ----------
    q : array_like of int
        Quantized values.
    c : float
        The factor returned by :func:`absmax_quantize` (finite, positive).

    Returns
    -------
    numpy.ndarray of float64
    """
    c = _check_scale("c", c)
    return _to_float(as_exact(q)) / c


# --- zero-point affine ------------------------------------------------------------------

def zeropoint_params(fmin, fmax, *, bits=8, signed=False):
    """Scale and zero point of the affine scheme for the float range ``[fmin, fmax]``.

    ``s = (fmax - fmin) / (qmax - qmin)`` and ``z = round(qmax - fmax / s)``, the seeds'
    formulas, after widening the range to include 0.

    Parameters
    ----------
    fmin, fmax : float
        The observed range, ``fmin <= fmax``, finite.
    bits : int, optional
        Width of the quantized integers, 2..32 (default 8).
    signed : bool, optional
        Quantized integers signed (``[-2**(bits-1), 2**(bits-1) - 1]``) or unsigned
        (``[0, 2**bits - 1]``, the default).

    Returns
    -------
    s : float
        The scale (float64).
    z : int
        The zero point, in ``[qmin, qmax]``.

    Notes
    -----
    The range is first widened to ``[min(fmin, 0), max(fmax, 0)]``, so that 0.0 is
    exactly representable (the integer ``z`` stands for it, which keeps zero padding and
    ReLU exact); without it the zero point of a range such as ``[1, 3]`` falls outside
    the integer range. Then ``z`` lies in ``[qmin, qmax]`` in exact arithmetic; it is
    clipped there anyway. ``z`` is the exact rational ``qmax - fmax / s`` (with ``s`` the
    float64 scale above) rounded half to even.

    Degenerate range: when the widened range is ``[0, 0]`` (``fmin == fmax == 0``) every
    value is 0; the result is ``s = 1.0, z = 0`` (0 lies in the integer range signed or
    unsigned), so that quantizing and dequantizing 0.0 gives 0 back. ``fmin == fmax != 0``
    is not degenerate after widening.
    """
    fmin = _check_real("fmin", fmin)
    fmax = _check_real("fmax", fmax)
    bits = _check_int("bits", bits, 2, 32)
    if fmin > fmax:
        raise ValueError(f"fmin: {fmin!r} is greater than fmax {fmax!r}")
    qmin, qmax = int_range(bits, bool(signed))
    lo, hi = min(fmin, 0.0), max(fmax, 0.0)
    if lo == hi:
        return 1.0, 0
    s = (hi - lo) / (qmax - qmin)
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"fmax: the range [{fmin!r}, {fmax!r}] gives scale {s!r}, "
                         f"not a finite positive float64")
    z = round(qmax - Fraction(hi) / Fraction(s))       # Fraction rounds ties to even
    return s, min(max(z, qmin), qmax)


def zeropoint_quantize(f, s, z, *, bits=8, signed=False):
    """Affine quantization ``q = clip(round(f / s + z), qmin, qmax)``, the seeds' formula.

    Parameters
    ----------
    f : array_like of float or int
        Values to quantize (finite).
    s : float
        Scale, finite and positive.
    z : int
        Zero point, inside the integer range.
    bits : int, optional
        Width of the quantized integers, 2..32 (default 8).
    signed : bool, optional
        Signed or unsigned (default) integers.

    Returns
    -------
    numpy.ndarray of int64

    Notes
    -----
    ``f / s + z`` is rounded half to even as an exact rational. The zero point is added
    *before* rounding, as the seeds write it and as ``torch.quantize_per_tensor`` does;
    ONNX ``QuantizeLinear``, ``torch.fake_quantize_per_tensor_affine`` and qdp's
    Quantizer hardware add it after (``round(f / s) + z``). The two differ only on an
    exact tie with an odd ``z``: ``f / s = 0.5, z = 1`` gives 2 here and 1 there.
    """
    s = _check_scale("s", s)
    bits = _check_int("bits", bits, 2, 32)
    qmin, qmax = int_range(bits, bool(signed))
    z = _check_int("z", z, qmin, qmax, " (the integer range)")
    fn, fd = _exact_ratio("f", f)
    sn, sd = s.as_integer_ratio()
    q = round_div(fn * sd + z * fd * sn, fd * sn, "half_even")
    return _as_int_output(saturate(q, width=bits, signed=bool(signed), saturation="sat"))


def zeropoint_dequantize(q, s, z):
    """``(q - z) * s`` as float64: the inverse of :func:`zeropoint_quantize`.

    Parameters
    ----------
    q : array_like of int
        Quantized values.
    s : float
        Scale, finite and positive.
    z : int
        Zero point.

    Returns
    -------
    numpy.ndarray of float64
        ``q - z`` is exact; the product is rounded once, to float64. For 8- or 16-bit
        ``q`` and a float32 ``s`` the product is exact in float64, so casting the result
        to float32 gives what ONNX ``DequantizeLinear`` computes.
    """
    s = _check_scale("s", s)
    if not isinstance(z, numbers.Integral) or isinstance(z, bool):
        raise ValueError(f"z: expected an integer, got {z!r}")
    return _to_float(as_exact(q) - int(z)) * s


# --- power-of-two fixed point -----------------------------------------------------------

def fixed_point_frac_bits(max_abs, bw):
    """Fraction bits of a signed ``bw``-bit fixed-point format holding ``(-max_abs, max_abs)``.

    ``frac_bw = bw - 1 - int_bits``: what is left after the sign bit and the integer bits,
    where ``int_bits`` is the smallest ``i >= 0`` with ``max_abs <= 2**i``.

    Parameters
    ----------
    max_abs : float
        Bound on the magnitudes, finite and ``>= 0``. Values are taken to lie in the open
        interval ``(-max_abs, max_abs)``: weights in (-2, 2) give ``max_abs = 2`` and one
        integer bit. The format's range is ``[-2**int_bits, 2**int_bits - 2**-frac_bw]``.
    bw : int
        Total width including the sign bit, 2..53.

    Returns
    -------
    int
        ``frac_bw``, ``>= 0``.

    Raises
    ------
    ValueError
        If ``max_abs`` needs more integer bits than ``bw - 1``.

    Examples
    --------
    >>> fixed_point_frac_bits(2.0, 8)       # weights in (-2, 2) on 8 bits
    6
    """
    max_abs = _check_real("max_abs", max_abs)
    if max_abs < 0:
        raise ValueError(f"max_abs: must be >= 0, got {max_abs!r}")
    bw = _check_int("bw", bw, 2, 53)
    if max_abs <= 1:
        int_bits = 0
    else:
        mantissa, exponent = math.frexp(max_abs)     # max_abs = mantissa * 2**exponent
        int_bits = exponent - 1 if mantissa == 0.5 else exponent
    frac_bw = bw - 1 - int_bits
    if frac_bw < 0:
        raise ValueError(f"max_abs: {max_abs!r} needs {int_bits} integer bits, more than the "
                         f"{bw - 1} that bw={bw} leaves after the sign bit")
    return frac_bw


def fixed_point_quantize(fx, bw, frac_bw, *, rounding="half_even"):
    """Quantize to signed ``bw``-bit fixed point with ``frac_bw`` fraction bits.

    Scale by ``2**frac_bw``, clip to ``[-2**(bw-1), 2**(bw-1) - 1]``, round, and return the
    value the fixed-point number stands for, ``q / 2**frac_bw``.

    Parameters
    ----------
    fx : array_like of float or int
        Values (finite).
    bw : int
        Total width including the sign bit, 2..53 (so that every result is exact in
        float64).
    frac_bw : int
        Fraction bits; may be negative (steps of 2, 4, ...) or exceed ``bw - 1``.
    rounding : str, optional
        A deterministic rounding mode (default ``"half_even"``).

    Returns
    -------
    numpy.ndarray of float64
        Exactly ``q * 2**-frac_bw`` for the integer ``q``.

    Notes
    -----
    Clipping before or after rounding gives the same ``q``: every mode maps integers to
    themselves and is monotone, and the bounds are integers.

    Examples
    --------
    >>> fixed_point_quantize(0.101, 8, 6)
    array(0.09375)
    """
    bw = _check_int("bw", bw, 2, 53)
    frac_bw = _check_int("frac_bw", frac_bw, -1074, 1074)
    _check_deterministic(rounding)
    num, den = _exact_ratio("fx", fx)
    if frac_bw >= 0:
        num = np.asarray(num * (1 << frac_bw), dtype=object)
    else:
        den = np.asarray(den * (1 << -frac_bw), dtype=object)
    q = saturate(round_div(num, den, rounding), width=bw, signed=True, saturation="sat")
    return np.asarray(np.ldexp(_to_float(q), -frac_bw))


# --- min/max calibration ----------------------------------------------------------------

def calibrate_minmax(x, *, symmetric=False, bits=8, signed=None):
    """Scale and zero point from the min and max of ``x``, like PyTorch's ``MinMaxObserver``.

    Computed in float32 exactly as the observer computes them (``torch.ao.quantization.
    MinMaxObserver.calculate_qparams``), so the pair is the one a PyTorch-quantized model
    stores:

    * the range is widened to include 0: ``lo = min(min(x), 0)``, ``hi = max(max(x), 0)``;
    * affine: ``scale = (hi - lo) / (qmax - qmin)``, ``zero_point = qmin - round(lo /
      scale)`` (half to even), clipped into ``[qmin, qmax]``;
    * symmetric: ``scale = max(-lo, hi) / ((qmax - qmin) / 2)`` (127.5 for 8 bits, not the
      absmax scheme's 127), ``zero_point = 0`` when signed and ``2**(bits-1)`` (128 for 8
      bits) when unsigned;
    * ``scale`` is at least float32 ``eps`` (2**-23), which also covers an all-zero ``x``;
      a range so wide that ``hi - lo`` overflows float32 raises ``ValueError`` (PyTorch
      returns an infinite scale).

    Parameters
    ----------
    x : array_like of float
        The observed tensor, non-empty and finite; taken as float32 (values are rounded to
        float32 first, as in a float32 model).
    symmetric : bool, optional
        ``per_tensor_symmetric`` instead of ``per_tensor_affine`` (default).
    bits : int, optional
        Width of the quantized integers, 2..16 (default 8).
    signed : bool or None, optional
        Signed or unsigned integers. The default (None) is signed for symmetric and unsigned
        for affine, PyTorch's usual ``qint8`` weights and ``quint8`` activations.

    Returns
    -------
    scale : float
        A float32 value (returned as a Python float).
    zero_point : int

    Notes
    -----
    The affine zero point equals the seeds' ``round(qmax - hi / scale)`` in exact
    arithmetic up to rounding of ties; see :func:`zeropoint_params` for the seeds' form.
    With an explicit ``quant_min``/``quant_max``, PyTorch's unsigned symmetric zero point is
    ``(qmin + qmax) // 2`` (127 for 8 bits) instead of 128.
    """
    bits = _check_int("bits", bits, 2, 16)
    signed = bool(symmetric) if signed is None else bool(signed)
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise TypeError(f"x: expected a float array, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError("x: needs at least one value to calibrate on")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("x: values must be finite (got inf or nan)")
    qmin, qmax = int_range(bits, signed)
    f32 = np.float32
    lo = min(f32(x.min()), f32(0))
    hi = max(f32(x.max()), f32(0))
    eps = np.finfo(np.float32).eps
    with np.errstate(over="ignore"):
        if symmetric:
            scale = max(f32(max(-lo, hi)) / f32((qmax - qmin) / 2), eps)
        else:
            scale = max(f32(hi - lo) / f32(qmax - qmin), eps)
    if not np.isfinite(scale):
        # PyTorch returns an infinite scale here (and zero point qmin); no (M, S) or
        # hardware can use it, so say so.
        raise ValueError(f"x: the range [{lo}, {hi}] overflows a float32 scale")
    if symmetric:
        zero_point = 0 if signed else 1 << (bits - 1)
    else:
        zero_point = qmin - int(np.rint(f32(lo) / f32(scale)))
        zero_point = min(max(zero_point, qmin), qmax)
    return float(f32(scale)), int(zero_point)
