# amaranth: UnusedElaboratable=no
"""GroupDequantize in Amaranth's own simulator against :func:`qdp.golden.group_dequantize`:
groups of 1..8 beats, random valid gaps on both inputs and backpressure, scale edges
(±0, subnormals, FLT_MAX, Inf, NaN) against every code and zero point of 3 bits; the
round trip from group_quantize's packed GPTQ and AWQ words; the latency at full rate;
the exhaustive stimulus's coverage; parameter checks."""

import numpy as np
import pytest
from _float_blocks import run_scaled

from qdp.golden import group_dequantize, group_pack, group_quantize, group_unpack
from qdp.hdl import GroupDequantize
from qdp.sim import group_dequantize_tb as tb


def check(unit, fields, per_beat, **pauses):
    want = tb.expected(unit, fields, per_beat)
    got, flags, cycles = run_scaled(unit, fields, **pauses)
    bad = np.argwhere(got != want)
    assert not len(bad), [(fields["i"]["data"][b, l], hex(per_beat["scale"][b]),
                           per_beat["zero"][b], hex(got[b, l]), hex(want[b, l]))
                          for b, l in bad[:5]]
    assert got.shape == want.shape == fields["i"]["data"].shape
    assert (flags == np.stack([fields["i"]["first"], fields["i"]["last"]], axis=1)).all()
    return cycles


@pytest.mark.parametrize("lanes, bits, symmetric", [
    (1, 4, False), (3, 4, False), (2, 8, False), (2, 2, False),
    (1, 4, True), (4, 8, True), (2, 3, True)])
def test_bit_exact(lanes, bits, symmetric):
    unit = GroupDequantize(lanes=lanes, bits=bits, symmetric=symmetric)
    fields, per_beat = tb.stimulus(unit, 400, np.random.default_rng(lanes * 10 + bits))
    check(unit, fields, per_beat, seed=3)


@pytest.mark.parametrize("symmetric", [False, True])
def test_every_code_and_zero_against_the_edge_scales(symmetric):
    """Every (code, zero) pair of 3 bits (every signed code) against every edge scale with
    either sign: signed zeros, Inf * 0, NaN scales, subnormals, overflow."""
    unit = GroupDequantize(lanes=4, bits=3, symmetric=symmetric)
    lo, hi = tb.code_range(unit)
    scales = np.concatenate([tb.EDGE_SCALES, tb.EDGE_SCALES | (1 << 31)])
    zeros = [0] if symmetric else list(range(8))
    pairs = [(s, z) for s in scales for z in zeros]
    codes = np.tile(np.arange(lo, hi + 1).reshape(2, 4), (len(pairs), 1))
    fields, per_beat = tb._fields(unit, codes, np.full(len(pairs), 2),
                                  np.array([s for s, _ in pairs], dtype=np.int64),
                                  np.array([z for _, z in pairs], dtype=np.int64))
    check(unit, fields, per_beat, seed=1)


@pytest.mark.parametrize("symmetric", [False, True])
def test_round_trip_of_packed_groups(symmetric):
    """``group_quantize``'s codes, packed into GPTQ (asymmetric) or AWQ (symmetric) words
    and unpacked again, dequantize to ``group_dequantize``'s values."""
    x = np.random.default_rng(5).standard_normal(6 * 32).astype(np.float32)
    codes, scales, zeros = group_quantize(x, group_size=32, symmetric=symmetric)
    order = "awq" if symmetric else "gptq"
    unpacked = group_unpack(group_pack(codes, order), order)
    if symmetric:
        unpacked = ((unpacked + 8) & 15) - 8            # the low four bits, sign extended
    unit = GroupDequantize(lanes=4, symmetric=symmetric)
    fields, _ = tb._fields(unit, unpacked.reshape(-1, 4), np.full(6, 8),
                           scales.view(np.uint32).astype(np.int64), zeros)
    got, _, _ = run_scaled(unit, fields, seed=2)
    want = group_dequantize(codes, scales, zeros, group_size=32)
    assert (got.reshape(-1) == want.view(np.uint32)).all()


def test_latency_at_full_rate():
    unit = GroupDequantize()
    fields, per_beat = tb.stimulus(unit, 60, np.random.default_rng(2))
    cycles = check(unit, fields, per_beat, in_pause=0.0, out_pause=0.0)
    assert cycles == 60 + unit.latency and unit.latency == 15
    assert unit.dsp_tiles == 2 and GroupDequantize(lanes=3, bits=8).dsp_tiles == 6


@pytest.mark.parametrize("lanes, bits, symmetric", [(3, 2, False), (4, 3, True)])
def test_exhaustive_stimulus_holds_every_triple_in_every_lane(lanes, bits, symmetric):
    """The exhaustive bench's stimulus: every (code, zero, scale top half) once per group
    at least, every (lane, code, zero) somewhere, and as many elements as it claims."""
    unit = GroupDequantize(lanes=lanes, bits=bits, symmetric=symmetric)
    fields, per_beat = tb.exhaustive_stimulus(unit, np.random.default_rng(0))
    codes = fields["i"]["data"]
    assert codes.size == tb.exhaustive_elements(unit)
    lo, hi = tb.code_range(unit)
    n, zeros = hi - lo + 1, 1 if symmetric else hi - lo + 1
    top = np.repeat(per_beat["scale"] >> 16, lanes)
    zero = np.repeat(per_beat["zero"], lanes) - (0 if symmetric else lo)
    triples = np.unique((top * zeros + zero) * n + (codes.reshape(-1) - lo))
    assert len(triples) == (1 << 16) * zeros * n
    lane = np.tile(np.arange(lanes), len(codes))
    seen = np.unique((lane * zeros + zero) * n + (codes.reshape(-1) - lo))
    assert len(seen) == lanes * zeros * n
    assert len(np.unique(per_beat["scale"] >> 16)) == 1 << 16


def test_exhaustive_refuses_wide_asymmetric_codes():
    with pytest.raises(ValueError, match="exhaustive: bits=5 has 32 x 32"):
        tb.exhaustive_elements(GroupDequantize(bits=5))
    assert tb.exhaustive_elements(GroupDequantize(bits=8, symmetric=True)) == 256 << 16


@pytest.mark.parametrize("params, match", [
    (dict(lanes=0), "lanes: 0 is out of range"),
    (dict(lanes=33), "lanes: 33 is out of range"),
    (dict(bits=1), "bits: 1 is out of range"),
    (dict(bits=9), r"bits: 9 is out of range \(allowed 2..8\)"),
    (dict(bits=4.0), "bits: expected an integer"),
    (dict(symmetric=1), "symmetric: expected True or False"),
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GroupDequantize(**params)
