"""cocotb bench of QuantizeLinear: float bit patterns that force the hard cases (exact
ties, their neighbours, saturation edges, subnormals, ±0, ±max, ±Inf, NaN) through the
generated Verilog with random valid gaps and backpressure and a reset mid-stream, every
output compared exactly with :func:`qdp.golden.quantize_linear` (its element-wise form,
:func:`~qdp.golden.quantize_linear.quantize_linear_bits`, which also states what a
run-time zero, negative, Inf or NaN scale gives).

Run-time scales mix ordinary values, subnormal and huge ones, and arbitrary bit patterns
(specials included); zero points take the ends of the range often. The exhaustive check
sends every bit pattern of a format of 16 bits or fewer (all BF16 or all FP16 values)
through every lane, once per scale of :func:`exhaustive_scales`.
"""

import cocotb
import numpy as np

from ..golden import floats
from ..golden._intarray import int_range
from ..golden.quantize_linear import quantize_linear_bits
from ..hdl.floats import encode
from .bench import run_stream_bench
from .float_vectors import hard_floats, scale_patterns
from .traffic import ElementwiseTraffic, block_runs, lane_ramps, sweep_scales

__all__ = ["stimulus", "expected", "exhaustive_scales", "exhaustive_elements",
           "exhaustive_stimulus", "QuantizeLinearTraffic", "test_quantize_linear"]

#: Widest format an exhaustive check takes: every one of its bit patterns, per lane.
EXHAUSTIVE_MAX_WIDTH = 16
#: Formats this narrow take every scale bit pattern in an exhaustive check.
SMALL_FORMAT_WIDTH = 8


def _format(q):
    return floats.float_format(q.in_format, "in_format")


def _constant_scale(q, beats):
    """The constants as arrays: scale bits and zero points, ``(beats,)`` or per lane."""
    fmt = _format(q)
    scales = q.scale if q.per_lane else (q.scale,)
    zeros = q.zero_point if q.per_lane else (q.zero_point,)
    bits = np.array([encode(v, fmt, "scale") for v in scales], dtype=np.int64)
    shape = (beats, q.lanes) if q.per_lane else (beats,)
    return (np.broadcast_to(bits if q.per_lane else bits[0], shape).copy(),
            np.broadcast_to(np.array(zeros if q.per_lane else zeros[0]), shape).copy())


def _zero_points(q, shape, rng):
    lo, hi = int_range(q.out_width, q.out_signed)
    z = rng.integers(lo, hi + 1, shape)
    return np.where(rng.random(shape) < 0.2, rng.choice(np.array([lo, hi]), shape), z)


def stimulus(q, beats, rng):
    """``(fields, scale)`` for ``beats`` beats: the input payload fields and the scale
    bits and zero points of every beat (``(beats,)``, or ``(beats, lanes)`` per lane)."""
    shape = (beats, q.lanes) if q.per_lane else (beats,)
    if q.runtime_scale:
        s, z = scale_patterns(rng, _format(q), shape), _zero_points(q, shape, rng)
        if q.block_scale:       # held through blocks of 1..8 beats
            runs = block_runs(rng, beats)
            s, z = s[runs], z[runs]
    else:
        s, z = _constant_scale(q, beats)
    lane_s = s if q.per_lane else np.repeat(s[:, None], q.lanes, axis=1)
    lane_z = z if q.per_lane else np.repeat(z[:, None], q.lanes, axis=1)
    x = hard_floats(rng, beats * q.lanes, _format(q), lane_s.reshape(-1),
                    zero_point=lane_z.reshape(-1), out_width=q.out_width,
                    out_signed=q.out_signed).reshape(beats, q.lanes)
    fields = {"data": x, "scale": s, "zero_point": z} if q.runtime_scale else {"data": x}
    return fields, {"scale": s, "zero_point": z}


def expected(q, fields, scale, golden_overrides=None):
    """What the module must output: ``(beats, lanes)`` integers."""
    def lanes(v):
        return v if q.per_lane else v[:, None]
    kwargs = dict(out_width=q.out_width, out_signed=q.out_signed,
                  rounding_model=q.rounding_model, rounding=q.rounding)
    kwargs.update(golden_overrides or {})
    return quantize_linear_bits(fields["data"], lanes(scale["scale"]),
                                lanes(scale["zero_point"]), _format(q), **kwargs)


def exhaustive_scales(q):
    """``(scale bits, zero point)`` pairs of an exhaustive check with a run-time scale.

    For a format of at most 8 bits, every scale bit pattern (zero, negative, subnormal,
    Inf and NaN ones included) with the lowest and the highest zero point: with every x,
    every input pair -- a complete check of the arithmetic. Wider formats: 1 with zero
    point 0, a power of two that makes exact ties with the lowest zero point, an ordinary
    scale with the highest, the smallest subnormal and a huge scale."""
    fmt = _format(q)
    lo, hi = int_range(q.out_width, q.out_signed)
    if fmt.width <= SMALL_FORMAT_WIDTH:
        return [(s, z) for s in range(1 << fmt.width) for z in (lo, hi)]
    one = fmt.bias << fmt.man_bits
    ordinary = ((fmt.bias - 5) << fmt.man_bits) | (0x55 & ((1 << fmt.man_bits) - 1))
    return [(one, 0), (one - (3 << fmt.man_bits), lo), (ordinary, hi),
            (1, (lo + hi) // 2), (fmt.max_bits - (2 << fmt.man_bits), lo)]


def exhaustive_elements(q):
    """Elements an exhaustive check compares: every bit pattern in every lane, once per
    exhaustive scale (once for a constant scale). ``ValueError`` for a wide format."""
    fmt = _format(q)
    if fmt.width > EXHAUSTIVE_MAX_WIDTH:
        raise ValueError(f"exhaustive: {fmt.name} has 2**{fmt.width} values; exhaustive "
                         f"checks take formats of at most {EXHAUSTIVE_MAX_WIDTH} bits "
                         f"(bf16, fp16, eXmY)")
    scales = len(exhaustive_scales(q)) if q.runtime_scale else 1
    return (1 << fmt.width) * q.lanes * scales


def exhaustive_stimulus(q):
    """Every bit pattern in every lane (lane ``l`` starting at its own offset), per scale."""
    exhaustive_elements(q)
    x = lane_ramps(1 << _format(q).width, q.lanes)
    if not q.runtime_scale:
        s, z = _constant_scale(q, len(x))
        return {"data": x}, {"scale": s, "zero_point": z}
    return sweep_scales(x, exhaustive_scales(q), ("scale", "zero_point"), q.lanes,
                        q.per_lane)


class QuantizeLinearTraffic(ElementwiseTraffic):
    """One output beat per input beat, every lane compared with the golden model."""

    name = "quantize-linear"
    element = "x"
    stimulus = staticmethod(stimulus)
    expected = staticmethod(expected)
    exhaustive_stimulus = staticmethod(exhaustive_stimulus)


@cocotb.test()
async def test_quantize_linear(dut):
    await run_stream_bench(dut, QuantizeLinearTraffic)
