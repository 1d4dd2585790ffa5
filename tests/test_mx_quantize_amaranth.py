# amaranth: UnusedElaboratable=no
"""MxQuantize in Amaranth's own simulator against :func:`qdp.golden.mx_quantize`: every
element format, FP32/BF16/FP16 and custom formats in, every rounding mode, tensors of
blocks with short tails, random valid gaps and independent backpressure on ``o`` and
``scale``; every pair of a small format; the latency and the steady state at full rate;
parameter checks."""

import numpy as np
import pytest
from _float_blocks import beats_of

from qdp.golden.rounding import DETERMINISTIC_MODES
from qdp.hdl import MxQuantize
from qdp.sim import mx_quantize_tb as tb
from qdp.sim.absmax_tb import input_fields, make_packets
from qdp.sim.amaranth_stream import run_streams
from qdp.sim.payload import unpack


def run(unit, packets, **pauses):
    """``packets`` through ``unit``: ``(expected, got, cycles)``, ``got`` holding
    ``data``, ``first``, ``last`` and ``scale`` like :func:`tb.expected`."""
    want = tb.expected(unit, packets)
    fields = input_fields(unit, packets)
    received, cycles = run_streams(unit, {"i": beats_of(fields)},
                                   {"o": len(want["data"]), "scale": len(want["scale"])},
                                   **pauses)
    got = unpack(unit.o.payload.shape(), received["o"])
    got["scale"] = np.asarray(received["scale"], dtype=np.int64)
    return want, got, cycles


def check(unit, packets, **pauses):
    want, got, cycles = run(unit, packets, **pauses)
    bad = np.argwhere(np.asarray(got["data"]) != want["data"])
    assert not len(bad), [(hex(int(want["x"][b, l])), int(got["data"][b, l]),
                           int(want["data"][b, l]), int(want["scale"][want["block"][b]]))
                          for b, l in bad[:5]]
    for name in ("first", "last", "scale"):
        assert (np.asarray(got[name]) == want[name]).all(), name
    return cycles


def _packets(unit, blocks, seed, kinds=tb.MX_KINDS):
    return make_packets(unit, blocks, np.random.default_rng(seed), kinds=kinds,
                        make=lambda kind, size, rng: tb.make_mx_block(
                            kind, size, unit.in_format, unit.element, rng))


CASES = [dict(element=e, in_format=f, lanes=l, block_size=b) for e, f, l, b in [
    ("int8", "fp32", 2, 32), ("fp8_e4m3", "fp32", 4, 32), ("fp8_e5m2", "bf16", 1, 8),
    ("fp6_e3m2", "fp16", 2, 16), ("fp6_e2m3", "fp32", 1, 4), ("fp4_e2m1", "bf16", 8, 32),
    ("fp8_e4m3", "fp16", 1, 1), ("int8", "fp16", 4, 8), ("fp4_e2m1", "e5m2", 2, 4)]]


def _id(params):
    return "-".join(str(v) for v in params.values())


@pytest.mark.parametrize("params", CASES, ids=_id)
def test_bit_exact_with_gaps_and_backpressure(params):
    unit = MxQuantize(**params)
    check(unit, _packets(unit, 24, len(_id(params))), seed=5, in_pause=0.3, out_pause=0.3)


@pytest.mark.parametrize("rounding", DETERMINISTIC_MODES)
def test_every_rounding_mode_on_ties(rounding):
    unit = MxQuantize(8, element="fp6_e2m3", lanes=2, rounding=rounding)
    check(unit, _packets(unit, 30, 7, kinds=("ties", "saturating", "random")), seed=2)


@pytest.mark.parametrize("in_format, element", [("e4m3", "fp4_e2m1"), ("e5m2", "int8")])
def test_every_pair_of_a_small_format(in_format, element):
    """Blocks of two: every (x, y) pair of 8-bit patterns' magnitudes order, both signs
    through x: each x against every block maximum it can share a block with."""
    unit = MxQuantize(2, element=element, in_format=in_format, lanes=2)
    x = np.arange(256, dtype=np.uint64)
    pairs = np.stack(np.meshgrid(x, x[x < 128]), axis=-1).reshape(-1, 2)
    check(unit, [pairs.reshape(-1)], in_pause=0.0, out_pause=0.1)


def test_latency_and_steady_state():
    unit = MxQuantize(32, element="fp8_e4m3", lanes=4)
    packets = _packets(unit, 6, 3, kinds=("random",))
    packets = [np.concatenate(packets)[:6 * 32]]
    _, _, cycles = run(unit, packets, in_pause=0.0, out_pause=0.0)
    assert unit.latency == 16 and unit.scale_latency == unit.latency
    # The first block streams in, its first beat leaves `latency` cycles after its last,
    # then every beat follows back to back: one block of storage sustains the rate.
    assert cycles == unit.beats_per_block + unit.latency + 6 * 8 - 1
    assert MxQuantize(read_register=True).latency == 17


def test_attributes():
    unit = MxQuantize(64, lanes=8, element="fp6_e3m2", in_format="bf16")
    assert unit.beats_per_block == 8 and unit.storage_bits == 64 * 16
    assert len(unit.o.p.data[0]) == 6 and len(unit.scale.p) == 8
    assert unit.dsp_tiles == 0 and unit.throughput == 1 and unit.ready_dependencies == {"i": ()}


@pytest.mark.parametrize("params, match", [
    (dict(element="fp5"), "element: unknown MX element 'fp5'"),
    (dict(in_format="int8"), "in_format"),
    (dict(lanes=0), "lanes"),
    (dict(lanes=33, block_size=66), "lanes"),
    (dict(block_size=30, lanes=4), "block_size: 30 is out of range .*multiple of lanes=4"),
    (dict(block_size=0), "block_size"),
    (dict(rounding="stochastic"), "rounding"),
    (dict(read_register=1), "read_register"),
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MxQuantize(**params)
