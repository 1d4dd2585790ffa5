# amaranth: UnusedElaboratable=no
"""The adder stages (:mod:`qdp.hdl.float_add`) with the shared rounding stages, unregistered,
against :func:`qdp.golden.floats.add`: every pair of e3m2 patterns (specials, subnormals,
exact cancellation included) and random pairs of e4m3 and FP32 patterns biased to
near-cancellation."""

import numpy as np
import pytest
from amaranth.hdl import C, Module, Mux, Signal
from amaranth.sim import Simulator

from qdp.golden import floats
from qdp.hdl.float_add import AddStages
from qdp.hdl.floats import Rounded, RoundingStages, encode_rounded, exponent_shape
from qdp.hdl.pipeline import Pipeline


def _adder(fmt):
    m = Module()
    x, y, out = Signal(fmt.width), Signal(fmt.width), Signal(fmt.width)
    shape = exponent_shape(fmt, extra=3)
    v, pipe = {"x": x, "y": y}, Pipeline(m, C(1, 1), C(1, 1))
    for stage in AddStages(fmt, shape).stages() + RoundingStages(
            precision=fmt.precision, fmt=fmt, exp_shape=shape).stages():
        (v,) = pipe.wire([stage(v)])        # one net per value, as between registers
    bits = encode_rounded(Rounded(v["sign"], v["significand"], v["exponent"], v["inf"]), fmt)
    m.d.comb += out.eq(Mux(v["nan"], fmt.nan_bits, bits))
    return m, x, y, out


def _run(fmt, xs, ys):
    m, x, y, out = _adder(fmt)
    got = []

    async def bench(ctx):
        for a, b in zip(xs, ys):
            ctx.set(x, int(a))
            ctx.set(y, int(b))
            await ctx.delay(1e-9)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.int64)


def _check(fmt, xs, ys):
    want = floats.add(np.asarray(xs, dtype=np.int64), np.asarray(ys, dtype=np.int64), fmt)
    got = _run(fmt, xs, ys)
    bad = np.flatnonzero(got != want)
    assert not len(bad), [(hex(xs[b]), hex(ys[b]), hex(got[b]), hex(want[b]))
                          for b in bad[:5]]


def test_every_pair_of_e3m2():
    fmt = floats.float_format("e3m2")
    pairs = np.arange(1 << (2 * fmt.width))
    _check(fmt, pairs >> fmt.width, pairs & ((1 << fmt.width) - 1))


@pytest.mark.parametrize("name, count", [("e4m3", 6000), ("fp32", 6000)])
def test_random_pairs_near_cancellation(name, count):
    fmt = floats.float_format(name)
    rng = np.random.default_rng(len(name))
    xs = rng.integers(0, 1 << fmt.width, count)
    ys = rng.integers(0, 1 << fmt.width, count)
    near = rng.random(count) < 0.5          # y within a few steps of -x
    flipped = xs ^ (1 << (fmt.width - 1))
    ys[near] = np.clip(flipped[near] + rng.integers(-4, 5, int(near.sum())), 0,
                       (1 << fmt.width) - 1)
    _check(fmt, xs, ys)
