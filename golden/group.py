"""Group-wise integer quantization of weights (GPTQ, AWQ): a scale, and for the
asymmetric form a zero point, per group of ``group_size`` consecutive elements.

Every step is one IEEE FP32 operation (:mod:`qdp.golden.floats`) on finite FP32, BF16 or
FP16 input (widened exactly to FP32), rounding half to even as ``torch.round`` does:

Asymmetric, unsigned ``bits``-bit codes (GPTQ's ``Quantizer.find_params(sym=False)``)
    ``lo = min(min x, 0)``, ``hi = max(max x, 0)`` -- the range always holds 0, so 0 is
    exact; a group of zeros takes ``lo, hi = -1, 1``. ``maxq = 2**bits - 1``,
    ``scale = fl32(fl32(hi - lo) / maxq)``, ``zero = rint(fl32(-lo / scale))``,
    ``q = clamp(rint(fl32(x / scale)) + zero, 0, maxq)``; dequantized
    ``fl32(scale * (q - zero))``.
Symmetric, signed codes (AWQ's ``pseudo_quantize_tensor(zero_point=False)``)
    ``amax = max(max |x|, fl32(1e-5))``, ``scale = fl32(amax / (2**(bits-1) - 1))``,
    ``q = clamp(rint(fl32(x / scale)), -2**(bits-1), 2**(bits-1) - 1)``; dequantized
    ``fl32(q * scale)``.

Where the references differ (stated, not followed): AWQ's asymmetric form takes the range
without 0, clamps it to at least ``1e-5`` and clamps the zero point to ``0..maxq``;
GPTQ's symmetric form keeps unsigned codes with zero ``2**(bits-1)`` and a scale of
``2 * amax / maxq``.

Packing (:func:`group_pack`), 4-bit codes, eight per ``uint32`` along the last axis:
``"gptq"`` puts element ``k`` of each eight in bits ``4k..4k+3`` (GPTQ packs along the
input dimension this way); ``"awq"`` puts element ``AWQ_ORDER[i]`` in bits
``4i..4i+3`` (AutoAWQ's GEMM layout, along the output dimension). GPTQ checkpoints store
``zero - 1`` in their packed zeros; that offset is the checkpoint's, not the math's.
"""

import numpy as np

from . import floats
from ._intarray import check_count

__all__ = ["group_quantize", "group_dequantize", "group_pack", "group_unpack", "AWQ_ORDER",
           "PACK_ORDERS"]

#: AutoAWQ's order of eight 4-bit codes in a 32-bit word.
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
PACK_ORDERS = {"gptq": tuple(range(8)), "awq": AWQ_ORDER}
_FP32 = floats.FP32
#: ``fl32(1e-5)``, AWQ's smallest symmetric range.
_AWQ_FLOOR = int(np.float32(1e-5).view(np.uint32))


def _int_bits(value, shape):
    """FP32 patterns of a small integer (exact)."""
    return np.full(shape, np.float32(value).view(np.uint32), dtype=np.int64)


def _rint(bits):
    """FP32 patterns rounded half to even to integers (int64)."""
    return np.rint(bits.astype(np.uint32).view(np.float32).astype(np.float64)) \
        .astype(np.int64)


def _groups(x, bits, group_size):
    check_count("bits", bits, 2, 8)
    check_count("group_size", group_size)
    fmt, pattern = floats.format_of(x)
    pattern = floats.convert(pattern, fmt, _FP32).reshape(-1)
    if pattern.size % group_size:
        raise ValueError(f"group_size: {pattern.size} elements are not whole groups of "
                         f"{group_size}")
    if np.any(floats.classify(pattern, _FP32)[0] >= floats.INF):
        raise ValueError("x: group quantization takes finite values only")
    return pattern, pattern.astype(np.uint32).view(np.float32).reshape(-1, group_size)


def group_quantize(x, *, bits=4, group_size=128, symmetric=False):
    """Group quantization of ``x`` (flat C order, whole groups): ``(codes, scales,
    zeros)`` -- int64 codes (``0..2**bits-1``, or signed when ``symmetric``), the FP32
    scale of every group, and its int64 zero point (zeros for ``symmetric``). See the
    module for every rule."""
    pattern, values = _groups(x, bits, group_size)
    per = np.arange(pattern.size) // group_size
    if symmetric:
        amax = np.maximum(np.abs(values).max(axis=1).view(np.uint32).astype(np.int64),
                          _AWQ_FLOOR)
        scale = floats.divide(amax, _int_bits(2 ** (bits - 1) - 1, amax.shape), _FP32)
        q = np.clip(_rint(floats.divide(pattern, scale[per], _FP32)),
                    -2 ** (bits - 1), 2 ** (bits - 1) - 1)
        zero = np.zeros(scale.shape, dtype=np.int64)
    else:
        lo = np.minimum(values.min(axis=1), 0).astype(np.float32)
        hi = np.maximum(values.max(axis=1), 0).astype(np.float32)
        empty = (lo == 0) & (hi == 0)
        lo, hi = np.where(empty, -1, lo).astype(np.float32), np.where(empty, 1, hi) \
            .astype(np.float32)
        lo, hi = (v.view(np.uint32).astype(np.int64) for v in (lo, hi))
        span = floats.add(hi, lo ^ (1 << 31), _FP32)
        scale = floats.divide(span, _int_bits(2 ** bits - 1, span.shape), _FP32)
        zero = _rint(floats.divide(lo ^ (1 << 31), scale, _FP32))
        q = np.clip(_rint(floats.divide(pattern, scale[per], _FP32)) + zero[per], 0,
                    2 ** bits - 1)
    return q.astype(np.int64), scale.astype(np.uint32).view(np.float32), zero


def group_dequantize(codes, scales, zeros, *, group_size=128):
    """``fl32(scale * (q - zero))`` per element (FP32, flat): both forms (a symmetric
    group has zero 0). Any FP32 scale pattern: IEEE's product rounded once, half to even
    with subnormals and overflow to Inf; a zero product takes the XOR of the scale's sign
    and ``q - zero < 0`` (``-0`` for a negative scale and ``q = zero``); a NaN result (a
    NaN scale, ``Inf * 0``) is the canonical ``0x7FC00000``, as qdp's hardware emits it.
    ``group_size=1`` with a scale and zero per element is the hardware's view."""
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    scales = np.asarray(scales, dtype=np.float32).reshape(-1)
    zeros = np.asarray(zeros, dtype=np.int64).reshape(-1)
    if codes.size != scales.size * group_size or zeros.size != scales.size:
        raise ValueError(f"scales, zeros: expected {codes.size // max(group_size, 1)} "
                         f"groups of {group_size} for {codes.size} codes, got "
                         f"{scales.size} scales and {zeros.size} zeros")
    per = np.arange(codes.size) // group_size
    # q - zero is a small integer: the product is exact in float64, rounded once. A NaN
    # (a NaN scale, Inf * 0) is FP32's canonical quiet NaN, whatever payload and sign
    # NumPy's float64 product carries (x86 gives Inf * 0 the sign bit set).
    with np.errstate(invalid="ignore", over="ignore"):
        product = (scales[per].astype(np.float64) * (codes - zeros[per])).astype(np.float32)
    nan = np.array(_FP32.nan_bits, dtype=np.uint32).view(np.float32)
    return np.where(np.isnan(product), nan, product).astype(np.float32)


def group_pack(codes, order="gptq"):
    """Eight 4-bit codes per ``uint32`` along the last axis (its length a multiple of 8),
    in ``order`` (``"gptq"`` or ``"awq"``, see the module); signed codes are packed as
    their low four bits."""
    if order not in PACK_ORDERS:
        raise ValueError(f"order: {order!r} is not one of {', '.join(PACK_ORDERS)}")
    codes = np.asarray(codes, dtype=np.int64)
    if codes.shape[-1] % 8:
        raise ValueError(f"codes: the last axis ({codes.shape[-1]}) is not a multiple of 8")
    eights = (codes & 0xF).reshape(*codes.shape[:-1], -1, 8)
    words = np.zeros(eights.shape[:-1], dtype=np.uint64)
    for position, element in enumerate(PACK_ORDERS[order]):
        words |= eights[..., element].astype(np.uint64) << np.uint64(4 * position)
    return words.astype(np.uint32)


def group_unpack(words, order="gptq"):
    """The inverse of :func:`group_pack`: unsigned codes ``0..15``."""
    if order not in PACK_ORDERS:
        raise ValueError(f"order: {order!r} is not one of {', '.join(PACK_ORDERS)}")
    words = np.asarray(words, dtype=np.uint32).astype(np.int64)
    out = np.zeros((*words.shape, 8), dtype=np.int64)
    for position, element in enumerate(PACK_ORDERS[order]):
        out[..., element] = (words >> (4 * position)) & 0xF
    return out.reshape(*words.shape[:-1], -1)
