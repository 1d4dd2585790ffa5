# amaranth: UnusedElaboratable=no
"""AbsmaxDequantize in Amaranth's own simulator against
:func:`qdp.golden.dequantize_blockwise`: both models, every output format, special
scales, blocks of 1..8 beats, random valid gaps on both inputs and backpressure; the
latency at full rate; chained behind the absmax unit; parameter checks."""

import numpy as np
import pytest
from _float_blocks import beats_of
from conftest import params_id
from amaranth.hdl import Module
from amaranth.lib import wiring

from qdp.golden import block_constant, blockwise_absmax, dequantize_blockwise
from qdp.hdl import AbsmaxDequantize, BlockwiseAbsmax
from qdp.sim import absmax_dequantize_tb as tb
from qdp.sim.absmax_tb import input_fields, make_packets
from qdp.sim.amaranth_stream import run_streams
from qdp.sim.payload import unpack

CASES = [
    dict(in_format="fp32"),
    dict(in_format="bf16", lanes=2, out_format="fp16"),
    dict(in_format="fp16", out_width=4, out_format="bf16", lanes=3),
    dict(in_format="e3m3", out_width=5, out_format="e4m3"),
    dict(in_format="fp32", model="float32"),
    dict(in_format="bf16", model="float32", out_format="bf16", lanes=2),
    dict(in_format="fp16", model="float32", out_format="fp16", out_width=6),
    dict(in_format="e3m3", model="float32", out_format="e5m2", out_width=4),
]


def run(unit, fields, **pauses):
    """``fields`` through ``unit``: ``(data patterns, (first, last) flags, cycles)``."""
    inputs = {"i": beats_of(fields["i"])}
    scale = fields["scale"]
    inputs["scale"] = [int(v) for v in scale["value"]] if "value" in scale \
        else beats_of(scale)
    beats = len(fields["i"]["data"])
    received, cycles = run_streams(unit, inputs, {"o": beats}, **pauses)
    got = unpack(unit.o.payload.shape(), received["o"])
    flags = np.stack([got["first"], got["last"]], axis=1)
    return np.asarray(got["data"]), flags, cycles


@pytest.mark.parametrize("params", CASES, ids=params_id)
def test_bit_exact(params):
    unit = AbsmaxDequantize(**params)
    rng = np.random.default_rng(len(params_id(params)))
    fields, per_beat = tb.stimulus(unit, 400, rng)
    want = tb.expected(unit, fields, per_beat)
    got, flags, _ = run(unit, fields, seed=3)
    bad = np.argwhere(got != want)
    assert not len(bad), [(fields["i"]["data"][b, l], per_beat[b], got[b, l], want[b, l])
                          for b, l in bad[:5]]
    assert (flags == np.stack([fields["i"]["first"], fields["i"]["last"]], axis=1)).all()


@pytest.mark.parametrize("model", ["exact", "float32"])
def test_exhaustive_small_format(model):
    """Every q of 4 bits with every e3m3 absmax (exact: all pairs) or every special c."""
    unit = AbsmaxDequantize(in_format="e3m3", out_width=4, out_format="e3m3", model=model,
                            lanes=2)
    fields, per_beat = tb.exhaustive_stimulus(unit, np.random.default_rng(0))
    got, _, _ = run(unit, fields, seed=1, in_pause=0.1, out_pause=0.1)
    assert (got == tb.expected(unit, fields, per_beat)).all()
    assert got.size == tb.exhaustive_elements(unit)


@pytest.mark.parametrize("model", ["exact", "float32"])
def test_latency_at_full_rate(model):
    unit = AbsmaxDequantize(in_format="bf16", model=model)
    fields, _ = tb.stimulus(unit, 60, np.random.default_rng(2))
    _, _, cycles = run(unit, fields, in_pause=0.0, out_pause=0.0)
    assert cycles == 60 + unit.latency


class Chain(wiring.Component):
    """The absmax unit with the dequantizer behind it: ``o`` and ``scale`` connected
    straight to its ``i`` and ``scale``."""

    def __init__(self, absmax, unit):
        self.absmax, self.unit = absmax, unit
        super().__init__({"i": absmax.signature.members["i"],
                          "o": unit.signature.members["o"]})

    def elaborate(self, platform):
        m = Module()
        m.submodules.absmax, m.submodules.dequantize = self.absmax, self.unit
        wiring.connect(m, wiring.flipped(self.i), self.absmax.i)
        wiring.connect(m, self.absmax.o, self.unit.i)
        wiring.connect(m, self.absmax.scale, self.unit.scale)
        wiring.connect(m, self.unit.o, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize("model", ["exact", "float32"])
def test_chained_behind_absmax_is_eq2_of_eq1(model):
    """The golden Eq. 2 of the golden Eq. 1, block by block, with gaps and backpressure."""
    absmax = BlockwiseAbsmax(8, lanes=2, in_format="fp16", model=model)
    unit = AbsmaxDequantize(lanes=2, in_format="fp16", out_format="fp32", model=model)
    packets = make_packets(absmax, 40, np.random.default_rng(7), short_tails=False)
    x = np.concatenate(packets).astype(np.uint64)
    q, a = blockwise_absmax(x, 8, in_format="fp16", model=model)
    scale = a if model == "exact" else block_constant(a, in_format="fp16")
    want = dequantize_blockwise(q, scale, block_size=8, in_format="fp16", model=model)
    fields = input_fields(absmax, packets)
    chain = Chain(absmax, unit)
    beats = [{"data": [int(v) for v in row], "last": int(l)}
             for row, l in zip(fields["data"], fields["last"])]
    received, _ = run_streams(chain, {"i": beats}, {"o": len(beats)}, seed=5)
    got = np.asarray(unpack(unit.o.payload.shape(), received["o"])["data"]).reshape(-1)
    assert (got == want.astype(np.int64)).all()


@pytest.mark.parametrize("params, match", [
    (dict(in_format="fp64"), "in_format"),
    (dict(out_format="int8"), "out_format"),
    (dict(model="float64"), "model"),
    (dict(out_width=1), "out_width"),
    (dict(out_width=9), "out_width"),
    (dict(lanes=0), "lanes"),
    (dict(lanes=17), "lanes"),
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        AbsmaxDequantize(**params)
