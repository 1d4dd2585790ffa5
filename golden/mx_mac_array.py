"""The MX dot product: ``C = A @ B`` of two MX-quantized matrices, each output the
*exact* sum of all its products (block scales included) rounded once to FP32.

OCP MX v1.0 leaves the internal precision of a dot product implementation-defined (§6.2);
qdp's choice is the exactly rounded one, so an output does not depend on the order or
grouping of the sums -- the hardware may add in any tree and must equal this.

``A`` is ``M x K`` element codes with one E8M0 scale per ``block_size`` consecutive
elements of a row (``M x K/block_size`` scales); ``B`` is ``K x N`` with one scale per
``block_size`` consecutive elements of a column (``K/block_size x N``), so each block
product pairs the same ``k`` range. Every value is dyadic: the element's value times
``2**(scale - 127)``, and ``C[m, n] = fl32(sum_k a[m,k] * 2**sa * b[k,n] * 2**sb)``
computed in Python integers, half to even, overflowing to ±Inf.

Specials: a NaN scale or a NaN element code (``fp8_e4m3``'s ``S.1111.111``,
``fp8_e5m2``'s NaNs) anywhere in a row of ``A`` or a column of ``B`` makes that output
NaN; ``fp8_e5m2``'s ±Inf follow IEEE (``Inf * 0`` and ``Inf - Inf`` are NaN, otherwise the
signed Inf). An exact zero sum is +0.
"""

import numpy as np

from . import floats
from .mx import E8M0_BIAS, E8M0_NAN, element_format, element_parts, element_values

__all__ = ["mx_matmul"]


def _scaled_integers(codes, scales, elem, axis, block_size):
    """``(ints, nan, inf_sign)``: each finite element as the Python int
    ``value * 2**(shared + 127 - lsb)``; the NaN mask (NaN code or NaN scale) and the
    sign of infinite elements (+1 / -1, 0 for finite)."""
    values = element_values(codes, elem)                    # for the NaN / Inf codes
    shared = np.repeat(scales.astype(np.int64), block_size, axis=axis)
    nan = np.isnan(values) | (shared == E8M0_NAN)
    inf = np.where(np.isinf(values), np.sign(values), 0).astype(np.int64)
    sign, sig, exp = element_parts(codes, elem)
    shift = np.where(np.isfinite(values), exp - elem.lsb + shared, 0)
    magnitude = np.where(np.isfinite(values) & ~nan, sig, 0).astype(object) \
        << shift.astype(object)
    return np.where(sign, -magnitude, magnitude), nan, inf


def _check(codes, scales, name, axis, block_size):
    codes = np.asarray(codes, dtype=np.uint8)
    scales = np.asarray(scales, dtype=np.uint8)
    if codes.ndim != 2:
        raise ValueError(f"{name}_codes: expected a matrix, got shape {codes.shape}")
    want = list(codes.shape)
    if want[axis] % block_size:
        raise ValueError(f"{name}_codes: K = {want[axis]} is not whole blocks of "
                         f"{block_size}")
    want[axis] //= block_size
    if list(scales.shape) != want:
        raise ValueError(f"{name}_scales: expected shape {tuple(want)}, got {scales.shape}")
    return codes, scales


def mx_matmul(a_codes, a_scales, b_codes, b_scales, element, *, block_size=32):
    """FP32 ``C = A @ B`` of MX matrices, every output exactly rounded (see the module);
    ``element`` names both operands' element format."""
    elem = element_format(element)
    a_codes, a_scales = _check(a_codes, a_scales, "a", 1, block_size)
    b_codes, b_scales = _check(b_codes, b_scales, "b", 0, block_size)
    if a_codes.shape[1] != b_codes.shape[0]:
        raise ValueError(f"b_codes: K = {b_codes.shape[0]} does not match a's "
                         f"{a_codes.shape[1]}")
    a, a_nan, a_inf = _scaled_integers(a_codes, a_scales, elem, 1, block_size)
    b, b_nan, b_inf = _scaled_integers(b_codes, b_scales, elem, 0, block_size)
    total = a @ b                                              # exact: Python ints
    exponent = 2 * (elem.lsb - E8M0_BIAS)
    negative = (total < 0).astype(bool)
    out = floats.round_integer(negative, np.abs(total), exponent, floats.FP32)
    out = np.where(total == 0, 0, out)
    # IEEE on the infinite products: Inf * 0 is NaN, opposite Infs cancel to NaN.
    a_zero = (a == 0).astype(bool) & (a_inf == 0)
    b_zero = (b == 0).astype(bool) & (b_inf == 0)
    inf_times_zero = _any_pair(a_inf != 0, b_zero) | _any_pair(a_zero, b_inf != 0)
    a_sign = np.where(a < 0, -1, 1).astype(np.int64)
    b_sign = np.where(b < 0, -1, 1).astype(np.int64)
    inf_pos, inf_neg = _infinite_terms(a_inf, b_inf, a_sign, b_sign)
    nan = ((a_nan.any(axis=1)[:, None] | b_nan.any(axis=0)[None, :]) | inf_times_zero
           | (inf_pos & inf_neg))
    out = np.select([nan, inf_pos, inf_neg],
                    [floats.FP32.nan_bits, floats.FP32.inf_bits,
                     floats.FP32.inf_bits | (1 << 31)], out)
    return out.astype(np.uint32).view(np.float32)


def _any_pair(a_mask, b_mask):
    """Whether some ``k`` has ``a_mask[m, k] and b_mask[k, n]``, per output."""
    return (a_mask.astype(np.int64) @ b_mask.astype(np.int64)) > 0


def _infinite_terms(a_inf, b_inf, a_sign, b_sign):
    """Whether some product of each output is +Inf, and whether some is -Inf (a product
    is infinite when either factor is; its sign is the product of the signs)."""
    sa = np.where(a_inf != 0, a_inf, a_sign)
    sb = np.where(b_inf != 0, b_inf, b_sign)
    pos = neg = False
    for a_mask, b_mask in (((a_inf != 0), np.ones(sb.shape, bool)),
                           (np.ones(sa.shape, bool), (b_inf != 0))):
        for s_a in (1, -1):
            for s_b in (1, -1):
                hit = _any_pair(a_mask & (sa == s_a), b_mask & (sb == s_b))
                if s_a * s_b > 0:
                    pos = pos | hit
                else:
                    neg = neg | hit
    return pos, neg
