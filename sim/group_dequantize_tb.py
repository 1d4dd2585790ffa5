"""cocotb bench of group dequantization (GPTQ, AWQ): groups of 1..8 beats of codes and one
FP32 scale (and zero point) per group through the generated Verilog, with random valid
gaps on both inputs, backpressure and a reset mid-stream; every output bit pattern and
flag compared exactly with :func:`qdp.golden.group_dequantize`.

Codes: uniform over the ``bits``-bit range, a tenth of them equal to the group's zero
point (a zero product: its sign, ``Inf * 0``) and a tenth at the range's ends. Zero
points: uniform, a fifth of them 0 or the largest code. Scales: any sign and finite
magnitude, a third of them the edges -- ±0, the smallest and largest subnormals, the
smallest normal, ±1 and its neighbour, FLT_MAX and the scales that overflow at the
largest differences, ±Inf and NaNs -- and a few any pattern at all.

The exhaustive check sends every code against every zero point against every scale whose
top 16 bits are any of the 65,536 (the low 16 bits random): one group per (scale, zero),
holding every code once, rotated across the lanes from group to group so that every lane
sees every code. ``bits <= 4`` (asymmetric; symmetric: any ``bits``, zero 0).
"""

import cocotb
import numpy as np

from ..golden import floats
from ..golden.group import group_dequantize
from .bench import run_stream_bench
from .traffic import BlockScaleTraffic, block_fields, block_lengths

__all__ = ["stimulus", "expected", "exhaustive_elements", "exhaustive_stimulus",
           "GroupDequantizeTraffic", "test_group_dequantize"]

#: Longest group of the random traffic, in beats.
MAX_GROUP_BEATS = 8
#: Scale patterns drawn often (each with either sign): zero, the smallest and largest
#: subnormals, the smallest normal, 1 and its neighbour, FLT_MAX, FLT_MAX / 255 (the
#: largest 8-bit difference overflows just above it), Inf and NaNs.
EDGE_SCALES = np.array([0, 1, 0x007FFFFF, 0x00800000, 0x3F800000, 0x3F800001, 0x7F7FFFFF,
                        0x7B808081, 0x7B80807F, 0x7F800000, 0x7FC00000, 0x7F800001,
                        0x7FFFFFFF])
#: Elements beyond which an exhaustive check is refused.
MAX_EXHAUSTIVE = 1 << 24


def code_range(unit):
    """``(lowest, highest)`` code of ``unit``'s ``bits`` and form."""
    if unit.symmetric:
        return -(1 << (unit.bits - 1)), (1 << (unit.bits - 1)) - 1
    return 0, (1 << unit.bits) - 1


def _fields(unit, codes, group_beats, scale, zero):
    """Both inputs' fields and the constants of every beat: ``{"scale": patterns,
    "zero": zero points}`` (zeros when ``symmetric``)."""
    constants = {"value": scale} if unit.symmetric else {"scale": scale, "zero": zero}
    per_beat = {"scale": np.repeat(scale, group_beats), "zero": np.repeat(zero, group_beats)}
    return block_fields(codes, group_beats, constants), per_beat


def _scales(rng, count):
    """``count`` FP32 patterns: finite of either sign, a third of them
    :data:`EDGE_SCALES`, a few any pattern at all."""
    scale = rng.integers(0, floats.FP32.inf_bits, count)
    edge = rng.random(count) < 0.35
    scale[edge] = rng.choice(EDGE_SCALES, int(edge.sum()))
    scale |= rng.integers(0, 2, count) << 31
    wild = rng.random(count) < 0.05
    scale[wild] = rng.integers(0, 1 << 32, int(wild.sum()))
    return scale


def stimulus(unit, beats, rng):
    """``(fields, per_beat)`` of ``beats`` beats in random groups; ``per_beat`` holds the
    scale and zero point of every beat (:func:`_fields`)."""
    lengths = block_lengths(rng, beats, MAX_GROUP_BEATS)
    groups = len(lengths)
    lo, hi = code_range(unit)
    if unit.symmetric:
        zero = np.zeros(groups, dtype=np.int64)
    else:
        zero = rng.integers(lo, hi + 1, groups)
        ends = rng.random(groups) < 0.2
        zero[ends] = rng.choice([lo, hi], int(ends.sum()))
    codes = rng.integers(lo, hi + 1, (beats, unit.lanes))
    pick = rng.random(codes.shape)
    per_beat_zero = np.repeat(zero, lengths)[:, None]
    codes = np.where(pick < 0.1, per_beat_zero, codes)
    codes = np.where((pick >= 0.1) & (pick < 0.2), rng.choice([lo, hi], codes.shape), codes)
    return _fields(unit, codes, lengths, _scales(rng, groups), zero)


def expected(unit, fields, per_beat, golden_overrides=None):
    """The output FP32 patterns ``(beats, lanes)``: the golden on each code with its
    group's scale and zero point."""
    codes = fields["i"]["data"]
    scale = np.repeat(per_beat["scale"], unit.lanes).astype(np.uint32)
    zero = np.repeat(per_beat["zero"], unit.lanes)
    overrides = golden_overrides or {}
    # Wrong goldens, the benches' proof that one fails: the scale's sign dropped, or
    # NumPy's float64 NaNs (payloads, x86's negative Inf * 0) where the golden has the
    # canonical one.
    if overrides.get("scale") == "magnitude":
        scale = scale & 0x7FFFFFFF
    if overrides.get("nan") == "numpy":
        with np.errstate(invalid="ignore", over="ignore"):
            out = (scale.view(np.float32).astype(np.float64)
                   * (codes.reshape(-1) - zero)).astype(np.float32)
    else:
        out = group_dequantize(codes.reshape(-1), scale.view(np.float32), zero,
                               group_size=1)
    return out.view(np.uint32).astype(np.int64).reshape(codes.shape)


def _exhaustive_shape(unit):
    """``(codes, zero points, beats per group)`` of the exhaustive check."""
    codes = 1 << unit.bits
    zeros = 1 if unit.symmetric else codes
    return codes, zeros, -(-codes // unit.lanes)


def exhaustive_elements(unit):
    codes, zeros, group_beats = _exhaustive_shape(unit)
    elements = group_beats * unit.lanes * zeros * (1 << 16)
    if elements > MAX_EXHAUSTIVE:
        raise ValueError(f"exhaustive: bits={unit.bits} has {codes} x {zeros} (code, zero) "
                         f"pairs against 2**16 scales, {elements} elements; exhaustive "
                         f"checks take bits <= 4 (asymmetric) or symmetric=True")
    return elements


def exhaustive_stimulus(unit, rng):
    """One group per (scale top half, zero point), zero points fastest, each holding every
    code once (the last beat filled up from the start again), shifted by the scale's
    index so that every code reaches every lane."""
    exhaustive_elements(unit)
    count, zeros, group_beats = _exhaustive_shape(unit)
    lo, _ = code_range(unit)
    scale = (np.arange(1 << 16, dtype=np.int64) << 16) | rng.integers(0, 1 << 16, 1 << 16)
    groups = len(scale) * zeros
    place = np.arange(group_beats * unit.lanes).reshape(group_beats, unit.lanes)
    shift = np.repeat(np.arange(len(scale)), zeros)[:, None, None]
    codes = (place[None] + shift) % count + lo
    zero = np.tile(np.arange(zeros, dtype=np.int64) + (0 if unit.symmetric else lo),
                   len(scale))
    return _fields(unit, codes.reshape(-1, unit.lanes), np.full(groups, group_beats),
                   np.repeat(scale, zeros), zero)


class GroupDequantizeTraffic(BlockScaleTraffic):
    """Groups of codes and their FP32 scale and zero point; ``o`` one beat per input
    beat."""

    name = "group-dequantize"
    element = "code"
    stimulus = staticmethod(stimulus)
    expected = staticmethod(expected)
    exhaustive_stimulus = staticmethod(exhaustive_stimulus)


@cocotb.test()
async def test_group_dequantize(dut):
    await run_stream_bench(dut, GroupDequantizeTraffic)
