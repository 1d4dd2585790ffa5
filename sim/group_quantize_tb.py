"""cocotb bench of group quantization (GPTQ/AWQ): the generated Verilog against
:func:`qdp.golden.group_quantize`, every code, flag, FP32 scale and zero point compared
exactly.

Traffic: the absmax unit's (:class:`~qdp.sim.absmax_tb.AbsmaxTraffic`: tensors of groups
closed by ``last``, some ending in a short group, which has a scale of its own; random
valid gaps on ``i``, independent backpressure on ``o`` and ``scale``; a reset inside a
group; a last stream at full rate that measures the steady state) with group
quantization's kinds of groups (:data:`GROUP_KINDS`): any finite patterns, similar
magnitudes, all zeros (the golden's range -1..1), ±0 and subnormals, all equal, one huge
outlier among small values, all positive, all negative, and groups whose elements lie on
and next to the ``.5`` ties of ``x / scale``.

A wrong golden (``golden: {"ties": "away"}``: ``rint`` half away from zero) must fail.

Config: as :mod:`qdp.sim.absmax_tb`'s.
"""

import cocotb
import numpy as np

from ..golden import floats
from ..golden import group as group_golden
from ..golden.group import group_quantize
from .absmax_tb import AbsmaxTraffic, make_float_block, packet_blocks
from .bench import run_stream_bench
from .traffic import block_marks

__all__ = ["GROUP_KINDS", "make_group_block", "expected", "GroupQuantizeTraffic",
           "test_group_quantize"]

GROUP_KINDS = ("random", "narrow", "zeros", "subnormal", "equal", "outlier", "positive",
               "negative", "ties")


def _finite(bits, fmt):
    """Inf and NaN patterns (outside the golden) replaced by the largest finite one."""
    bits = np.asarray(bits, dtype=np.int64)
    special = ((bits >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)) == (1 << fmt.exp_bits) - 1
    sign = bits & (1 << (fmt.width - 1))
    return np.where(special, sign | (fmt.inf_bits - 1), bits)


def make_group_block(kind, size, fmt, rng, *, bits=4, symmetric=False):
    """``size`` uint64 bit patterns of ``fmt`` of one kind (see :data:`GROUP_KINDS`), all
    finite."""
    fmt = floats.float_format(fmt)
    sign_bit = 1 << (fmt.width - 1)
    if kind == "ties" and fmt.dtype is not None:
        return _ties(size, fmt, rng, bits, symmetric)
    base = {"positive": "random", "negative": "random", "ties": "equal"}.get(kind, kind)
    x = _finite(make_float_block(base, size, fmt, rng), fmt)
    if kind == "positive":
        x &= sign_bit - 1
    elif kind == "negative":
        x |= sign_bit
    return x.astype(np.uint64)


def _ties(size, fmt, rng, bits, symmetric):
    """Elements on and next to ``(k + 1/2) * scale``: the group's range set by its first
    and last elements, the others ``(k + 1/2) * scale`` rounded to the input format and
    their neighbours (the golden picks the scale; ties of FP32's own rounding of
    ``x / scale`` come with them). A named format only."""
    maxq = (1 << (bits - 1)) - 1 if symmetric else (1 << bits) - 1
    hi = float(np.asarray(2.0 ** int(rng.integers(-6, 6)) * rng.uniform(1, 2))
               .astype(fmt.dtype))
    lo = float(np.asarray(-hi if symmetric else -hi * rng.uniform(0, 1)).astype(fmt.dtype))
    span = np.float32(hi) - np.float32(lo)
    scale = np.float32(span / np.float32(maxq))
    k = rng.integers(-maxq - 1, maxq + 1, size=size).astype(np.float64)
    x = np.clip(float(scale) * (k + 0.5), lo, hi)
    pattern = fmt.bits(x.astype(fmt.dtype))
    step = rng.integers(-1, 2, size=size)
    moved = pattern + np.where(pattern >> (fmt.width - 1), -step, step)
    pattern = np.where(rng.random(size) < 0.4, moved, pattern) & ((1 << fmt.width) - 1)
    pattern[0] = fmt.bits(np.asarray(hi).astype(fmt.dtype))
    pattern[-1] = fmt.bits(np.asarray(lo).astype(fmt.dtype))
    return _finite(pattern, fmt).astype(np.uint64)


def _rint_away(bits):
    """A wrong golden's ``rint``: half away from zero."""
    v = bits.astype(np.uint32).view(np.float32).astype(np.float64)
    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)


def expected(unit, packets, golden_overrides=None, *, start_beat=0):
    """What the unit must emit for ``packets`` (``start_beat`` is not read): a dict of
    ``data`` (beats, lanes), ``first``, ``last`` (beats,), ``scale`` ((groups, 2): FP32
    scale pattern and zero point; (groups,) when symmetric) and, for reports, ``x``
    (beats, lanes) and ``block`` (beats,). A packet's last, short group has a scale of its
    own: the golden on that group alone."""
    fmt, size = floats.float_format(unit.in_format), unit.block_size
    bits, symmetric = unit.bits, unit.symmetric
    away = (golden_overrides or {}).get("ties") == "away"
    lanes, codes, scales, sizes = unit.lanes, [], [], []
    for p in packets:
        groups = packet_blocks(p.size, size)
        start = 0
        for n in groups:
            x = floats.convert(np.asarray(p[start:start + n], dtype=np.int64), fmt,
                               floats.FP32).astype(np.uint32).view(np.float32)   # exact
            start += n
            if away:
                # The golden's own steps with its rint swapped for ties away.
                saved, group_golden._rint = group_golden._rint, _rint_away
                try:
                    q, scale, zero = group_quantize(x, bits=bits, group_size=n,
                                                    symmetric=symmetric)
                finally:
                    group_golden._rint = saved
            else:
                q, scale, zero = group_quantize(x, bits=bits, group_size=n,
                                                symmetric=symmetric)
            codes.append(np.asarray(q, dtype=np.int64))     # signed when symmetric
            s = scale.view(np.uint32).astype(np.int64)
            scales.append(s if symmetric else np.stack([s, zero], axis=1))
        sizes += groups
    first, last, block = block_marks(np.asarray(sizes, dtype=np.int64) // lanes)
    empty = np.zeros((0, lanes), dtype=np.int64)
    no_scale = np.zeros((0,) if symmetric else (0, 2), dtype=np.int64)
    return {
        "data": np.concatenate(codes).reshape(-1, lanes) if codes else empty,
        "first": first, "last": last,
        "scale": np.concatenate(scales) if scales else no_scale,
        "x": np.concatenate(packets).astype(np.int64).reshape(-1, lanes) if packets
        else empty,
        "block": block,
    }


class GroupQuantizeTraffic(AbsmaxTraffic):
    """The absmax unit's traffic with group quantization's kinds of groups, scored by
    :func:`qdp.golden.group_quantize`."""

    boards = {"compared": "group-quantize o.data",
              "compared_flags": "group-quantize o.first/last",
              "compared_scales": "group-quantize scale"}
    expected = staticmethod(expected)
    kinds = GROUP_KINDS

    def __init__(self, bench):
        bench.params.block_size = bench.params.group_size     # the storage's name
        super().__init__(bench)

    def make(self, kind, size, rng):
        p = self.bench.params
        return make_group_block(kind, size, p.in_format, rng, bits=p.bits,
                                symmetric=p.symmetric)

    def _phase(self, packets):
        phase, want = super()._phase(packets)
        if want["scale"].ndim == 2:             # the scale stream's struct fields
            phase.outputs["scale"].checks[0].fields = ("scale", "zero")
        return phase, want


@cocotb.test()
async def test_group_quantize(dut):
    await run_stream_bench(dut, GroupQuantizeTraffic)
