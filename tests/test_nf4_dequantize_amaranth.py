# amaranth: UnusedElaboratable=no
"""Nf4Dequantize in Amaranth's own simulator against :func:`qdp.golden.nf4_values`:
blocks of 1..8 beats, random valid gaps on both inputs and backpressure, absmax edges
(±0, subnormals, -FLT_MAX, Inf, NaN); the round trip from Nf4Quantize's own output; the
latency at full rate; parameter checks."""

import numpy as np
import pytest
from _float_blocks import run_scaled

from qdp.golden import double_dequantize, double_quantize, nf4_dequantize, nf4_quantize
from qdp.hdl import Nf4Dequantize
from qdp.sim import nf4_dequantize_tb as tb
from qdp.sim.traffic import block_fields


@pytest.mark.parametrize("lanes, double_quant", [(1, False), (2, False), (5, False),
                                                  (1, True), (3, True)])
def test_bit_exact(lanes, double_quant):
    unit = Nf4Dequantize(lanes=lanes, double_quant=double_quant)
    fields, per_beat = tb.stimulus(unit, 400, np.random.default_rng(lanes))
    want = tb.expected(unit, fields, per_beat)
    got, flags, _ = run_scaled(unit, fields, seed=3)
    bad = np.argwhere(got != want)
    assert not len(bad), [(fields["i"]["data"][b, l], per_beat[b], hex(got[b, l]),
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
    got, _, _ = run_scaled(unit, fields, seed=2)
    assert (got.reshape(-1) == nf4_dequantize(packed, absmax).view(np.uint32)).all()


def test_round_trip_of_double_quantized_constants():
    """``nf4_quantize`` then ``double_quantize`` of its constants: the hardware's values
    from the codes and the double-quantized constants equal ``nf4_dequantize`` with the
    constants ``double_dequantize`` gives."""
    x = np.random.default_rng(5).standard_normal(300 * 64).astype(np.float32)
    packed, absmax = nf4_quantize(x, block_size=64)
    code8, absmax2, offset = double_quantize(absmax)
    codes = np.stack([packed >> 4, packed & 0xF], axis=1).reshape(-1, 4).astype(np.int64)
    blocks = absmax.size
    unit = Nf4Dequantize(lanes=4, double_quant=True)
    fields = block_fields(codes, np.full(blocks, 16), {
        "code": code8.astype(np.int64),
        "absmax2": np.repeat(absmax2.view(np.uint32), 256)[:blocks].astype(np.int64),
        "offset": np.full(blocks, np.float32(offset).view(np.uint32), dtype=np.int64)})
    got, _, _ = run_scaled(unit, fields, seed=2, in_pause=0.0, out_pause=0.0)
    restored = double_dequantize(code8, absmax2, offset)
    assert (got.reshape(-1) == nf4_dequantize(packed, restored).view(np.uint32)).all()


def test_latency_at_full_rate():
    unit = Nf4Dequantize()
    fields, _ = tb.stimulus(unit, 60, np.random.default_rng(2))
    _, _, cycles = run_scaled(unit, fields, in_pause=0.0, out_pause=0.0)
    assert cycles == 60 + unit.latency
    assert unit.dsp_tiles == 4 and Nf4Dequantize(lanes=3).dsp_tiles == 12


@pytest.mark.parametrize("params, match", [
    (dict(lanes=0), "lanes: 0 is out of range"),
    (dict(lanes=33), "lanes: 33 is out of range"),
    (dict(lanes=2.0), "lanes: expected an integer"),
    (dict(double_quant=1), "double_quant: expected True or False"),
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Nf4Dequantize(**params)
