"""cocotb bench of DequantizeLinear: integers (range ends, zero-point neighbours and, for
wide inputs, values whose float32 rounding ties) times scales (for a run-time scale:
ordinary, subnormal, huge and special bit patterns) through the generated Verilog, with
random valid gaps, backpressure and a reset mid-stream; every output bit pattern compared
exactly with :func:`qdp.golden.dequantize_linear` (its element-wise form,
:func:`~qdp.golden.dequantize_linear.dequantize_linear_bits`).

The exhaustive check sends every input of a type of at most 16 bits through every lane,
once per scale of :func:`exhaustive_scales`.
"""

import cocotb
import numpy as np

from ..golden import floats
from ..golden._intarray import int_range
from ..golden.dequantize_linear import dequantize_linear_bits
from ..hdl.floats import encode
from .bench import run_stream_bench
from .float_vectors import scale_patterns
from .traffic import ElementwiseTraffic, block_runs, lane_ramps, sweep_scales

__all__ = ["stimulus", "expected", "exhaustive_scales", "exhaustive_elements",
           "exhaustive_stimulus", "DequantizeLinearTraffic", "test_dequantize_linear"]

#: Widest input an exhaustive check takes.
EXHAUSTIVE_MAX_IN_WIDTH = 16


def _format(q):
    return floats.float_format(q.out_format, "out_format")


def _shape(q, beats):
    return (beats, q.lanes) if q.per_lane else (beats,)


def _constant_scale(q, beats):
    fmt = _format(q)
    scales = q.scale if q.per_lane else (q.scale,)
    bits = np.array([encode(v, fmt, "scale") for v in scales], dtype=np.int64)
    z = q.zero_point
    zeros = None if z is None else np.array(z if q.per_lane else (z,), dtype=np.int64)
    shape = _shape(q, beats)
    return (np.broadcast_to(bits if q.per_lane else bits[0], shape).copy(),
            None if zeros is None else
            np.broadcast_to(zeros if q.per_lane else zeros[0], shape).copy())


def _integers(q, shape, z, rng):
    """Inputs: uniform, the range ends, the zero point and its neighbours, and (wide)
    values near 2**24..2**31 with ties of their float32 rounding."""
    lo, hi = int_range(q.in_width, q.in_signed)
    values = rng.integers(lo, hi + 1, shape, dtype=np.int64)
    kind = rng.random(shape)
    values = np.where(kind < 0.1, rng.choice(np.array([lo, hi, 0, lo + 1, hi - 1]), shape),
                      values)
    if z is not None:
        values = np.where((kind >= 0.1) & (kind < 0.2),
                          np.clip(z + rng.integers(-2, 3, shape), lo, hi), values)
    if q.in_width > 24:
        k = rng.integers(1, q.in_width - 24 + 1, shape)
        tie = ((rng.integers(1 << 23, 1 << 24, shape) << k) | (np.int64(1) << (k - 1)))
        tie = tie + rng.integers(-1, 2, shape)
        tie = np.where(rng.random(shape) < 0.5, -tie, tie) if q.in_signed else tie
        values = np.where(kind >= 0.6, np.clip(tie, lo, hi), values)
    return values


def stimulus(q, beats, rng):
    """``(fields, scale)``: the input payload fields and the scale bits and zero points
    of every beat (``zero_point`` ``None`` for an absent constant one)."""
    shape = _shape(q, beats)
    if q.runtime_scale:
        lo, hi = int_range(q.in_width, q.in_signed)
        s = scale_patterns(rng, _format(q), shape)
        z = np.where(rng.random(shape) < 0.2, rng.choice(np.array([lo, hi, 0]), shape),
                     rng.integers(lo, hi + 1, shape, dtype=np.int64))
        if q.block_scale:       # held through blocks of 1..8 beats
            runs = block_runs(rng, beats)
            s, z = s[runs], z[runs]
    else:
        s, z = _constant_scale(q, beats)
    lane_z = None if z is None else (z if q.per_lane else z[:, None])
    values = _integers(q, (beats, q.lanes), lane_z, rng)
    fields = {"data": values, "scale": s, "zero_point": z} if q.runtime_scale \
        else {"data": values}
    return fields, {"scale": s, "zero_point": z}


def expected(q, fields, scale, golden_overrides=None):
    """The output bit patterns: ``(beats, lanes)``."""
    def lanes(v):
        return None if v is None else (v if q.per_lane else v[:, None])
    z = lanes(scale["zero_point"])
    if z is not None:
        z = np.broadcast_to(z, fields["data"].shape)
    kwargs = dict(in_width=q.in_width)
    kwargs.update(golden_overrides or {})
    return dequantize_linear_bits(fields["data"], lanes(scale["scale"]), z, _format(q),
                                  **kwargs)


def exhaustive_scales(q):
    """``(scale bits, zero point)`` pairs of an exhaustive check with a run-time scale:
    1, an ordinary scale, the smallest subnormal, a huge scale (products overflow), with
    zero points 0 and the range ends."""
    fmt = _format(q)
    lo, hi = int_range(q.in_width, q.in_signed)
    one = fmt.bias << fmt.man_bits
    ordinary = ((fmt.bias - 5) << fmt.man_bits) | (0x55 & ((1 << fmt.man_bits) - 1))
    return [(one, 0), (ordinary, lo), (1, hi), (fmt.max_bits - (2 << fmt.man_bits), 0)]


def exhaustive_elements(q):
    """Elements an exhaustive check compares; ``ValueError`` for a wide input."""
    if q.in_width > EXHAUSTIVE_MAX_IN_WIDTH:
        raise ValueError(f"exhaustive: in_width {q.in_width} has 2**{q.in_width} inputs; "
                         f"exhaustive checks take in_width <= {EXHAUSTIVE_MAX_IN_WIDTH}")
    scales = len(exhaustive_scales(q)) if q.runtime_scale else 1
    return (1 << q.in_width) * q.lanes * scales


def exhaustive_stimulus(q):
    """Every input value in every lane (from its own offset), per scale."""
    exhaustive_elements(q)
    lo, _ = int_range(q.in_width, q.in_signed)
    values = lane_ramps(1 << q.in_width, q.lanes, lo)
    if not q.runtime_scale:
        s, z = _constant_scale(q, len(values))
        return {"data": values}, {"scale": s, "zero_point": z}
    return sweep_scales(values, exhaustive_scales(q), ("scale", "zero_point"), q.lanes,
                        q.per_lane)


class DequantizeLinearTraffic(ElementwiseTraffic):
    """One output beat per input beat, every lane's bit pattern compared."""

    name = "dequantize-linear"
    element = "q"
    stimulus = staticmethod(stimulus)
    expected = staticmethod(expected)
    exhaustive_stimulus = staticmethod(exhaustive_stimulus)


@cocotb.test()
async def test_dequantize_linear(dut):
    await run_stream_bench(dut, DequantizeLinearTraffic)
