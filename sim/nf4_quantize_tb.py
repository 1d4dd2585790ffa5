"""cocotb bench of NF4 quantization: the generated Verilog against
:func:`qdp.golden.nf4_codes`, every code, flag and FP32 absmax compared exactly.

Traffic: the absmax unit's (:class:`~qdp.sim.absmax_tb.AbsmaxTraffic`: tensors of blocks
closed by ``last``, some ending in a short block, which has a constant of its own; random
valid gaps on ``i``, independent backpressure on ``o`` and ``scale``; a reset inside a
block; a last stream at full rate that measures the steady state) with NF4's kinds of
blocks (:data:`NF4_KINDS`): any finite patterns, similar magnitudes, ±0 and subnormals
with an Inf or a NaN, all zeros (``c = +Inf``: every code 0), all equal, one huge outlier
among small values, all subnormal (``1 / absmax`` overflows), the largest exponents
(subnormal ``c``), all NaN (the constant ``-FLT_MAX``), and values on and next to the
kernel's thresholds.

Config: as :mod:`qdp.sim.absmax_tb`'s.
"""

import cocotb
import numpy as np

from ..golden import floats
from ..golden.nf4 import THRESHOLDS, nf4_codes, normalise_blocks
from .absmax_tb import AbsmaxTraffic, make_float_block, packet_blocks
from .bench import run_stream_bench
from .traffic import block_marks

__all__ = ["NF4_KINDS", "make_nf4_block", "expected", "Nf4QuantizeTraffic",
           "test_nf4_quantize"]

NF4_KINDS = ("random", "narrow", "specials", "zeros", "equal", "outlier", "subnormal",
             "huge", "nans", "thresholds")


def make_nf4_block(kind, size, fmt, rng):
    """``size`` uint64 bit patterns of ``fmt`` of one kind (see :data:`NF4_KINDS`)."""
    fmt = floats.float_format(fmt)
    if kind == "nans":
        sign = rng.integers(0, 2, size=size).astype(np.int64) << (fmt.width - 1)
        payload = rng.integers(1, 1 << fmt.man_bits, size=size)
        return (sign | fmt.inf_bits | payload).astype(np.uint64)
    if kind == "thresholds":
        return _thresholds(size, fmt, rng)
    return make_float_block(kind, size, fmt, rng)


def _thresholds(size, fmt, rng):
    """Elements whose ``fl32(x * fl32(1 / absmax))`` lands on a threshold or next to it:
    ``x = t * a`` for a power of two ``a`` (exact in FP32), or ``x = fl32(t / c)`` and its
    neighbours for any ``a``; one element ``±a`` sets the block's absmax."""
    t = THRESHOLDS[rng.integers(0, len(THRESHOLDS), size=size)]
    t = np.where(rng.random(size) < 0.5, t, np.nextafter(t, np.float32(rng.choice([-2, 2]))))
    span = min(fmt.emax, 60) - 8
    a = np.float32(2.0 ** int(rng.integers(-span, span)))
    if rng.random() < 0.5:
        a = np.float32(a * np.float32(rng.uniform(1, 2)))
    c = np.float32(1) / a
    x = (t / c).astype(np.float32)
    x = np.nextafter(x, x * 2, dtype=np.float32) if rng.random() < 0.3 else x
    x[rng.integers(size)] = a * rng.choice([-1, 1])
    bits = fmt.bits(x.astype(fmt.dtype))
    return bits.astype(np.uint64)


def expected(unit, packets, golden_overrides=None, *, start_beat=0):
    """What the unit must emit for ``packets`` (``start_beat`` is not read: NF4 is
    deterministic): a dict of ``data`` (beats, lanes), ``first``, ``last`` (beats,),
    ``scale`` (blocks,: FP32 absmax patterns) and, for reports, ``x`` (beats, lanes) and
    ``block`` (beats,). A packet's last, short block has a constant of its own, as in the
    golden model."""
    fmt, block_size = floats.float_format(unit.in_format), unit.block_size
    # A golden that puts a value on a threshold above it (">=" for the kernel's ">"): the
    # benches' proof that a wrong golden fails.
    upper = (golden_overrides or {}).get("on_threshold") == "upper"
    lanes, codes, scales, sizes = unit.lanes, [], [], []
    for p in packets:
        q, absmax = nf4_codes(fmt.values(p), block_size=block_size)
        if upper:
            v, _ = normalise_blocks(fmt.values(p), block_size)
            q = (v[:, None] >= THRESHOLDS[None, :]).sum(axis=1)
        codes.append(q.astype(np.int64))
        scales.append(absmax.view(np.uint32).astype(np.int64))
        sizes += packet_blocks(p.size, block_size)
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


class Nf4QuantizeTraffic(AbsmaxTraffic):
    """The absmax unit's traffic with NF4's kinds of blocks, scored by
    :func:`qdp.golden.nf4_codes`."""

    boards = {"compared": "nf4-quantize o.data",
              "compared_flags": "nf4-quantize o.first/last",
              "compared_scales": "nf4-quantize scale"}
    expected = staticmethod(expected)
    kinds = NF4_KINDS

    def make(self, kind, size, rng):
        return make_nf4_block(kind, size, self.bench.params.in_format, rng)


@cocotb.test()
async def test_nf4_quantize(dut):
    await run_stream_bench(dut, Nf4QuantizeTraffic)
