"""cocotb bench of the Quantizer: random, corner and tie vectors through the generated
Verilog with random valid gaps and backpressure, a reset in the middle of the stream, and
every output compared exactly with :func:`qdp.golden.quantize` (or
:func:`qdp.golden.requantize_tflite`). :class:`QuantizerTraffic` configures the bench engine
(:mod:`qdp.sim.bench`): ``vectors`` elements checked, a quarter as many cut by the reset.

The stimulus and expectation functions are plain Python, shared with the Amaranth-
simulator tests: they take a Quantizer or the parameters of the module's manifest.
"""

import cocotb
import numpy as np

from .. import golden
from .bench import run_stream_bench
from .traffic import ElementwiseTraffic, lane_ramps, sweep_scales

__all__ = ["stimulus", "exhaustive_elements", "exhaustive_stimulus", "expected",
           "QuantizerTraffic", "test_quantizer"]

#: Widest input an exhaustive check takes: every one of its 2**in_width values, per lane.
EXHAUSTIVE_MAX_IN_WIDTH = 16


def _uniform(rng, lo, hi, size):
    """Uniform integers in [lo, hi], also for ranges wider than int64 (then Python ints)."""
    span = hi - lo + 1
    if span <= 1 << 62 and -(1 << 62) <= lo and hi < 1 << 62:
        return rng.integers(0, span, size=size, dtype=np.int64) + lo
    if span <= 1 << 62:
        return (rng.integers(0, span, size=size, dtype=np.int64).astype(object) + lo)
    words = (span.bit_length() + 63) // 64 + 1
    raw = np.zeros(size, dtype=object)
    for _ in range(words):
        raw = (raw << 64) | rng.integers(0, 1 << 63, size=size, dtype=np.int64).astype(object)
    return raw % span + lo


def _scale_shape(q, beats):
    return (beats, q.lanes) if q.per_lane else (beats,)


def stimulus(q, beats, rng):
    """Input fields for ``beats`` beats of the Quantizer ``q``: a dict of int arrays.

    Mixes uniform values, extremes, tie-makers (x * M an odd multiple of 2**(S-1)) and
    multiplier/shift pairs that land the result near the output range, so every rounding
    and saturation branch is exercised.
    """
    lanes = q.lanes
    in_lo, in_hi = golden._intarray.int_range(q.in_width, q.in_signed)
    out_lo, out_hi = golden._intarray.int_range(q.out_width, q.out_signed)
    shape = _scale_shape(q, beats)
    if q.runtime_scale:
        m_hi = (1 << q.mult_width) - 1
        if q.tflite:
            mult = _uniform(rng, 1 << 30, m_hi, shape)
            shift = rng.integers(-31, 1, size=shape).astype(object)
            left = rng.random(shape) < 0.1
            shift[left] = rng.integers(1, 31, size=int(left.sum()))
        else:
            mult = _uniform(rng, 0, m_hi, shape)
            shift = rng.integers(0, 1 << q.shift_width, size=shape)
            # Shifts that bring |x * M| near the output range, where rounding matters.
            useful = rng.random(shape) < 0.6
            # bit_length of M (< 2**32): the exponent frexp finds, exact below 2**53.
            target = q.in_width + np.frexp(mult.astype(np.float64))[1] - q.out_width
            nudged = np.clip(target + rng.integers(-3, 4, size=shape), 0,
                             (1 << q.shift_width) - 1)
            shift = np.where(useful, nudged, shift)
        corner = rng.random(shape) < 0.05
        mult = np.where(corner, rng.choice(np.array([0, 1, m_hi], dtype=mult.dtype), size=shape),
                        mult)
        zero = rng.integers(out_lo, out_hi + 1, size=shape)
    else:
        def const(v):
            return np.broadcast_to(np.array(v, dtype=object), shape).copy()
        mult, shift, zero = const(q.multiplier), const(q.shift), const(q.zero_point)

    x = _uniform(rng, in_lo, in_hi, (beats, lanes))
    kind = rng.random((beats, lanes))
    corners = np.array(sorted({in_lo, in_hi, 0, min(1, in_hi), max(-1, in_lo)}), dtype=x.dtype)
    x = np.where(kind < 0.1, rng.choice(corners, size=(beats, lanes)), x)
    if not q.tflite:
        _make_ties(q, rng, x, mult, shift, np.nonzero(rng.random(beats) < 0.25)[0])
    if q.runtime_scale:
        fields = {"data": x, "multiplier": mult, "shift": shift, "zero_point": zero}
    else:
        fields = {"data": x}
    return fields, {"multiplier": mult, "shift": shift, "zero_point": zero}


def _make_ties(q, rng, x, mult, shift, beats):
    """Turn ``beats`` into exact ties: x * M an odd multiple of 2**(S-1).

    With x = odd * 2**k and M = odd' * 2**t that needs k + t = S - 1. A wide constant
    scale may leave no such x in range (then the beat stays random); a run-time M is
    given the trailing zeros it needs.
    """
    in_lo, in_hi = golden._intarray.int_range(q.in_width, q.in_signed)
    magnitude_bits = q.in_width - 1 if q.in_signed else q.in_width
    lanes = np.arange(q.lanes)
    # One row per scale: (beat, lane) with per-lane scales, else (beat,).
    if q.per_lane:
        where = (np.repeat(beats, q.lanes), np.tile(lanes, len(beats)))
    else:
        where = (np.asarray(beats, dtype=np.int64),)
    m = mult[where].astype(np.int64)
    s = shift[where].astype(np.int64)
    ok = s != 0
    if q.runtime_scale:
        k = np.floor(rng.random(len(s)) * np.minimum(s, magnitude_bits)).astype(np.int64)
        t = s - 1 - k
        ok &= t < q.mult_width
        t = np.where(ok, t, 0)
        m = np.where(ok, ((m >> t) | 1) << t, m)
        mult[where] = np.where(ok, m, mult[where].astype(np.int64)).astype(object)
    ok &= m != 0
    low_bit = np.where(ok, m & -m, 1)
    k = s - 1 - np.round(np.log2(low_bit.astype(np.float64))).astype(np.int64)
    ok &= (k >= 0) & (k < magnitude_bits)
    # Every lane of a per-tensor scale gets its own tie.
    rows = np.flatnonzero(ok)
    if not q.per_lane:
        beat, lane = np.repeat(where[0][rows], q.lanes), np.tile(lanes, len(rows))
        k = np.repeat(k[rows], q.lanes)
    else:
        beat, lane, k = where[0][rows], where[1][rows], k[rows]
    bits = np.minimum(magnitude_bits - k - 1, 62)      # the odd factor's random bits
    odd = (rng.integers(0, 1 << 62, size=len(k)) & ((1 << bits) - 1)) * 2 + 1
    value = odd.astype(object) << k.astype(object)
    if in_lo < 0:
        value = np.where(rng.random(len(k)) < 0.5, -value, value)
    fits = (value >= in_lo) & (value <= in_hi)
    x[beat[fits], lane[fits]] = value[fits]


def _exhaustive_scales(q):
    """The run-time (M, S, Z) that an exhaustive check sweeps every input through: the
    widest multiplier, a mid one with a rounding shift, a power of two that makes exact
    ties, and the identity."""
    out_lo, out_hi = golden._intarray.int_range(q.out_width, q.out_signed)
    if q.tflite:
        return [((1 << 31) - 1, 0, 0), (1 << 30, -3, out_lo), (0x5A827999, -9, out_hi),
                (1 << 30, 1, 0)]
    m_hi, s_hi = (1 << q.mult_width) - 1, (1 << q.shift_width) - 1
    mid = (m_hi >> 1) | 1
    target = q.in_width + q.mult_width - q.out_width

    def shift(v):
        return int(np.clip(v, 0, s_hi))
    return [(m_hi, shift(target), 0), (mid, shift(target + 1), out_lo),
            (1 << (q.mult_width - 1), shift(q.mult_width + 1), out_hi), (1, 0, 0)]


def exhaustive_elements(q):
    """Elements an exhaustive check of ``q`` compares: every input value in every lane,
    once per scale of :func:`_exhaustive_scales` (once when the scale is constant).
    ``ValueError`` when ``q`` is too wide."""
    if q.in_width > EXHAUSTIVE_MAX_IN_WIDTH:
        raise ValueError(f"exhaustive: in_width {q.in_width} has 2**{q.in_width} inputs; "
                         f"exhaustive checks take in_width <= {EXHAUSTIVE_MAX_IN_WIDTH}")
    scales = len(_exhaustive_scales(q)) if q.runtime_scale else 1
    return (1 << q.in_width) * q.lanes * scales


def exhaustive_stimulus(q):
    """Every input value in every lane (lane ``l`` runs through them from its own start),
    for each exhaustive scale: input fields and scales as :func:`stimulus` returns them."""
    exhaustive_elements(q)
    in_lo, _ = golden._intarray.int_range(q.in_width, q.in_signed)
    n = 1 << q.in_width
    x = lane_ramps(n, q.lanes, in_lo)
    names = ("multiplier", "shift", "zero_point")
    if not q.runtime_scale:             # the constants, per tensor or per lane
        shape = _scale_shape(q, n)
        scale = {name: np.broadcast_to(np.asarray(getattr(q, name), dtype=object),
                                       shape).copy() for name in names}
        return {"data": x}, scale
    return sweep_scales(x, _exhaustive_scales(q), names, q.lanes, q.per_lane)


def expected(q, fields, scale, golden_overrides=None):
    """What the Quantizer must output for ``fields``: shape ``(beats, lanes)``."""
    x = fields["data"]
    beats = len(x)

    def lanes(v):
        return v if q.per_lane else v[:, None]

    m, s, z = lanes(scale["multiplier"]), lanes(scale["shift"]), lanes(scale["zero_point"])
    if q.tflite:
        return golden.requantize_tflite(x, m, s, zero_point=z, in_width=q.in_width,
                                        out_width=q.out_width, out_signed=q.out_signed,
                                        single_rounding=q.tflite == "single")
    kwargs = dict(zero_point=z, in_width=q.in_width, in_signed=q.in_signed,
                  mult_width=q.mult_width, out_width=q.out_width, out_signed=q.out_signed,
                  rounding=q.rounding, saturation=q.saturation)
    kwargs.update(golden_overrides or {})
    if kwargs["rounding"] == "stochastic":
        kwargs["random"] = golden.lfsr_values(q.lfsr_seed, q.lanes, beats)
    return golden.quantize(x, m, s, **kwargs)


class QuantizerTraffic(ElementwiseTraffic):
    """One output beat per input beat, every lane compared with the golden model."""

    name = "quantizer"
    element = "x"
    stimulus = staticmethod(stimulus)
    expected = staticmethod(expected)
    exhaustive_stimulus = staticmethod(exhaustive_stimulus)


@cocotb.test()
async def test_quantizer(dut):
    await run_stream_bench(dut, QuantizerTraffic)
