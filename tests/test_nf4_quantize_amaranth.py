# amaranth: UnusedElaboratable=no
"""Nf4Quantize in Amaranth's own simulator against :func:`qdp.golden.nf4_codes`: FP32,
BF16 and FP16 in, tensors of blocks with short tails and NF4's kinds of blocks (values on
the thresholds, all-NaN, all-zero and subnormal blocks), random valid gaps and
independent backpressure on ``o`` and ``scale``; the latency and the steady state at full
rate; parameter checks."""

import numpy as np
import pytest
from _float_blocks import beats_of

from qdp.hdl import Nf4Quantize
from qdp.sim import nf4_quantize_tb as tb
from qdp.sim.absmax_tb import input_fields, make_packets
from qdp.sim.amaranth_stream import run_streams
from qdp.sim.payload import unpack


def run(unit, packets, **pauses):
    """``packets`` through ``unit``: ``(expected, got, cycles)``, ``got`` holding
    ``data``, ``first``, ``last`` and ``scale`` like :func:`tb.expected`."""
    want = tb.expected(unit, packets)
    received, cycles = run_streams(unit, {"i": beats_of(input_fields(unit, packets))},
                                   {"o": len(want["data"]), "scale": len(want["scale"])},
                                   **pauses)
    got = unpack(unit.o.payload.shape(), received["o"])
    got["scale"] = np.asarray(received["scale"], dtype=np.int64)
    return want, got, cycles


def check(unit, packets, **pauses):
    want, got, cycles = run(unit, packets, **pauses)
    bad = np.argwhere(np.asarray(got["data"]) != want["data"])
    assert not len(bad), [(hex(int(want["x"][b, l])), int(got["data"][b, l]),
                           int(want["data"][b, l]), hex(int(want["scale"][want["block"][b]])))
                          for b, l in bad[:5]]
    for name in ("first", "last", "scale"):
        assert (np.asarray(got[name]) == want[name]).all(), name
    return cycles


def _packets(unit, blocks, seed, kinds=tb.NF4_KINDS):
    return make_packets(unit, blocks, np.random.default_rng(seed), kinds=kinds,
                        make=lambda kind, size, rng: tb.make_nf4_block(
                            kind, size, unit.in_format, rng))


CASES = [dict(in_format=f, lanes=l, block_size=b) for f, l, b in [
    ("fp32", 2, 32), ("bf16", 4, 64), ("fp16", 1, 32), ("fp32", 32, 64)]]


def _id(params):
    return "-".join(str(v) for v in params.values())


@pytest.mark.parametrize("params", CASES, ids=_id)
def test_bit_exact_with_gaps_and_backpressure(params):
    unit = Nf4Quantize(**params)
    check(unit, _packets(unit, 16, len(_id(params))), seed=5, in_pause=0.3, out_pause=0.3)


def test_thresholds_nans_and_zeros():
    """Values on and next to every threshold, and the blocks whose elements are NaN in
    the kernel (all zero: ``0 * Inf``; all NaN: the constant ``-FLT_MAX``)."""
    unit = Nf4Quantize(32, lanes=4)
    want, _, _ = run(unit, _packets(unit, 2, 1, kinds=("nans",)), in_pause=0, out_pause=0)
    assert (want["scale"] == 0xFF7FFFFF).all() and (want["data"] == 0).all()
    check(unit, _packets(unit, 40, 9, kinds=("thresholds", "zeros", "nans")), seed=3)


def test_latency_and_steady_state():
    unit = Nf4Quantize(64, lanes=8)
    packets = [np.concatenate(_packets(unit, 6, 3, kinds=("random",)))[:6 * 64]]
    _, _, cycles = run(unit, packets, in_pause=0.0, out_pause=0.0)
    assert unit.scale_latency == unit.latency
    # The first block streams in, its first beat leaves `latency` cycles after its last,
    # then every beat follows back to back: one block of storage sustains the rate.
    assert cycles == unit.beats_per_block + unit.latency + 6 * 8 - 1
    assert Nf4Quantize(read_register=True).latency == unit.latency + 1


def test_attributes():
    unit = Nf4Quantize(128, lanes=4, in_format="bf16")
    assert unit.beats_per_block == 32 and unit.storage_bits == 128 * 16
    assert len(unit.o.p.data[0]) == 4 and len(unit.scale.p) == 32
    assert unit.dsp_tiles == 4 * 2 and unit.throughput == 1
    assert unit.ready_dependencies == {"i": ()}


@pytest.mark.parametrize("params, match", [
    (dict(block_size=16), "block_size: 16 is not allowed .*power of two from 32 to 4096"),
    (dict(block_size=8192), "block_size: 8192 is not allowed"),
    (dict(block_size=96), "block_size: 96 is not allowed"),
    (dict(block_size=32, lanes=64), "lanes: 64 is out of range"),
    (dict(lanes=0), "lanes"),
    (dict(in_format="e4m3"), "in_format: unknown value 'e4m3'; expected one of fp32"),
    (dict(read_register=1), "read_register"),
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Nf4Quantize(**params)
