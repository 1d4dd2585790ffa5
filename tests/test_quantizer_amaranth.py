"""The Quantizer in Amaranth's own simulator against the golden model: the full product of
rounding x saturation x input/output signedness (128 configurations, lanes 1, constant
scale), each over every input value, with random valid gaps and backpressure."""

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
    lo, hi = golden._intarray.int_range(IN_WIDTH, in_signed)
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


def test_one_beat_per_cycle_at_full_rate():
    q = Quantizer(lanes=4, latency=4)
    n = 200
    beats = [{"data": [i, -i, 7 * i, 3], "multiplier": 1 << 20, "shift": 20, "zero_point": 0}
             for i in range(n)]
    received, cycles = run_streams(q, {"i": beats}, {"o": n}, in_pause=0, out_pause=0)
    assert len(received["o"]) == n
    assert cycles == n + q.latency
