"""Golden model of ONNX DequantizeLinear: integers in, floats out.

``y = (q - z) * s`` for integers ``q`` of 2..32 bits, a zero point ``z`` of the same type
and a scale ``s`` of ``out_format`` (ONNX types the output like the scale), computed in
the operation sequence of ``onnx/reference/ops/op_dequantize_linear.py`` -- NumPy's type
promotion decides where it rounds -- bit for bit:

narrow inputs (``in_width <= 16``)
    ``q`` and ``z`` are exact in float32, so ``d = q - z`` is exact, and
    ``y = fl_out(fl32(d * s))``: the product rounded to FP32, then (BF16, FP16 outputs)
    to ``out_format`` -- a double rounding the reference really performs.
wide inputs (17..32 bits, ONNX's int32)
    ``q.astype(float32)`` rounds ``q`` to 24 significant bits (half to even); with a
    zero point, float32 minus int32 promotes to float64, so ``d = fl32(q) - z`` exactly
    and ``y = fl_out(fl64(d * s))``; without one (``zero_point=None``),
    ``y = fl_out(fl32(fl32(q) * s))``.

Every step is an exact integer operation here: ``fl32`` and ``fl_out`` are
:func:`~qdp.golden.floats.round_scaled`, ``fl64`` is
:func:`~qdp.golden.floats.round_precision` to 53 bits (no exponent limit is reached).

Special values follow IEEE: an Inf scale gives ``±Inf`` (NaN for ``d = 0``), a NaN
scale NaN, a zero scale a zero of sign ``sign(d) xor sign(s)`` (``d = 0`` counts as
+0), an overflow ``±Inf``. NaN results are the canonical quiet NaN
(:attr:`~qdp.golden.floats.FloatFormat.nan_bits`); NumPy may produce other NaN bit
patterns, which qdp's tests count as the same value.
"""

import numpy as np

from . import floats
from ._intarray import as_exact, check_fits
from .floats import FP32, INF, NAN
from .linear_params import expand
from .quantize_linear import check_scale

__all__ = ["dequantize_linear", "dequantize_linear_bits", "WIDE"]

#: Inputs wider than this take ONNX's float64 path (NumPy promotes int32 with float32).
WIDE = 16
_FLOAT64_PRECISION = 53


def dequantize_linear_bits(q, s_bits, zero_point, fmt, *, in_width=8):
    """Element-wise DequantizeLinear: ``q`` and ``zero_point`` (ints, or ``None``) and the
    scale's bit patterns, one shape; any scale accepted. Bit patterns of ``fmt``."""
    fmt = floats.float_format(fmt)
    q = np.asarray(q, dtype=np.int64)
    s_bits = np.broadcast_to(np.asarray(s_bits, dtype=np.int64), q.shape)
    no_zero = zero_point is None
    z = np.broadcast_to(np.asarray(0 if no_zero else zero_point, dtype=np.int64), q.shape)
    wide = in_width > WIDE
    d = q - z
    if wide:
        # q.astype(float32): 24 significant bits, half to even (symmetric in the sign).
        d = np.sign(q) * floats.round_precision(np.abs(q), FP32.precision) - z
    sign_d = d < 0
    sign_s, ms, es = floats.decompose(s_bits, fmt)
    sign = sign_d ^ sign_s
    product = np.abs(d) * ms
    if wide and not no_zero:
        y = floats.round_scaled(sign, floats.round_precision(product, _FLOAT64_PRECISION),
                                es, fmt)
    else:
        y32 = floats.round_scaled(sign, product, es, FP32)
        y = y32 if fmt == FP32 else floats.convert(y32, FP32, fmt)
    cls, _ = floats.classify(s_bits, fmt)
    signed_inf = fmt.inf_bits | (sign.astype(np.int64) << (fmt.width - 1))
    nan = (cls == NAN) | ((cls == INF) & (d == 0))
    return np.select([nan, cls == INF], [fmt.nan_bits, signed_inf], y).astype(np.int64)


def dequantize_linear(q, scale, zero_point=0, *, out_format="fp32", axis=None,
                      block_size=None, in_width=8, in_signed=True):
    """``(q - zero_point) * scale`` as the ONNX reference computes it.

    Parameters
    ----------
    q : array_like of int
        Each fitting ``in_width`` bits, signed or not.
    scale : array_like
        Floats of ``out_format`` (or their bit patterns as unsigned integers): a positive
        finite number per tensor, per ``axis`` or per block.
    zero_point : int, array_like of int or None
        Of ``q``'s type, laid out like ``scale``. ``None`` is ONNX's absent zero point,
        which differs from 0 only for wide inputs (see the module).
    out_format : str
        ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"eXmY"``.
    axis, block_size : int or None
        The scale's axis; ONNX opset 21's block size along it.
    in_width, in_signed : int, bool
        ``q``'s type: 2..32 bits.

    Returns
    -------
    numpy.ndarray of ``out_format``'s dtype shaped like ``q`` (bit patterns, int64, for a
    custom format).
    """
    fmt = floats.float_format(out_format, "out_format")
    if not isinstance(in_width, (int, np.integer)) or isinstance(in_width, bool) \
            or not 2 <= in_width <= 32:
        raise ValueError(f"in_width: {in_width!r} is out of range (allowed 2..32)")
    q = as_exact(np.asarray(q))
    check_fits("q", q, in_width, in_signed)
    s_bits = floats.as_bits(scale, fmt, "scale")
    check_scale(s_bits, fmt)
    shape = q.shape
    s_full = expand(s_bits, shape, axis, block_size, "scale")
    z_full = None
    if zero_point is not None:
        zero_point = as_exact(np.asarray(zero_point))
        check_fits("zero_point", zero_point, in_width, in_signed)
        z_full = expand(zero_point, shape, axis, block_size, "zero_point").astype(np.int64)
    y = dequantize_linear_bits(q.astype(np.int64), s_full, z_full, fmt, in_width=in_width)
    return fmt.values(y) if fmt.dtype is not None else y
