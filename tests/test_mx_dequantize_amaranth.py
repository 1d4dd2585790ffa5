# amaranth: UnusedElaboratable=no
"""MxDequantize in Amaranth's own simulator against :func:`qdp.golden.mx_dequantize`:
every element format, FP32/BF16/FP16 and a custom format out, blocks of 1..8 beats,
random valid gaps on both inputs and backpressure; every (code, scale) pair of FP4; the
latency at full rate; parameter checks."""

import numpy as np
import pytest
from _float_blocks import beats_of
from conftest import params_id
from amaranth.lib import wiring

from qdp.golden.mx import MX_ELEMENTS
from qdp.hdl import MxDequantize
from qdp.sim import mx_dequantize_tb as tb
from qdp.sim.amaranth_stream import run_streams
from qdp.sim.payload import unpack

CASES = [dict(element=e, out_format=f, lanes=l) for e, f, l in [
    ("int8", "fp32", 2), ("fp8_e4m3", "bf16", 1), ("fp8_e5m2", "fp16", 3),
    ("fp6_e3m2", "fp32", 1), ("fp6_e2m3", "bf16", 2), ("fp4_e2m1", "e5m2", 1),
    ("fp8_e5m2", "bf16", 1), ("int8", "fp16", 1)]]


def run(unit, fields, **pauses):
    """``fields`` through ``unit``: ``(data patterns, (first, last) flags, cycles)``."""
    inputs = {"i": beats_of(fields["i"]),
              "scale": [int(v) for v in fields["scale"]["value"]]}
    beats = len(fields["i"]["data"])
    received, cycles = run_streams(unit, inputs, {"o": beats}, **pauses)
    got = unpack(unit.o.payload.shape(), received["o"])
    return (np.asarray(got["data"]), np.stack([got["first"], got["last"]], axis=1), cycles)


@pytest.mark.parametrize("params", CASES, ids=params_id)
def test_bit_exact(params):
    unit = MxDequantize(**params)
    fields, per_beat = tb.stimulus(unit, 300, np.random.default_rng(len(params_id(params))))
    want = tb.expected(unit, fields, per_beat)
    got, flags, _ = run(unit, fields, seed=3)
    bad = np.argwhere(got != want)
    assert not len(bad), [(fields["i"]["data"][b, l], per_beat[b], got[b, l], want[b, l])
                          for b, l in bad[:5]]
    assert (flags == np.stack([fields["i"]["first"], fields["i"]["last"]], axis=1)).all()


def test_every_pair_of_fp4():
    unit = MxDequantize(element="fp4_e2m1", out_format="bf16", lanes=2)
    fields, per_beat = tb.exhaustive_stimulus(unit, np.random.default_rng(0))
    got, _, _ = run(unit, fields, seed=1, in_pause=0.1, out_pause=0.1)
    assert (got == tb.expected(unit, fields, per_beat)).all()
    assert got.size == tb.exhaustive_elements(unit)


def test_latency_at_full_rate():
    unit = MxDequantize(element="fp8_e4m3")
    fields, _ = tb.stimulus(unit, 60, np.random.default_rng(2))
    _, _, cycles = run(unit, fields, in_pause=0.0, out_pause=0.0)
    assert unit.latency == 11 and cycles == 60 + unit.latency


def test_signature():
    unit = MxDequantize(element="fp6_e2m3", lanes=4, out_format="bf16")
    assert isinstance(unit.signature.members["scale"], wiring.Member)
    assert unit.i.p.data.shape().length == 4 and len(unit.o.p.data[0]) == 16
    assert sorted(MX_ELEMENTS) == sorted(["int8", "fp8_e4m3", "fp8_e5m2", "fp6_e3m2",
                                          "fp6_e2m3", "fp4_e2m1"])


@pytest.mark.parametrize("params, match", [
    (dict(element="fp5"), "element: unknown MX element 'fp5'"),
    (dict(out_format="int8"), "out_format"),
    (dict(lanes=0), "lanes"),
    (dict(lanes=33), "lanes"),
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MxDequantize(**params)
