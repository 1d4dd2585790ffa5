"""QLoRA's NF4: 4-bit NormalFloat codes per absmax block, as bitsandbytes' CUDA kernel
computes them (``kQuantizeBlockwise`` with ``dQuantizeNF4``, ``csrc/kernels.cu``).

Per block of ``block_size`` elements (a last, shorter block has its own constant), every
step an IEEE FP32 operation (:mod:`qdp.golden.floats`), in the kernel's order:

1. ``absmax = max |x|`` in FP32 (``x`` widens exactly from BF16/FP16) as the kernel's
   ``fmaxf`` takes it: NaN elements are passed over, so a NaN does not reach the
   constant, and a block of NaNs only keeps the kernel's start value ``-FLT_MAX``;
2. ``c = fl32(1 / absmax)`` -- the kernel's ``1.0f / local_abs_max``: ``+Inf`` for an
   all-zero block, 0 for an Inf block;
3. ``v = fl32(x * c)``;
4. the code is the number of the kernel's 15 thresholds (:data:`THRESHOLDS`, its decimal
   literals rounded to FP32, as ``0.0397...f`` is) that ``v`` lies strictly above: a value
   exactly on a threshold takes the lower code, and a NaN ``v`` -- every element of an
   all-zero block (``0 * Inf``), a NaN element, an Inf element of an Inf block -- takes
   code 0 (value -1), because every comparison of the kernel's tree is false;
5. two codes per byte, the first element in the high nibble.

Dequantization: ``fl32(CODE_VALUES[code] * absmax)``, the kernel's ``dDequantizeNF4(q) *
absmax`` (so the all-zero block comes back as ``-1 * 0 = -0``); a NaN result (``0 * Inf``,
a NaN absmax) is FP32's canonical quiet NaN ``0x7FC00000``, as qdp's hardware emits it.
"""

import numpy as np

from . import floats

__all__ = ["CODE_VALUES", "THRESHOLDS", "nf4_quantize", "nf4_codes", "code_of", "nf4_dequantize", "nf4_values",
           "NF4_BLOCK_SIZES", "normalise_blocks"]

#: ``nf4_dequantization_lut`` of the kernel, FP32.
CODE_VALUES = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], dtype=np.float32)

#: The comparison literals of ``dQuantizeNF4``, ascending, FP32.
THRESHOLDS = np.array([
    -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
    -0.23460740596055984, -0.13791173323988914, -0.045525018125772476,
    0.03979014977812767, 0.1202552504837513, 0.2035212516784668, 0.2920137718319893,
    0.3893125355243683, 0.5016634166240692, 0.6427869200706482, 0.8614784181118011],
    dtype=np.float32)

#: The block sizes bitsandbytes' kernels take.
NF4_BLOCK_SIZES = (32, 4096)

def check_block_size(block_size):
    lo, hi = NF4_BLOCK_SIZES
    if isinstance(block_size, bool) or not isinstance(block_size, int) or \
            not lo <= block_size <= hi or block_size & (block_size - 1):
        raise ValueError(f"block_size: {block_size!r} is not allowed (a power of two from "
                         f"{lo} to {hi}, as bitsandbytes' kernels take)")
    return block_size


def _block_index(n, block_size):
    return np.arange(n) // block_size


#: ``-FLT_MAX``, the start value of the kernel's max.
_MINUS_FLT_MAX = 0xFF7FFFFF


def normalise_blocks(x, block_size):
    """Steps 1-3 of ``kQuantizeBlockwise`` (see the module) for blocks of ``block_size``
    consecutive elements of ``x`` (FP32, BF16 or FP16, flat): ``(v, absmax)``, the FP32
    values ``fl32(x * fl32(1 / absmax))`` and the FP32 constant of every block."""
    fmt, bits = floats.format_of(x)
    bits = floats.convert(bits, fmt, floats.FP32).reshape(-1)   # exact: FP32 holds them
    n = bits.size
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    magnitude = bits & 0x7FFFFFFF
    magnitude = np.where(magnitude > floats.FP32.inf_bits, -1, magnitude)   # fmaxf
    absmax = np.maximum.reduceat(magnitude, np.arange(0, n, block_size))
    absmax = np.where(absmax < 0, _MINUS_FLT_MAX, absmax)
    one = np.full(absmax.shape, floats.FP32.bias << floats.FP32.man_bits, dtype=np.int64)
    c = floats.divide(one, absmax, floats.FP32)
    v = floats.multiply(bits, c[_block_index(n, block_size)], floats.FP32)
    return (v.astype(np.uint32).view(np.float32),
            absmax.astype(np.uint32).view(np.float32))


def nf4_quantize(x, *, block_size=64):
    """NF4 codes of ``x`` (flat C order, an even number of elements): ``(packed,
    absmax)`` -- ``uint8`` bytes of two codes each, first element high, and the FP32
    absmax of every block (see the module)."""
    block_size = check_block_size(block_size)
    if np.size(x) % 2:
        raise ValueError(f"x: {np.size(x)} elements; NF4 packs two codes per byte, so "
                         f"the count must be even")
    codes, absmax = nf4_codes(x, block_size=block_size)
    packed = ((codes[0::2] << 4) | codes[1::2]).astype(np.uint8)
    return packed, absmax


def nf4_codes(x, *, block_size=64):
    """Steps 1-4 of the module: ``(codes, absmax)``, one code (0..15, ``uint8``) per
    element of ``x`` (flat, any count) and the FP32 absmax of every block -- the codes
    before :func:`nf4_quantize` packs them, as the hardware emits them."""
    block_size = check_block_size(block_size)
    values, absmax = normalise_blocks(x, block_size)
    return code_of(values), absmax


def code_of(values):
    """Step 4 of the module: the code (``uint8``) of each normalised FP32 value, the
    number of thresholds strictly below it (0 for a NaN)."""
    return (values[:, None] > THRESHOLDS[None, :]).sum(axis=1).astype(np.uint8)


def nf4_dequantize(packed, absmax, *, block_size=64):
    """``fl32(CODE_VALUES[code] * absmax)`` per element, float32, flat."""
    block_size = check_block_size(block_size)
    packed = np.asarray(packed, dtype=np.uint8).reshape(-1)
    codes = np.stack([packed >> 4, packed & 0xF], axis=1).reshape(-1)
    absmax = np.asarray(absmax, dtype=np.float32).reshape(-1)
    n = codes.size
    if absmax.size != -(-n // block_size):
        raise ValueError(f"absmax: expected {-(-n // block_size)} values for {n} elements "
                         f"in blocks of {block_size}, got {absmax.size}")
    return nf4_values(codes, absmax[_block_index(n, block_size)])


def nf4_values(codes, absmax):
    """``fl32(CODE_VALUES[code] * absmax)`` per code (0..15), each with its own FP32
    ``absmax`` (same shape): :func:`nf4_dequantize` before the blocks, as the hardware
    takes them."""
    codes = np.asarray(codes).astype(np.int64)
    if codes.size and (codes.min() < 0 or codes.max() > 15):
        raise ValueError("codes: NF4 codes are 0..15")
    # One FP32 product, correctly rounded: exact in float64, then one rounding. A NaN
    # (0 * Inf, a NaN absmax) is FP32's canonical quiet NaN, whatever its payload.
    with np.errstate(invalid="ignore"):
        product = (CODE_VALUES[codes].astype(np.float64)
                   * np.asarray(absmax, dtype=np.float32)).astype(np.float32)
    nan = np.array(floats.FP32.nan_bits, dtype=np.uint32).view(np.float32)
    return np.where(np.isnan(product), nan, product).astype(np.float32)
