# amaranth: UnusedElaboratable=no
"""Nf4Dequantize in Amaranth's own simulator against :func:`qdp.golden.nf4_values`:
blocks of 1..8 beats, random valid gaps on both inputs and backpressure, absmax edges
(±0, subnormals, -FLT_MAX, Inf, NaN); the round trip from Nf4Quantize's own output; the
latency at full rate; parameter checks."""

import numpy as np
import pytest
from _float_blocks import beats_of

from qdp.golden import nf4_dequantize, nf4_quantize
from qdp.hdl import Nf4Dequantize
from qdp.sim import nf4_dequantize_tb as tb
from qdp.sim.amaranth_stream import run_streams
from qdp.sim.payload import unpack
from qdp.sim.traffic import block_fields


def run(unit, fields, **pauses):
    """``fields`` through ``unit``: ``(data patterns, (first, last) flags, cycles)``."""
    inputs = {"i": beats_of(fields["i"]),
              "scale": [int(v) for v in fields["scale"]["value"]]}
    beats = len(fields["i"]["data"])
    received, cycles = run_streams(unit, inputs, {"o": beats}, **pauses)
    got = unpack(unit.o.payload.shape(), received["o"])
    return (np.asarray(got["data"]), np.stack([got["first"], got["last"]], axis=1), cycles)


@pytest.mark.parametrize("lanes", [1, 2, 5])
def test_bit_exact(lanes):
    unit = Nf4Dequantize(lanes=lanes)
    fields, per_beat = tb.stimulus(unit, 400, np.random.default_rng(lanes))
    want = tb.expected(unit, fields, per_beat)
    got, flags, _ = run(unit, fields, seed=3)
    bad = np.argwhere(got != want)
    assert not len(bad), [(fields["i"]["data"][b, l], hex(per_beat[b]), hex(got[b, l]),
                           hex(want[b, l])) for b, l in bad[:5]]
    assert (flags == np.stack([fields["i"]["first"], fields["i"]["last"]], axis=1)).all()


def test_round_trip_of_packed_blocks():
    """``nf4_quantize``'s packed bytes, unpacked into codes in element order (high nibble
    first), dequantize to ``nf4_dequantize``'s values."""
    x = np.random.default_rng(4).standard_normal(4 * 64).astype(np.float32)
    packed, absmax = nf4_quantize(x, block_size=64)
    codes = np.stack([packed >> 4, packed & 0xF], axis=1).reshape(-1, 2).astype(np.int64)
    unit = Nf4Dequantize(lanes=2)
    fields = block_fields(codes, np.full(4, 32), {"value": absmax.view(np.uint32)})
    got, _, _ = run(unit, fields, seed=2)
    assert (got.reshape(-1) == nf4_dequantize(packed, absmax).view(np.uint32)).all()


def test_latency_at_full_rate():
    unit = Nf4Dequantize()
    fields, _ = tb.stimulus(unit, 60, np.random.default_rng(2))
    _, _, cycles = run(unit, fields, in_pause=0.0, out_pause=0.0)
    assert cycles == 60 + unit.latency
    assert unit.dsp_tiles == 4 and Nf4Dequantize(lanes=3).dsp_tiles == 12


@pytest.mark.parametrize("params, match", [
    (dict(lanes=0), "lanes: 0 is out of range"),
    (dict(lanes=33), "lanes: 33 is out of range"),
    (dict(lanes=2.0), "lanes: expected an integer"),
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Nf4Dequantize(**params)
