"""The Quantizer in Amaranth's own simulator against the golden model: the full product of
rounding x saturation x input/output signedness (128 configurations, lanes 1, constant
scale), each over every input value; the deep pipeline over every (x, M, S) at small
widths; all with random valid gaps and backpressure."""

import itertools

import numpy as np
import pytest
from qdp import golden
from qdp.hdl import Quantizer
from qdp.sim.amaranth_stream import run_streams

IN_WIDTH, MULT_WIDTH, OUT_WIDTH = 6, 2, 4
# x * 3 / 8 spans about [-12, 12]: inside and beyond the 4-bit output range, with a tie
# whenever x = 4 (mod 8).
MULTIPLIER, SHIFT, ZERO_POINT = 3, 3, 1


@pytest.mark.parametrize("rounding,saturation,in_signed,out_signed", list(itertools.product(
    golden.ROUNDING_MODES, golden.SATURATION_MODES, (True, False), (True, False))))
def test_every_mode_exhaustively(rounding, saturation, in_signed, out_signed):
    q = Quantizer(in_width=IN_WIDTH, in_signed=in_signed, mult_width=MULT_WIDTH,
                  out_width=OUT_WIDTH, out_signed=out_signed, rounding=rounding,
                  saturation=saturation, runtime_scale=False, multiplier=MULTIPLIER,
                  shift=SHIFT, zero_point=ZERO_POINT, latency=3)
    lo, hi = golden.int_range(IN_WIDTH, in_signed)
    x = np.concatenate([np.arange(lo, hi + 1)] * 2)      # twice: the LFSR moves on
    received, _ = run_streams(q, {"i": [[int(v)] for v in x]}, {"o": len(x)}, seed=len(x))
    mask = (1 << OUT_WIDTH) - 1
    got = np.array([w & mask for w in received["o"]])
    if out_signed:
        got = np.where(got > mask >> 1, got - (1 << OUT_WIDTH), got)
    random = golden.lfsr_values(q.lfsr_seed, 1, len(x))[:, 0] if rounding == "stochastic" \
        else None
    want = golden.quantize(x, MULTIPLIER, SHIFT, zero_point=ZERO_POINT, in_width=IN_WIDTH,
                           in_signed=in_signed, mult_width=MULT_WIDTH, out_width=OUT_WIDTH,
                           out_signed=out_signed, rounding=rounding, saturation=saturation,
                           random=random)
    bad = np.nonzero(got != want)[0]
    assert len(bad) == 0, [f"x={x[i]} expected {want[i]} got {got[i]}" for i in bad[:10]]


# Small widths that still reach every step of the deep pipeline: a coarse shift (S up to
# 15 with shift_width 4), a fine one, products wide enough for the early overflow flag.
DEEP = [
    {"in_width": 6, "in_signed": False, "mult_width": 5, "shift_width": 4, "out_width": 2,
         "out_signed": False, "rounding": "half_even", "saturation": "sat", "latency": 8},
    {"in_width": 7, "in_signed": True, "mult_width": 5, "shift_width": 3, "out_width": 2,
         "out_signed": True, "rounding": "trunc", "saturation": "sat_sym", "latency": 6},
    {"in_width": 6, "in_signed": True, "mult_width": 4, "shift_width": 4, "out_width": 3,
         "out_signed": False, "rounding": "half_away", "saturation": "sat_zero", "latency": 5},
    {"in_width": 6, "in_signed": True, "mult_width": 4, "shift_width": 4, "out_width": 3,
         "out_signed": True, "rounding": "stochastic", "saturation": "wrap", "latency": 7},
]


@pytest.mark.parametrize("params", DEEP, ids=lambda p: f"{p['rounding']}-{p['latency']}")
def test_deep_pipeline_every_scale(params):
    q = Quantizer(**params)
    assert q.latency > 4 and q.latency <= q.max_latency
    x_lo, x_hi = golden.int_range(q.in_width, q.in_signed)
    grid = np.array(list(itertools.product(range(x_lo, x_hi + 1), range(1 << q.mult_width),
                                           range(1 << q.shift_width))), dtype=object)
    x, m, s = grid[:, 0], grid[:, 1], grid[:, 2]
    z_lo, z_hi = golden.int_range(q.out_width, q.out_signed)
    z = np.random.default_rng(len(grid)).integers(z_lo, z_hi + 1, len(grid)).astype(object)
    _check(q, x, m, s, z)


def _check(q, x, m, s, z):
    beats = [{"data": [int(a)], "multiplier": int(b), "shift": int(c), "zero_point": int(d)}
             for a, b, c, d in zip(x, m, s, z)]
    received, _ = run_streams(q, {"i": beats}, {"o": len(beats)}, in_pause=0.1,
                              out_pause=0.1, seed=len(beats))
    mask = (1 << q.out_width) - 1
    got = np.array([w & mask for w in received["o"]], dtype=object)
    if q.out_signed:
        got = np.where(got > mask >> 1, got - (1 << q.out_width), got)
    random = golden.lfsr_values(q.lfsr_seed, 1, len(x))[:, 0] \
        if q.rounding == "stochastic" else None
    want = golden.quantize(x, m, s, zero_point=z, in_width=q.in_width,
                           in_signed=q.in_signed, mult_width=q.mult_width,
                           out_width=q.out_width, out_signed=q.out_signed,
                           rounding=q.rounding, saturation=q.saturation, random=random)
    bad = np.nonzero(got != want)[0]
    assert len(bad) == 0, [f"x={x[i]} M={m[i]} S={s[i]} Z={z[i]}: expected {want[i]} "
                           f"got {got[i]}" for i in bad[:10]]


@pytest.mark.parametrize("saturation,out_signed", [("sat", True), ("wrap", False)])
def test_deep_pipeline_overflow_boundaries(saturation, out_signed):
    """32 x 32 bits, latency 10: x * M / 2**S just around +-2**k for every k from the
    output range up past the widest value the decide step adds, at every shift, where the
    early overflow flag and the narrowed sum must hand over exactly."""
    q = Quantizer(saturation=saturation, out_signed=out_signed, latency=10)
    rng = np.random.default_rng(7)
    x_lo, x_hi = golden.int_range(32, True)
    rows = []
    while len(rows) < 3000:
        k = int(rng.integers(q.out_width - 2, q.out_width + 14))
        target = int(rng.choice([-1, 1])) * (1 << k) + int(rng.integers(-2, 3))
        shift = int(rng.integers(0, 64))
        multiplier = int(rng.integers(1, 1 << int(rng.integers(1, 33))))
        x = ((target << shift) + int(rng.integers(0, 1 << shift))) // multiplier
        if x_lo <= x <= x_hi:
            rows.append((x, multiplier, shift))
    x, m, s = (np.array(column, dtype=object) for column in zip(*rows))
    z_lo, z_hi = golden.int_range(q.out_width, q.out_signed)
    _check(q, x, m, s, rng.integers(z_lo, z_hi + 1, len(x)).astype(object))


@pytest.mark.parametrize("latency", [4, 10])
def test_one_beat_per_cycle_at_full_rate(latency):
    q = Quantizer(lanes=4, latency=latency)
    n = 200
    beats = [{"data": [i, -i, 7 * i, 3], "multiplier": 1 << 20, "shift": 20, "zero_point": 0}
             for i in range(n)]
    received, cycles = run_streams(q, {"i": beats}, {"o": n}, in_pause=0, out_pause=0)
    assert len(received["o"]) == n
    assert cycles == n + q.latency
