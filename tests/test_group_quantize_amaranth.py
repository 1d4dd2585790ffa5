# amaranth: UnusedElaboratable=no
"""GroupQuantize in Amaranth's own simulator against :func:`qdp.golden.group_quantize`:
every pair of finite e3m2 patterns as a group of two (asymmetric and symmetric), FP32,
BF16 and FP16 tensors of groups with short tails and the bench's kinds of groups (all
zeros, subnormals, one outlier, all positive or negative, values on the .5 ties of
``x / scale``), tiny FP32 groups with a subnormal scale, random valid gaps and
independent backpressure on ``o`` and ``scale``; NaN/Inf input keeps the streams'
rules; the latency and the steady state at full rate; parameter checks."""

import numpy as np
import pytest
from _float_blocks import beats_of

from qdp.golden import floats
from qdp.hdl.group_quantize import GroupQuantize
from qdp.sim import group_quantize_tb as tb
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
    scale = np.asarray(received["scale"], dtype=np.int64)
    got["scale"] = scale if unit.symmetric else \
        np.stack([scale & 0xFFFFFFFF, scale >> 32], axis=1)
    return want, got, cycles


def check(unit, packets, **pauses):
    want, got, cycles = run(unit, packets, **pauses)
    data = np.asarray(got["data"]).reshape(want["data"].shape)
    bad = np.argwhere(data != want["data"])
    assert not len(bad), [(hex(int(want["x"][b, l])), int(data[b, l]),
                           int(want["data"][b, l]), want["scale"][want["block"][b]])
                          for b, l in bad[:5]]
    for name in ("first", "last", "scale"):
        assert (np.asarray(got[name]) == want[name]).all(), name
    return cycles


def _packets(unit, groups, seed, kinds=tb.GROUP_KINDS):
    return make_packets(unit, groups, np.random.default_rng(seed), kinds=kinds,
                        make=lambda kind, size, rng: tb.make_group_block(
                            kind, size, unit.in_format, rng, bits=unit.bits,
                            symmetric=unit.symmetric))


def _finite_patterns(fmt):
    bits = np.arange(1 << fmt.width, dtype=np.int64)
    return bits[floats.classify(bits, fmt)[0] < floats.INF]


@pytest.mark.parametrize("symmetric, bits", [(False, 4), (True, 3), (False, 2)])
def test_every_e3m2_pair(symmetric, bits):
    """Every group of two finite e3m2 patterns (zeros, subnormals, ±0, all signs): every
    range, every element against it, so every rounding case the format reaches."""
    unit = GroupQuantize.unchecked(2, lanes=2, bits=bits, symmetric=symmetric,
                                   in_format="e3m2")
    finite = _finite_patterns(floats.float_format("e3m2"))
    pairs = np.stack(np.meshgrid(finite, finite), axis=-1).reshape(-1).astype(np.uint64)
    check(unit, [pairs], in_pause=0.0, out_pause=0.0)


def test_e2m3_groups_of_three():
    """3000 random groups of three finite e2m3 patterns, one lane: three rows of storage
    per group, ranges set by any element."""
    fmt = floats.float_format("e2m3")
    finite = _finite_patterns(fmt)
    rng = np.random.default_rng(4)
    groups = rng.choice(finite, size=(3000, 3))
    unit = GroupQuantize.unchecked(3, lanes=1, bits=4, in_format="e2m3")
    check(unit, [groups.reshape(-1).astype(np.uint64)], in_pause=0.2, out_pause=0.2)


CASES = [dict(in_format=f, lanes=l, group_size=g, bits=b, symmetric=s)
         for f, l, g, b, s in [("fp32", 2, 32, 4, False), ("bf16", 4, 64, 4, True),
                               ("fp16", 1, 16, 8, False), ("fp32", 8, 32, 3, True),
                               ("fp16", 4, 32, 2, False)]]


def _id(params):
    return "-".join(str(v) for v in params.values())


@pytest.mark.parametrize("params", CASES, ids=_id)
def test_bit_exact_with_gaps_and_backpressure(params):
    unit = GroupQuantize(**params)
    check(unit, _packets(unit, 12, len(_id(params))), seed=5, in_pause=0.3, out_pause=0.3)


@pytest.mark.parametrize("symmetric", [False, True])
def test_ties_zeros_and_outliers(symmetric):
    """Elements on and next to the .5 ties of ``x / scale``, groups of zeros (the golden's
    range -1..1: ``fl32(1 / fl32(2/15))`` is 7.4999995, zero point 7) and one outlier
    among small values."""
    unit = GroupQuantize(16, lanes=4, symmetric=symmetric)
    want, _, _ = run(unit, _packets(unit, 2, 1, kinds=("zeros",)), in_pause=0, out_pause=0)
    if not symmetric:
        assert (want["scale"][:, 0] == np.float32(2 / 15).view(np.uint32)).all()
        assert (want["scale"][:, 1] == 7).all() and (want["data"] == 7).all()
    check(unit, _packets(unit, 40, 9, kinds=("ties", "zeros", "outlier")), seed=3)


def test_subnormal_scales():
    """FP32 groups of a few thousand subnormal steps at most: the scale is subnormal,
    rounded far from ``span / maxq`` (zero points above maxq among them); codes, scales
    and zero points still equal the golden's. Spans below 128 steps (a zero scale, where
    the golden's ``rint`` of Inf is NumPy's) are left out."""
    rng = np.random.default_rng(8)
    unit = GroupQuantize(4, lanes=4, bits=8)
    groups = []
    while len(groups) < 300:
        g = rng.integers(-3000, 3000, size=4) >> rng.integers(0, 4)
        if max(g.max(), 0) - min(g.min(), 0) < 128:
            continue
        groups.append(np.where(g < 0, (1 << 31) | -g, g))
    packets = [np.concatenate(groups).astype(np.uint64)]
    want, _, _ = run(unit, packets, in_pause=0, out_pause=0)
    assert (want["scale"][:, 0] < 0x800000).all()          # all subnormal
    assert (want["scale"][:, 1] > 255).any()               # a zero point above maxq
    check(unit, packets)


def test_specials_keep_the_streams():
    """NaN and Inf (outside the golden) still give one code per element, the group
    marks and one scale per group; the finite groups after them stay exact."""
    unit = GroupQuantize(8, lanes=2)
    fmt = floats.FP32
    bad = np.array([fmt.inf_bits, 1, fmt.nan_bits, 3, 0, 1 << 31, 5, 6], dtype=np.uint64)
    good = _packets(unit, 6, 2, kinds=("random",))
    want = tb.expected(unit, good)
    fields = input_fields(unit, [bad] + good)
    received, _ = run_streams(unit, {"i": beats_of(fields)},
                              {"o": 4 + len(want["data"]), "scale": 1 + len(want["scale"])})
    got = unpack(unit.o.payload.shape(), received["o"])
    assert list(got["first"][:4]) == [1, 0, 0, 0] and list(got["last"][:4]) == [0, 0, 0, 1]
    assert (np.asarray(got["data"])[4:] == want["data"]).all()
    scale = np.asarray(received["scale"][1:], dtype=np.int64)
    assert (scale & 0xFFFFFFFF == want["scale"][:, 0]).all()


def test_latency_and_steady_state():
    unit = GroupQuantize(64, lanes=8)
    packets = [np.concatenate(_packets(unit, 6, 3, kinds=("random",)))[:6 * 64]]
    _, _, cycles = run(unit, packets, in_pause=0.0, out_pause=0.0)
    assert unit.scale_latency == unit.latency
    # The first group streams in, its first beat leaves `latency` cycles after its last,
    # then every beat follows back to back: one group of storage sustains the rate.
    assert cycles == unit.beats_per_block + unit.latency + 6 * 8 - 1
    assert GroupQuantize(read_register=True).latency == unit.latency + 1
    assert GroupQuantize(symmetric=True).latency < unit.latency    # no span adder


def test_attributes():
    unit = GroupQuantize(128, lanes=4, bits=3, in_format="bf16")
    assert unit.group_size == 128 and unit.beats_per_block == 32
    assert unit.storage_bits == 128 * 16 and len(unit.o.p.data[0]) == 3
    assert len(unit.scale.p.scale) == 32 and len(unit.scale.p.zero) == 4
    assert len(GroupQuantize(symmetric=True).scale.p) == 32
    assert unit.throughput == 1 and unit.ready_dependencies == {"i": ()}
    assert unit.dsp_tiles == 0


@pytest.mark.parametrize("params, match", [
    (dict(group_size=0), r"group_size: 0 is out of range \(allowed 1..4096\)"),
    (dict(group_size=8192), "group_size: 8192 is out of range"),
    (dict(group_size=12, lanes=8), "group_size: 12 is out of range .*multiple of lanes=8"),
    (dict(group_size=4, lanes=8), "group_size: 4 is out of range .*multiple of lanes=8"),
    (dict(lanes=33), "lanes: 33 is out of range"),
    (dict(lanes=0), "lanes"),
    (dict(bits=1), r"bits: 1 is out of range \(allowed 2..8\)"),
    (dict(bits=9), "bits: 9 is out of range"),
    (dict(group_size=32.0), "group_size: expected an integer"),
    (dict(symmetric=1), "symmetric: expected True or False"),
    (dict(in_format="e4m3"), "in_format: unknown value 'e4m3'; expected one of fp32"),
    (dict(read_register=1), "read_register"),
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GroupQuantize(**params)
