"""Golden model of ONNX QuantizeLinear: floats in, integers out.

For FP32, BF16 or FP16 inputs ``x`` and scales ``s`` (both of ``in_format``, as ONNX
types them alike) and an integer zero point ``z`` in the output range::

    y = saturate( round(x / s) + z )        saturate: clip to the out_width range

in one of two rounding models:

``"onnx"`` (the default)
    ONNX's operation sequence, bit for bit: ``x / s`` correctly rounded to the scale's
    format (IEEE division; NumPy's float16 and ml_dtypes' bfloat16 divide in float32 and
    round again, which for a quotient of two such numbers gives the same value), then
    rounded half to even (``np.rint``), then ``+ z``, then clipped. This is
    ``onnx/reference/ops/op_quantize_linear.py``, and for FP32 onnxruntime's CPU kernel
    (``std::nearbyintf(x / s) + z``, then clamp). onnxruntime's FP16 kernel widens ``x``
    and ``s`` to float32 and never rounds the quotient to FP16: it equals this model at
    ``in_format="fp32"`` on the widened values, and differs from the FP16 model where
    the two quotients round to different integers (counted in qdp's conformance tests).
``"exact"``
    The exact rational ``x / s`` rounded once, in any mode of
    :data:`~qdp.golden.rounding.ROUNDING_MODES` (``stochastic`` takes ``random``, one
    32-bit value per element), then ``+ z`` and clipped.

Special values, in both models (the hardware computes the same):

- ``x / s`` is IEEE's: ``±Inf`` (``x = ±Inf`` with a finite scale, or a nonzero ``x``
  over a zero scale) saturates to the range's end of that sign;
- a NaN quotient (``x`` or ``s`` NaN, ``0 / 0``, ``Inf / Inf``) gives the range's
  lowest value ``qmin`` (-128 for int8, 0 for uint8), whatever ``z``: what onnxruntime's
  CPU kernel returns;
- ``x / ±Inf`` for finite ``x`` is a signed zero: ``y = z``.

The ONNX reference evaluator agrees wherever its ``np.rint(q).astype(np.int32)`` is
defined. For NaN, ±Inf and ``|x / s| >= 2**31`` that cast is undefined: on x86 it gives
INT_MIN for float32 and float16 quotients (0 for bfloat16, through ml_dtypes), and the
int32 ``+= z`` that follows may wrap, so the reference clips such elements to ``qmin``,
to ``qmax`` (NaN and +Inf with ``z < 0``) or to ``z``, where the specification,
onnxruntime and qdp saturate by the sign.

A constant scale must be a positive finite number (the public function refuses zero,
negative, NaN and Inf scales); the hardware's run-time scale takes any bit pattern and
gives the values above. Scales and zero points are per tensor, per axis or per block
(:mod:`qdp.golden.linear_params`).
"""

import numpy as np

from . import floats
from ._intarray import as_exact, check_fits, int_range
from .floats import INF, NAN, ZERO
from .linear_params import expand
from .rounding import ROUNDING_MODELS, check_rounding, round_div

__all__ = ["quantize_linear", "quantize_linear_bits", "ROUNDING_MODELS", "check_scale"]

# Beyond these shifts every quotient saturates or is far below the last place of every
# rounding mode (stochastic's 2**-32 included), so the exact value need not be formed.
_MAX_UP, _MAX_DOWN = 60, 80


def check_scale(bits, fmt, name="scale"):
    """Refuse constant scales that are zero, negative, NaN or Inf, naming ``name``."""
    cls, sign = floats.classify(bits, fmt)
    bad = (cls == ZERO) | (cls == INF) | (cls == NAN) | sign
    if np.any(bad):
        value = fmt.values(bits[bad].reshape(-1)[:1])[0] if fmt.dtype is not None \
            else f"bits {int(bits[bad].reshape(-1)[0]):#x}"
        raise ValueError(f"{name}: {value} is not allowed; a scale must be a positive "
                         f"finite {fmt.name} number")


def _check_width(out_width):
    if not isinstance(out_width, (int, np.integer)) or isinstance(out_width, bool) \
            or not 2 <= out_width <= 16:
        raise ValueError(f"out_width: {out_width!r} is out of range (allowed 2..16)")
    return int(out_width)


def _exact_quotient(x_bits, s_bits, fmt):
    """``x / s`` of finite operands as ``(num, den)`` Python-int arrays (den > 0)."""
    sign_x, mx, ex = floats.decompose(x_bits, fmt)
    sign_s, ms, es = floats.decompose(s_bits, fmt)
    up = np.clip(ex - es, 0, _MAX_UP)
    down = np.clip(es - ex, 0, _MAX_DOWN)
    num = np.left_shift(mx.astype(object), up.astype(object))
    den = np.left_shift(np.maximum(ms, 1).astype(object), down.astype(object))
    return np.where(sign_x ^ sign_s, -num, num), den


def _onnx_quotient(x_bits, s_bits, fmt):
    """``rint``'s input: the rounded quotient ``fl(x / s)`` as ``(num, den)``, and
    whether it overflowed to Inf."""
    q_bits = floats.divide(x_bits, s_bits, fmt)
    overflow = floats.classify(q_bits, fmt)[0] == INF
    sign, mq, eq = floats.decompose(q_bits, fmt)
    num = np.left_shift(mq.astype(object), np.clip(eq, 0, _MAX_UP).astype(object))
    den = np.left_shift(np.ones(mq.shape, dtype=object),
                        np.maximum(-eq, 0).astype(object))
    return np.where(sign, -num, num), den, overflow


def quantize_linear_bits(x_bits, s_bits, zero_point, fmt, *, out_width=8, out_signed=True,
                         rounding_model="onnx", rounding="half_even", random=None):
    """Element-wise QuantizeLinear on bit patterns (int64 arrays of one shape), any
    scale accepted: the run-time semantics of the module docstring. int64 results."""
    fmt = floats.float_format(fmt)
    x_bits, s_bits = np.broadcast_arrays(np.asarray(x_bits, np.int64),
                                         np.asarray(s_bits, np.int64))
    shape = x_bits.shape
    x_bits, s_bits = x_bits.reshape(-1), s_bits.reshape(-1)
    z = np.broadcast_to(as_exact(zero_point), shape).reshape(-1)
    qmin, qmax = int_range(out_width, out_signed)
    xc, xs = floats.classify(x_bits, fmt)
    sc, ss = floats.classify(s_bits, fmt)
    nan = (xc == NAN) | (sc == NAN) | ((xc == ZERO) & (sc == ZERO)) \
        | ((xc == INF) & (sc == INF))
    inf = ((xc == INF) | (sc == ZERO)) & ~nan
    finite = ~nan & ~inf & (sc != INF)
    # Operands that are not both finite (and a nonzero scale) are replaced by
    # 0 / 2**emax, whose rounding is 0 in every mode; their results are set below.
    safe_x = np.where(finite, x_bits, 0)
    safe_s = np.where(finite, s_bits, fmt.inf_bits - (1 << fmt.man_bits))
    if rounding_model == "onnx":
        num, den, overflow = _onnx_quotient(safe_x, safe_s, fmt)
        inf |= overflow
    else:
        num, den = _exact_quotient(safe_x, safe_s, fmt)
    if random is not None:
        random = np.asarray(random).reshape(-1)
    rounded = round_div(num, den, rounding, random=random)
    y = np.clip(rounded + z, qmin, qmax)
    y = np.where(inf, np.where(xs ^ ss, qmin, qmax), y)
    y = np.where(nan, qmin, y)
    return y.astype(np.int64).reshape(shape)


def quantize_linear(x, scale, zero_point=0, *, in_format="fp32", out_width=8,
                    out_signed=True, axis=None, block_size=None, rounding_model="onnx",
                    rounding="half_even", random=None):
    """``saturate(round(x / scale) + zero_point)`` as ONNX QuantizeLinear computes it.

    Parameters
    ----------
    x : array_like
        Floats of ``in_format`` (``numpy.float32``, ``ml_dtypes.bfloat16``,
        ``numpy.float16``), or their bit patterns as unsigned integers (the only way for a
        custom ``"eXmY"`` format). Python numbers and lists are rounded to the format.
    scale : array_like
        Of ``in_format`` like ``x``: a positive finite number per tensor, per ``axis`` or
        per block (see :mod:`qdp.golden.linear_params`).
    zero_point : int or array_like of int
        In the output range; laid out like ``scale``. ``None`` is 0.
    in_format : str
        ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"eXmY"``.
    out_width, out_signed : int, bool
        The output: 2..16 bits, signed or unsigned.
    axis, block_size : int or None
        The scale's axis; ONNX opset 21's block size along it.
    rounding_model : str
        ``"onnx"`` (ONNX's sequence, half to even) or ``"exact"`` (one rounding of the
        exact quotient in ``rounding``).
    rounding : str
        For ``"exact"``: a mode of :data:`~qdp.golden.rounding.ROUNDING_MODES`.
    random : array_like of int, optional
        For ``stochastic``: one 32-bit ``r`` per element (C order).

    Returns
    -------
    numpy.ndarray of int64, shaped like ``x``.
    """
    fmt = floats.float_format(in_format, "in_format")
    out_width = _check_width(out_width)
    if rounding_model not in ROUNDING_MODELS:
        raise ValueError(f"rounding_model: unknown model {rounding_model!r}; expected one "
                         f"of {', '.join(ROUNDING_MODELS)}")
    check_rounding(rounding)
    if rounding_model == "onnx" and rounding != "half_even":
        raise ValueError(f"rounding: the onnx model rounds half to even; {rounding!r} "
                         f"needs rounding_model='exact'")
    x_bits = floats.as_bits(x, fmt, "x")
    s_bits = floats.as_bits(scale, fmt, "scale")
    check_scale(s_bits, fmt)
    zero_point = as_exact(np.asarray(0 if zero_point is None else zero_point))
    check_fits("zero_point", zero_point, out_width, out_signed)
    shape = x_bits.shape
    s_full = expand(s_bits, shape, axis, block_size, "scale")
    z_full = expand(zero_point, shape, axis, block_size, "zero_point")
    if random is not None and np.asarray(random).size != x_bits.size:
        raise ValueError(f"random: expected one value per element ({x_bits.size})")
    return quantize_linear_bits(x_bits, s_full, z_full, fmt, out_width=out_width,
                                out_signed=out_signed, rounding_model=rounding_model,
                                rounding=rounding, random=random)
