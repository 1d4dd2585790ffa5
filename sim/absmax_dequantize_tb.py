"""cocotb bench of the blockwise dequantizer (Eq. 2): quantized blocks of 1..8 beats and
one scale per block through the generated Verilog, with random valid gaps on both inputs,
backpressure and a reset mid-stream; every output bit pattern and flag compared exactly
with :func:`qdp.golden.dequantize_blockwise`.

Scales: absmax patterns (exact model) or block constants ``c`` (float32 model) from
:func:`~qdp.sim.float_vectors.scale_patterns` -- ordinary, subnormal, the largest finite,
±0, ±Inf, NaNs and arbitrary bits -- and, in the float32 model, half of them the ``c`` of
such an absmax (:func:`qdp.golden.block_constant`). Elements: uniform, 0, ±1 and ±qmax.

The exhaustive check sends every ``q`` in ``-qmax..qmax`` through every lane, once per
scale of :func:`exhaustive_scales`: every pair (q, absmax) of an absmax format of at most
8 bits.
"""

import cocotb
import numpy as np

from ..golden import floats
from ..golden.absmax import block_constant, dequantize_blockwise
from .bench import run_stream_bench
from .float_vectors import scale_patterns, special_floats
from .traffic import BlockScaleTraffic, block_fields, block_lengths, lane_ramps

__all__ = ["stimulus", "expected", "exhaustive_scales", "exhaustive_elements",
           "exhaustive_stimulus", "AbsmaxDequantizeTraffic", "test_absmax_dequantize"]

#: Longest block of the random traffic, in beats.
MAX_BLOCK_BEATS = 8


def _qmax(unit):
    return (1 << (unit.out_width - 1)) - 1


def _scale_fields(unit, scales, rng):
    """The ``scale`` payload fields for one scale per block: the absmax (exact model) or
    ``c`` beside an absmax the bench makes up (float32 model: only ``c`` is read)."""
    if unit.model == "exact":
        return {"value": scales}
    fmt = floats.float_format(unit.in_format)
    return {"absmax": rng.integers(0, 1 << fmt.width, scales.shape), "c": scales}


def _draw_scales(unit, blocks, rng):
    fmt = floats.float_format(unit.in_format)
    absmax = scale_patterns(rng, fmt, (blocks,))
    if unit.model == "exact":
        return absmax
    c = block_constant(absmax.astype(np.uint64), in_format=unit.in_format,
                       out_width=unit.out_width).astype(np.int64)
    return np.where(rng.random(blocks) < 0.5, c, scale_patterns(rng, floats.FP32, (blocks,)))


def _fields(unit, q, block_beats, scales, rng):
    """Input fields of both streams for ``q`` (beats, lanes) in blocks of
    ``block_beats`` beats with ``scales``; and the scale of every beat."""
    return (block_fields(q, block_beats, _scale_fields(unit, scales, rng)),
            np.repeat(scales, block_beats))


def stimulus(unit, beats, rng):
    """``(fields, per_beat_scale)`` of ``beats`` beats: ``fields`` holds both input
    streams' payload fields."""
    lengths = block_lengths(rng, beats, MAX_BLOCK_BEATS)
    qmax = _qmax(unit)
    shape = (beats, unit.lanes)
    q = rng.integers(-qmax, qmax + 1, shape)
    kind = rng.random(shape)
    q = np.where(kind < 0.2, rng.choice(np.array([0, 1, -1, qmax, -qmax]), shape), q)
    return _fields(unit, q, lengths, _draw_scales(unit, len(lengths), rng), rng)


def expected(unit, fields, per_beat, golden_overrides=None):
    """The output bit patterns ``(beats, lanes)``: the golden on each element with its
    block's scale (``block_size=1`` over per-element scales)."""
    q = fields["i"]["data"]
    kwargs = dict(out_width=unit.out_width, in_format=unit.in_format,
                  out_format=unit.out_format, model=unit.model)
    kwargs.update(golden_overrides or {})
    scale = np.repeat(per_beat, unit.lanes).astype(np.uint64)
    return dequantize_blockwise(q.reshape(-1), scale, block_size=1,
                                **kwargs).astype(np.int64).reshape(q.shape)


#: Widest absmax format whose every pattern the exhaustive check takes.
EXHAUSTIVE_MAX_WIDTH = 8


def exhaustive_scales(unit):
    """The scales of the exhaustive check: every pattern of an absmax format of at most
    :data:`EXHAUSTIVE_MAX_WIDTH` bits (exact model); else every special pattern
    (:func:`~qdp.sim.float_vectors.special_floats`), 1 and an ordinary value."""
    fmt = floats.float_format(unit.in_format) if unit.model == "exact" else floats.FP32
    if fmt.width <= EXHAUSTIVE_MAX_WIDTH:
        return np.arange(1 << fmt.width, dtype=np.int64)
    one = fmt.bias << fmt.man_bits
    ordinary = (max(1, fmt.bias - 5) << fmt.man_bits) | (0x55 & ((1 << fmt.man_bits) - 1))
    return np.concatenate([special_floats(fmt), [one, ordinary]]).astype(np.int64)


def exhaustive_elements(unit):
    return (2 * _qmax(unit) + 1) * unit.lanes * len(exhaustive_scales(unit))


def exhaustive_stimulus(unit, rng):
    """Every ``q`` in every lane, one block per scale."""
    qmax = _qmax(unit)
    ramp = lane_ramps(2 * qmax + 1, unit.lanes, -qmax)
    scales = exhaustive_scales(unit)
    q = np.tile(ramp, (len(scales), 1))
    return _fields(unit, q, np.full(len(scales), len(ramp)), scales, rng)


class AbsmaxDequantizeTraffic(BlockScaleTraffic):
    """Blocks of quantized elements and their scales; ``o`` carries one beat per input
    beat, its patterns and flags compared."""

    name = "absmax-dequantize"
    stimulus = staticmethod(stimulus)
    expected = staticmethod(expected)
    exhaustive_stimulus = staticmethod(exhaustive_stimulus)


@cocotb.test()
async def test_absmax_dequantize(dut):
    await run_stream_bench(dut, AbsmaxDequantizeTraffic)
