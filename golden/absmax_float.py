"""Blockwise absmax on float tensors: the seeds' Eq. 1 and Eq. 2 on FP32, BF16 and FP16.

:func:`qdp.golden.blockwise_absmax` and :func:`qdp.golden.dequantize_blockwise` take
``in_format`` and come here for a float format. Every value is an IEEE bit pattern of
that format; every step is stated in exact arithmetic (Python integers) or as an IEEE
operation correctly rounded by :mod:`qdp.golden.floats`.

The block constant
    ``absmax = max |x|`` over the block, exactly: the largest magnitude, an element of the
    block with its sign cleared (``-0`` gives ``+0``). Comparing magnitudes of IEEE
    patterns is comparing the patterns without their sign bit as unsigned integers, so a
    block holding an Inf has ``absmax = +Inf``, and a block holding a NaN has a NaN absmax
    (the NaN of the largest payload, sign cleared): the ``scale`` stream shows which
    blocks are not finite.

Two rounding models (``qmax = 2**(out_width - 1) - 1``):

``"exact"``
    ``q = round(qmax * x / absmax)``: the exact rational, rounded once in any of
    :data:`~qdp.golden.rounding.ROUNDING_MODES`. As in the integer unit,
    ``|x| <= absmax`` keeps ``q`` in ``[-qmax, qmax]``.
``"float32"``
    The seeds' formula as FP32 code computes it (what PyTorch and NumPy users run:
    ``c = qmax / absmax.float(); q = (c * x).round()``): ``c = fl32(qmax / absmax)``,
    IEEE division correctly rounded to FP32 (``absmax`` widens to FP32 exactly), then
    ``q = rint(fl32(c * x))``, the product correctly rounded to FP32 and that rounded
    half to even. ``c`` is the block's second constant (:func:`block_constant`).
    Neither step is exact: ``q`` can differ from the exact model's half-even result by
    one where ``qmax * x / absmax`` lies within a few FP32 steps of a half-integer.

Special values, both models alike: the quotient (or product) follows IEEE, and then

- NaN gives ``q = 0``: every element of a block whose absmax is NaN, ``Inf / Inf`` (the
  Inf elements of an Inf block, exact model; ``0 * Inf``, float32 model) and the zeros
  of an all-zero block (``0 / 0``; float32: ``c = +Inf``, ``0 * Inf``);
- ``±Inf`` gives ``±qmax``: in the float32 model, every nonzero element of a block whose
  ``c`` overflows to Inf (an absmax below ``qmax * 2**-128``, a tiny subnormal);
- a finite element of an Inf block gives 0 (``x / Inf``; float32: ``c = 0``).

Dequantization (Eq. 2), rounded to ``out_format``:

``"exact"``
    ``q * absmax / qmax``, the exact rational rounded once (half to even, IEEE: subnormal
    results exact, overflow to Inf).
``"float32"``
    ``fl_out(fl32(q / c))``: the FP32 division Eq. 2 writes, then, for BF16 or FP16 out,
    rounded again (what ``(q / c).to(torch.bfloat16)`` computes).

Special values follow IEEE: a NaN absmax (or c) gives NaN, ``q * Inf`` is ``±Inf``
(``0 * Inf`` NaN), ``q / 0`` is ``±Inf`` (``0 / 0`` NaN). NaN results are the canonical
quiet NaN (:attr:`~qdp.golden.floats.FloatFormat.nan_bits`), positive.
"""

import numpy as np

from .floats import (FP32, INF, NAN, ZERO, as_bits, classify, convert, decompose, divide,
                     float_format, multiply, round_rational, round_scaled)
from .rounding import ABSMAX_MODELS, round_div, round_shift

__all__ = ["MODELS", "float_blockwise_absmax", "block_constant", "float_dequantize_blockwise",
           "as_given"]

#: The rounding models of the float-input absmax unit and its dequantizer.
MODELS = ABSMAX_MODELS


def check_model(model):
    if model not in MODELS:
        raise ValueError(f"model: unknown rounding model {model!r}; expected one of "
                         f"{', '.join(MODELS)}")
    return model


def as_given(bits, fmt, as_patterns):
    """``fmt`` patterns as the caller gave its input: bit patterns (uint64) when it gave
    patterns or ``fmt`` has no dtype, else values of ``fmt``'s dtype."""
    return bits.astype(np.uint64) if as_patterns or fmt.dtype is None else fmt.values(bits)


def _magnitude(bits, fmt):
    return bits & ((1 << (fmt.width - 1)) - 1)


def block_absmax(bits, block_size, fmt):
    """``max |x|`` per block of flat ``bits``, as sign-cleared patterns of ``fmt``."""
    n = bits.size
    if not n:
        return np.zeros(0, dtype=np.int64)
    return np.maximum.reduceat(_magnitude(bits, fmt), np.arange(0, n, block_size))


def _int_patterns(q, fmt):
    """``fmt`` patterns of the small integers ``q`` (exact: ``|q| < 2**precision``)."""
    q = np.asarray(q, dtype=np.int64)
    return round_scaled(q < 0, np.abs(q), np.zeros_like(q), fmt)


def block_constant(absmax_bits, fmt, out_width):
    """``c = fl32(qmax / absmax)`` per block, FP32 patterns: the float32 model's constant."""
    qmax = (1 << (out_width - 1)) - 1
    a32 = convert(np.asarray(absmax_bits, dtype=np.int64), fmt, FP32)
    return divide(_int_patterns(np.full(a32.shape, qmax), FP32), a32, FP32)


def _exact_q(bits, absmax, fmt, qmax, rounding, random):
    """``round(qmax * x / absmax)`` per element (absmax per element), with the special
    values of the module."""
    ac, _ = classify(absmax, fmt)
    xs, xm, xe = decompose(bits, fmt)
    _, am, ae = decompose(absmax, fmt)
    special = (ac == NAN) | (ac == INF) | (ac == ZERO)
    am = np.where(special, 1, am)
    # |x| <= absmax, so xe <= ae: the quotient is qmax * xm / (am * 2**(ae - xe)).
    shift = np.where(special, 0, ae - xe)
    num = (np.where(xs, -xm, xm) * qmax).astype(object)
    den = am.astype(object) * np.left_shift(np.ones(shift.shape, dtype=object),
                                            shift.astype(object))
    q = round_div(np.where(special, 0, num), den, rounding, random=random)
    return np.where(special, 0, q).astype(np.int64)


def _float32_q(bits, c, fmt, qmax):
    """``rint(fl32(c * x))`` per element (``c`` per element) with the special values of
    the module."""
    product = multiply(c, convert(bits, fmt, FP32), FP32)
    cls, sign = classify(product, FP32)
    _, pm, pe = decompose(product, FP32)
    # |c * x| stays below 2**24 unless it is infinite, so pe < 0 wherever it matters.
    num = np.where(sign, -pm, pm).astype(object) << np.maximum(pe, 0).astype(object)
    q = np.clip(round_shift(num, np.maximum(-pe, 0), "half_even").astype(np.int64),
                -qmax, qmax)
    return np.select([cls == NAN, cls == INF], [0, np.where(sign, -qmax, qmax)],
                     q).astype(np.int64)


def float_blockwise_absmax(x, block_size, *, out_width, rounding, random, in_format, model):
    """:func:`qdp.golden.blockwise_absmax` for a float ``in_format`` (see the module)."""
    fmt = float_format(in_format, "in_format")
    check_model(model)
    if model == "float32" and rounding != "half_even":
        raise ValueError(f"rounding: the float32 model rounds half to even (rint); got "
                         f"{rounding!r} (use model='exact' for the other modes)")
    if model == "float32" and random is not None:
        raise ValueError("random: the float32 model takes no random values")
    as_patterns = np.asarray(x).dtype.kind == "u"
    bits = as_bits(x, fmt)
    shape = bits.shape
    flat = bits.reshape(-1)
    n = flat.size
    if random is not None:
        random = np.asarray(random).reshape(-1)
        if random.size != n:
            raise ValueError(f"random: expected one value per element ({n}), "
                             f"got {random.size}")
    qmax = (1 << (out_width - 1)) - 1
    absmax = block_absmax(flat, block_size, fmt)
    block = np.arange(n) // block_size
    if model == "exact":
        q = _exact_q(flat, absmax[block], fmt, qmax, rounding, random)
    else:
        q = _float32_q(flat, block_constant(absmax, fmt, out_width)[block], fmt, qmax)
    return q.reshape(shape), as_given(absmax, fmt, as_patterns)


def float_dequantize_blockwise(q, scale, *, block_size, out_width, in_format, out_format,
                               model):
    """:func:`qdp.golden.dequantize_blockwise` for a float ``in_format``: ``out_format``
    patterns (uint64) or values (see the module)."""
    fmt = float_format(in_format, "in_format")
    out = float_format(out_format, "out_format")
    check_model(model)
    q = np.asarray(q, dtype=np.int64)
    n = q.size
    blocks = -(-n // block_size)
    scale_fmt = fmt if model == "exact" else FP32
    as_patterns = np.asarray(scale).dtype.kind == "u"
    s = as_bits(scale, scale_fmt, "scale").reshape(-1)
    if s.size != blocks:
        raise ValueError(f"scale: expected {blocks} values for {n} elements in blocks of "
                         f"{block_size}, got {s.size}")
    qmax = (1 << (out_width - 1)) - 1
    if np.any(np.abs(q) > qmax):
        raise ValueError(f"q: values must lie in -{qmax}..{qmax} (out_width={out_width})")
    flat = q.reshape(-1)
    s = s[np.arange(n) // block_size] if n else s[:0]
    if model == "exact":
        result = _exact_dequantize(flat, s, fmt, out, qmax)
    else:
        result = convert(divide(_int_patterns(flat, FP32), s, FP32), FP32, out)
    return as_given(result.reshape(q.shape), out, as_patterns)


def _exact_dequantize(q, s, fmt, out, qmax):
    sc, _ = classify(s, fmt)
    _, sm, se = decompose(s, fmt)
    sign = q < 0
    finite = round_rational(sign, np.abs(q) * np.where(sc >= INF, 0, sm), qmax, se, out)
    signed = sign.astype(np.int64) << (out.width - 1)
    nan = (sc == NAN) | ((sc == INF) & (q == 0))
    inf = (sc == INF) & ~nan
    return np.select([nan, inf], [out.nan_bits, out.inf_bits | signed], finite).astype(np.int64)
