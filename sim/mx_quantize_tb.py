"""cocotb bench of MX quantization: the generated Verilog against
:func:`qdp.golden.mx_quantize`, every element code, flag and E8M0 scale compared exactly.

Traffic: the absmax unit's (:class:`~qdp.sim.absmax_tb.AbsmaxTraffic`: tensors of blocks
closed by ``last``, some ending in a short block, which is quantized as a block of its
own; random valid gaps on ``i``, independent backpressure on ``o`` and ``scale``; a reset
inside a block; a last stream at full rate that measures the steady state) with MX's
kinds of blocks (:data:`MX_KINDS`): any finite patterns, similar magnitudes, ±0 and
subnormals with an Inf or a NaN (the NaN scale), all zeros (scale 0), all equal, one huge
outlier among small values, all subnormal (the scale's lower clamp), the largest
exponents (the scale's upper end), values that round past the largest element
(saturation), and values exactly half-way between two element values (rounding ties).

Config: as :mod:`qdp.sim.absmax_tb`'s.
"""

import cocotb
import numpy as np

from ..golden import floats
from ..golden.mx import element_format, element_parts, mx_quantize
from .absmax_tb import AbsmaxTraffic, make_float_block, packet_blocks
from .bench import run_stream_bench
from .traffic import block_marks

__all__ = ["MX_KINDS", "make_mx_block", "expected", "MxQuantizeTraffic",
           "test_mx_quantize"]

MX_KINDS = ("random", "narrow", "specials", "zeros", "equal", "outlier", "subnormal",
            "huge", "saturating", "ties")


def make_mx_block(kind, size, fmt, elem, rng):
    """``size`` uint64 bit patterns of ``fmt`` of one kind (see :data:`MX_KINDS`) for
    the element format ``elem``."""
    fmt = floats.float_format(fmt)
    if kind not in ("saturating", "ties"):
        return make_float_block(kind, size, fmt, rng)
    top, m = (1 << fmt.exp_bits) - 1, fmt.man_bits
    sign = rng.integers(0, 2, size=size).astype(np.int64) << (fmt.width - 1)
    mantissa = rng.integers(0, 1 << m, size=size)
    if kind == "saturating":
        # The largest significand of a binade in every element: scaled by the block's
        # shared exponent, the largest rounds past the element's largest normal.
        field = np.full(size, rng.integers(1, top))
        mantissa = (1 << m) - 1 - rng.integers(0, 1 << max(0, m - 4), size=size)
    else:
        return _ties(size, fmt, element_format(elem), rng, sign)
    return (sign | (field.astype(np.int64) << m) | mantissa).astype(np.uint64)


def _ties(size, fmt, elem, rng, sign):
    """Values half-way between two consecutive element magnitudes, times ``2**shared``,
    and one element (the largest normal) that sets the block's shared exponent."""
    # The element magnitudes in order, as multiples of 2**(lsb - 1): midpoints are whole.
    codes = np.arange(elem.max_field + 1)
    _, sig, exp = element_parts(codes, elem)
    units = sig << (exp - elem.lsb + 1)
    lo = max(-127, fmt.emin - fmt.man_bits - (elem.lsb - 1))
    hi = min(127, fmt.emax - elem.emax)
    if lo > hi or size < 2:
        return make_float_block("random", size, fmt, rng)
    shared = int(rng.integers(lo, hi + 1))
    pick = rng.integers(0, len(units) - 1, size=size)
    mid = (units[pick] + units[pick + 1]) // 2
    mid[rng.integers(size)] = units[-1]                 # the largest normal: the scale
    bits = floats.round_scaled(np.zeros(size, dtype=bool), mid,
                               np.full(size, elem.lsb - 1 + shared), fmt)
    return (bits.astype(np.int64) | sign).astype(np.uint64)


def expected(unit, packets, golden_overrides=None, *, start_beat=0):
    """What the unit must emit for ``packets`` (``start_beat`` is not read: MX rounding
    is deterministic): a dict of ``data`` (beats, lanes), ``first``, ``last`` (beats,),
    ``scale`` (blocks,) and, for reports, ``x`` (beats, lanes) and ``block`` (beats,).
    Each block, the short ones included, is quantized as a block of its own."""
    kwargs = dict(element=unit.element, rounding=unit.rounding, in_format=unit.in_format)
    kwargs.update(golden_overrides or {})
    lanes, codes, scales, sizes = unit.lanes, [], [], []
    for p in packets:
        at = 0
        for size in packet_blocks(p.size, unit.block_size):
            q, s = mx_quantize(p[at:at + size].astype(np.uint64), block_size=size, **kwargs)
            codes.append(q.astype(np.int64))
            scales.append(s.astype(np.int64))
            sizes.append(size)
            at += size
    first, last, block = block_marks(np.asarray(sizes, dtype=np.int64) // lanes)
    empty = np.zeros((0, lanes), dtype=np.int64)
    return {
        "data": np.concatenate(codes).reshape(-1, lanes) if codes else empty,
        "first": first, "last": last,
        "scale": np.concatenate(scales) if scales else np.zeros(0, dtype=np.int64),
        "x": np.concatenate(packets).astype(np.int64).reshape(-1, lanes) if packets
        else empty,
        "block": block,
    }


class MxQuantizeTraffic(AbsmaxTraffic):
    """The absmax unit's traffic with MX's kinds of blocks, scored by
    :func:`qdp.golden.mx_quantize`."""

    boards = {"compared": "mx-quantize o.data", "compared_flags": "mx-quantize o.first/last",
              "compared_scales": "mx-quantize scale"}
    expected = staticmethod(expected)
    kinds = MX_KINDS

    def make(self, kind, size, rng):
        p = self.bench.params
        return make_mx_block(kind, size, p.in_format, p.element, rng)


@cocotb.test()
async def test_mx_quantize(dut):
    await run_stream_bench(dut, MxQuantizeTraffic)
