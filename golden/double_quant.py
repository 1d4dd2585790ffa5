"""QLoRA's double quantization: the FP32 absmax constants of NF4 (or any blockwise
scheme) quantized again, as bitsandbytes' ``quantize_4bit(..., compress_statistics=True)``
does, with its 8-bit dynamic data type (``create_dynamic_map``, Dettmers 2016).

The dynamic map (:func:`dynamic_map`)
    256 FP32 values, ascending: for ``i = 0..6``, the ``2**i`` midpoints of
    ``linspace(0.1, 1, 2**i + 1)`` times ``10**(i - 6)``, both signs; then 0 and 1. Each
    step is an FP32 operation as torch performs it -- ``linspace`` is
    ``fl32(start + step * j)`` for the first half and ``fl32(end - step * (n - 1 - j))``
    for the rest, with ``step = fl32(0.9 / (n - 1))``; a midpoint is
    ``fl32(a + b) / 2``; the product is ``fl32(fl32(10**(i - 6)) * mean)``. Computed
    here in exact rationals; ``tests/test_golden_double_quant.py`` checks it equals the
    installed ``bitsandbytes.functional.create_dynamic_map()``.
8-bit blockwise quantization (:func:`dynamic_quantize`, the CUDA ``kQuantizeBlockwise``
with ``dQuantize<0>``)
    per block, the normalisation of :mod:`qdp.golden.nf4` (``absmax = max |x|`` as
    ``fmaxf`` takes it, ``c = fl32(1 / absmax)``, ``v = fl32(x * c)``); the code is the nearest entry of the map, where nearness is
    decided against the FP32 midpoints ``m_i = fl32(fl32(T[i] + T[i+1]) * 0.5)``: a value
    exactly on a midpoint takes the even index (the kernel's binary search ends on an
    even index and keeps it on a tie). A NaN ``v`` (every element of an all-zero block,
    ``0 * Inf``) takes code 0. Dequantization is ``fl32(T[code] * absmax)``.
Double quantization (:func:`double_quantize`)
    ``offset = mean(absmax)`` rounded once to FP32 from the exact sum: correctly rounded,
    so no summation order enters (torch sums in float64 in its own cascade order and
    rounds the quotient; the tests count where the two differ); then ``d =
    fl32(absmax - offset)`` quantized as above in blocks of 256. Dequantization (bitsandbytes'
    ``dequantize_blockwise(...) + offset``): ``fl32(fl32(T[code] * absmax2) + offset)``.
"""

import functools
from fractions import Fraction

import numpy as np

from . import floats
from ._intarray import check_count
from .nf4 import normalise_blocks

__all__ = ["dynamic_map", "midpoints", "dynamic_quantize", "dynamic_dequantize", "double_quantize",
           "double_dequantize", "DOUBLE_BLOCK_SIZE"]

#: bitsandbytes' block size for the second quantization.
DOUBLE_BLOCK_SIZE = 256


def _fp32(value):
    """``value`` rounded once to FP32, as an exact Fraction."""
    return floats.to_fraction(floats.from_fraction(value, floats.FP32), floats.FP32)


def _linspace(start, end, n):
    start, end = _fp32(start), _fp32(end)
    step = _fp32((end - start) / (n - 1))
    return [_fp32(start + step * j) if j < n // 2 else _fp32(end - step * (n - 1 - j))
            for j in range(n)]


@functools.cache
def dynamic_map():
    """The signed 8-bit dynamic map of ``create_dynamic_map()``: 256 FP32 values,
    ascending (built on first use, from exact rationals)."""
    values = [Fraction(0), Fraction(1)]
    for i in range(7):
        bounds = _linspace(Fraction(1, 10), 1, 2 ** i + 1)
        scale = _fp32(Fraction(10) ** (i - 6))
        means = [_fp32(a + b) / 2 for a, b in zip(bounds, bounds[1:])]
        values += [s * _fp32(scale * m) for m in means for s in (1, -1)]
    table = np.array(sorted(float(v) for v in values), dtype=np.float32)
    table.flags.writeable = False
    return table


@functools.cache
def midpoints():
    """The 255 FP32 midpoints ``fl32(fl32(T[i] + T[i+1]) * 0.5)`` of the map."""
    bits = dynamic_map().view(np.uint32).astype(np.int64)
    half = np.int64(0x3F000000)
    mid = floats.multiply(floats.add(bits[:-1], bits[1:], floats.FP32), half, floats.FP32)
    mid = mid.astype(np.uint32).view(np.float32)
    mid.flags.writeable = False
    return mid


def dynamic_quantize(x, *, block_size=DOUBLE_BLOCK_SIZE):
    """8-bit dynamic codes of ``x`` (FP32, BF16 or FP16, flat C order; a last, shorter
    block has its own constant): ``(codes, absmax)``, ``uint8`` and FP32 (see the
    module)."""
    block_size = check_count("block_size", block_size)
    v, absmax = normalise_blocks(x, block_size)
    mid = midpoints()
    below = np.searchsorted(mid, v, side="left")            # midpoints < v
    tie = (below < mid.size) & (mid[np.minimum(below, mid.size - 1)] == v)
    codes = np.where(np.isnan(v), 0, below + (tie & (below % 2 == 1)))
    return codes.astype(np.uint8), absmax


def dynamic_dequantize(codes, absmax, *, block_size=DOUBLE_BLOCK_SIZE):
    """``fl32(T[code] * absmax)`` per element, FP32, flat."""
    block_size = check_count("block_size", block_size)
    codes = np.asarray(codes, dtype=np.uint8).reshape(-1)
    absmax = np.asarray(absmax, dtype=np.float32).reshape(-1)
    blocks = -(-codes.size // block_size)
    if absmax.size != blocks:
        raise ValueError(f"absmax: expected {blocks} values for {codes.size} codes in "
                         f"blocks of {block_size}, got {absmax.size}")
    # One FP32 product, correctly rounded: exact in float64, then one rounding.
    product = dynamic_map()[codes].astype(np.float64) \
        * absmax[np.arange(codes.size) // block_size]
    return product.astype(np.float32)


def _mean(values):
    """The mean of FP32 values rounded once to FP32 (NaN if any is NaN, ±Inf if any is
    infinite and none of the other sign)."""
    finite = np.isfinite(values)
    if not finite.all():
        with np.errstate(invalid="ignore"):
            return np.float32(values[~finite].sum())
    exact = sum((floats.to_fraction(int(b), floats.FP32)
                 for b in values.view(np.uint32)), Fraction(0))
    return np.uint32(floats.from_fraction(exact / values.size, floats.FP32)) \
        .view(np.float32)


def double_quantize(absmax, *, block_size=DOUBLE_BLOCK_SIZE):
    """The block constants ``absmax`` (FP32, flat) quantized again: ``(codes, absmax2,
    offset)`` -- ``uint8`` codes, the FP32 absmax of each block of ``block_size`` codes,
    and the FP32 offset (see the module)."""
    absmax = np.asarray(absmax, dtype=np.float32).reshape(-1)
    if absmax.size == 0:
        raise ValueError("absmax: double quantization needs at least one constant")
    offset = _mean(absmax)
    centred = floats.add(absmax.view(np.uint32).astype(np.int64),
                         np.full(absmax.shape, offset.view(np.uint32) ^ 0x80000000,
                                 dtype=np.int64), floats.FP32)
    codes, absmax2 = dynamic_quantize(centred.astype(np.uint32).view(np.float32),
                                     block_size=block_size)
    return codes, absmax2, offset


def double_dequantize(codes, absmax2, offset, *, block_size=DOUBLE_BLOCK_SIZE):
    """The FP32 block constants back: ``fl32(fl32(T[code] * absmax2) + offset)``;
    ``offset`` one FP32 value, or one per code (a stream of constants from several
    tensors, as the hardware takes them with ``block_size=1``)."""
    scaled = dynamic_dequantize(codes, absmax2, block_size=block_size)
    offset = np.broadcast_to(np.asarray(offset, dtype=np.float32), scaled.shape)
    total = floats.add(scaled.view(np.uint32).astype(np.int64),
                       offset.view(np.uint32).astype(np.int64), floats.FP32)
    return total.astype(np.uint32).view(np.float32)
