"""cocotb bench of NF4 dequantization: blocks of 1..8 beats of 4-bit codes and one FP32
absmax per block through the generated Verilog, with random valid gaps on both inputs,
backpressure and a reset mid-stream; every output bit pattern and flag compared exactly
with :func:`qdp.golden.nf4_values`.

Codes: uniform over the 16. Absmax: positive finite FP32 patterns (what
:class:`~qdp.hdl.Nf4Quantize` emits), and a third of them the edges: ±0, the smallest
subnormal, the largest subnormal, the smallest normal, ``FLT_MAX`` and ``-FLT_MAX`` (a
block of NaNs), ±Inf and NaNs, or any pattern at all.

The exhaustive check sends every code through every lane with every absmax whose top 16
bits are any of the 65,536 (the low 16 bits random): all 16 codes against every sign,
exponent and leading mantissa bits.

With ``double_quant`` the scale stream carries ``(code, absmax2, offset)`` per block:
codes uniform over the 256, ``absmax2`` and ``offset`` drawn as the absmax above (offsets
of either sign), and a third of the offsets within three steps of ``-T[code] *
absmax2``, where the addition cancels.
"""

import cocotb
import numpy as np

from ..golden import floats
from ..golden.double_quant import double_dequantize, dynamic_dequantize
from ..golden.nf4 import nf4_values
from .bench import run_stream_bench
from .traffic import BlockScaleTraffic, block_fields, block_lengths, lane_ramps

__all__ = ["stimulus", "expected", "exhaustive_elements", "exhaustive_stimulus",
           "Nf4DequantizeTraffic", "test_nf4_dequantize"]

#: Longest block of the random traffic, in beats.
MAX_BLOCK_BEATS = 8
#: Absmax patterns drawn often.
EDGE_ABSMAX = np.array([0, 0x80000000, 1, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF,
                        0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x3F800000])


def _fields(codes, block_beats, absmax):
    return block_fields(codes, block_beats, {"value": absmax}), np.repeat(absmax,
                                                                          block_beats)


def _patterns(rng, count):
    """``count`` FP32 patterns: positive finite, a third of them :data:`EDGE_ABSMAX`, a
    few any pattern at all."""
    absmax = rng.integers(0, floats.FP32.inf_bits, count)
    edge = rng.random(count) < 0.35
    absmax[edge] = rng.choice(EDGE_ABSMAX, int(edge.sum()))
    wild = rng.random(count) < 0.05
    absmax[wild] = rng.integers(0, 1 << 32, int(wild.sum()))
    return absmax


def stimulus(unit, beats, rng):
    """``(fields, per_beat_scale)`` of ``beats`` beats in random blocks; with
    ``double_quant`` the scale of a beat is ``(code, absmax2, offset)`` (an ``(beats, 3)``
    array), the offsets a third of the time within a few steps of ``-T[code] * absmax2``
    (cancellation in the addition)."""
    lengths = block_lengths(rng, beats, MAX_BLOCK_BEATS)
    codes = rng.integers(0, 16, (beats, unit.lanes))
    if not unit.double_quant:
        return _fields(codes, lengths, _patterns(rng, len(lengths)))
    n = len(lengths)
    code8, absmax2, offset = rng.integers(0, 256, n), _patterns(rng, n), _patterns(rng, n)
    offset[rng.random(n) < 0.5] |= 1 << 31
    product = dynamic_dequantize(code8.astype(np.uint8),
                                 absmax2.astype(np.uint32).view(np.float32), block_size=1)
    near = rng.random(n) < 0.35
    cancel = ((-product).view(np.uint32).astype(np.int64) + rng.integers(-3, 4, n))
    offset[near] = cancel[near] & 0xFFFFFFFF
    constants = np.stack([code8, absmax2, offset], axis=1)
    fields = block_fields(codes, lengths, {"code": code8, "absmax2": absmax2,
                                           "offset": offset})
    return fields, np.repeat(constants, lengths, axis=0)


def _absmax(unit, per_beat):
    """The FP32 absmax of every beat."""
    if not unit.double_quant:
        return np.asarray(per_beat).astype(np.uint32).view(np.float32)
    code8, absmax2, offset = (np.asarray(per_beat)[:, k] for k in range(3))
    return double_dequantize(code8.astype(np.uint8), absmax2.astype(np.uint32).view(
        np.float32), offset.astype(np.uint32).view(np.float32), block_size=1)


def expected(unit, fields, per_beat, golden_overrides=None):
    """The output FP32 patterns ``(beats, lanes)``: the golden on each code with its
    block's absmax (double-dequantized first, with ``double_quant``)."""
    codes = fields["i"]["data"]
    absmax = np.repeat(_absmax(unit, per_beat), unit.lanes)
    if (golden_overrides or {}).get("absmax") == "magnitude":
        absmax = np.abs(absmax)         # a wrong golden: the benches' proof that one fails
    out = nf4_values(codes.reshape(-1), absmax)
    return out.view(np.uint32).astype(np.int64).reshape(codes.shape)


def exhaustive_elements(unit):
    if unit.double_quant:
        raise ValueError("exhaustive: double_quant=True takes 2**72 constants; the "
                         "exhaustive check is of the codes against the absmax "
                         "(double_quant=False)")
    return 16 * (1 << 16) * unit.lanes


def exhaustive_stimulus(unit, rng):
    """Every code in every lane, one block per absmax: every top half, low half random."""
    ramp = lane_ramps(16, unit.lanes)
    absmax = (np.arange(1 << 16, dtype=np.int64) << 16) | rng.integers(0, 1 << 16, 1 << 16)
    return _fields(np.tile(ramp, (len(absmax), 1)), np.full(len(absmax), len(ramp)), absmax)


class Nf4DequantizeTraffic(BlockScaleTraffic):
    """Blocks of NF4 codes and their FP32 absmax; ``o`` one beat per input beat."""

    name = "nf4-dequantize"
    element = "code"
    stimulus = staticmethod(stimulus)
    expected = staticmethod(expected)
    exhaustive_stimulus = staticmethod(exhaustive_stimulus)


@cocotb.test()
async def test_nf4_dequantize(dut):
    await run_stream_bench(dut, Nf4DequantizeTraffic)
