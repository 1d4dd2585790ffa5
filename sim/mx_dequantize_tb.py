"""cocotb bench of MX dequantization: blocks of 1..8 beats of element codes and one E8M0
scale per block through the generated Verilog, with random valid gaps on both inputs,
backpressure and a reset mid-stream; every output bit pattern and flag compared exactly
with :func:`qdp.golden.mx_dequantize`.

Codes: uniform over every code of the element (its NaN and Inf codes, ±0 included) and
blocks of zeros. Scales: uniform bytes, and a third of them the range ends 0, 1, 254 and
the NaN scale 0xFF, besides 127 (2**0).

The exhaustive check sends every code through every lane, once per scale byte: all
``2**width * 256`` (code, scale) pairs.
"""

import cocotb
import numpy as np

from ..golden import floats
from ..golden.mx import element_format, mx_dequantize
from .bench import run_stream_bench
from .traffic import BlockScaleTraffic, block_fields, block_lengths, lane_ramps

__all__ = ["stimulus", "expected", "exhaustive_elements", "exhaustive_stimulus",
           "MxDequantizeTraffic", "test_mx_dequantize"]

#: Longest block of the random traffic, in beats.
MAX_BLOCK_BEATS = 8
#: Scale bytes drawn often: the E8M0 range ends, 2**0 and the NaN scale.
EDGE_SCALES = np.array([0, 1, 127, 254, 255])


def _width(unit):
    return element_format(unit.element).width


def _fields(codes, block_beats, scales):
    return block_fields(codes, block_beats, {"value": scales}), np.repeat(scales,
                                                                          block_beats)


def stimulus(unit, beats, rng):
    """``(fields, per_beat_scale)`` of ``beats`` beats in random blocks."""
    lengths = block_lengths(rng, beats, MAX_BLOCK_BEATS)
    codes = rng.integers(0, 1 << _width(unit), (beats, unit.lanes))
    codes[rng.random(beats) < 0.05] = 0
    scales = rng.integers(0, 256, len(lengths))
    edge = rng.random(len(lengths)) < 0.35
    scales[edge] = rng.choice(EDGE_SCALES, int(edge.sum()))
    return _fields(codes, lengths, scales)


def expected(unit, fields, per_beat, golden_overrides=None):
    """The output bit patterns ``(beats, lanes)``: the golden on each element with its
    block's scale (``block_size=1`` over per-element scales)."""
    codes = fields["i"]["data"]
    kwargs = dict(element=unit.element, out_format=unit.out_format)
    kwargs.update(golden_overrides or {})
    scale = np.repeat(per_beat, unit.lanes).astype(np.uint8)
    out = mx_dequantize(codes.reshape(-1).astype(np.uint8), scale, block_size=1, **kwargs)
    fmt = floats.float_format(kwargs["out_format"])
    bits = out if fmt.dtype is None else fmt.bits(out)
    return np.asarray(bits, dtype=np.int64).reshape(codes.shape)


def exhaustive_elements(unit):
    return (1 << _width(unit)) * unit.lanes * 256


def exhaustive_stimulus(unit, rng):
    """Every code in every lane, one block per scale byte."""
    ramp = lane_ramps(1 << _width(unit), unit.lanes)
    scales = np.arange(256)
    return _fields(np.tile(ramp, (len(scales), 1)), np.full(len(scales), len(ramp)),
                   scales)


class MxDequantizeTraffic(BlockScaleTraffic):
    """Blocks of element codes and their E8M0 scales; ``o`` one beat per input beat."""

    name = "mx-dequantize"
    element = "code"
    stimulus = staticmethod(stimulus)
    expected = staticmethod(expected)
    exhaustive_stimulus = staticmethod(exhaustive_stimulus)


@cocotb.test()
async def test_mx_dequantize(dut):
    await run_stream_bench(dut, MxDequantizeTraffic)
