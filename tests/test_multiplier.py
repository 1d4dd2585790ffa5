# amaranth: UnusedElaboratable=no
"""The tiled multiplier against plain integer multiplication: exhaustively at small widths
with narrow limbs (so the adder tree has many tiles and levels), with hypothesis at full
width, with random clock-enable gaps throughout."""

import itertools
import random

import pytest
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st
from qdp.hdl.multiplier import TiledMultiplier, adder_levels, limbs


def _run(mul, pairs, seed, expect=lambda a, b: a * b):
    """Feed ``pairs`` with random ``en`` gaps; return every mismatch with ``expect``."""
    rng = random.Random(seed)
    bad = []

    async def bench(ctx):
        fed, k = [], 0
        while k < len(pairs) or len(fed) < len(pairs) + mul.latency:
            en = rng.random() < 0.7
            a, b = pairs[k] if k < len(pairs) else (0, 0)
            ctx.set(mul.a, a)
            ctx.set(mul.b, b)
            ctx.set(mul.en, en)
            await ctx.tick()
            if en:
                fed.append((a, b))
                k += 1
            n = len(fed) - mul.latency
            if 0 <= n < len(pairs):
                a_n, b_n = fed[n]
                got = ctx.get(mul.p)
                if got != expect(a_n, b_n):
                    bad.append(f"{a_n} * {b_n}: got {got}")

    sim = Simulator(mul)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return bad


def _values(shape):
    lo, hi = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed \
        else (0, (1 << shape.width) - 1)
    return range(lo, hi + 1)


@pytest.mark.parametrize("a_signed,b_signed", list(itertools.product((True, False), repeat=2)))
@pytest.mark.parametrize("registered_levels", [0, 2])
def test_exhaustive_small(a_signed, b_signed, registered_levels):
    a_shape = signed(7) if a_signed else unsigned(7)
    b_shape = signed(5) if b_signed else unsigned(5)
    mul = TiledMultiplier(a_shape, b_shape, low_limb_bits=2,
                          registered_levels=registered_levels)
    assert mul.levels == 3 and len(limbs(a_shape, 2)) == 3 and len(limbs(b_shape, 2)) == 2
    pairs = list(itertools.product(_values(a_shape), _values(b_shape)))
    bad = _run(mul, pairs, seed=len(pairs) + registered_levels)
    assert not bad, bad[:10]


WIDE = [(signed(32), unsigned(32)), (signed(64), unsigned(32)), (unsigned(35), signed(18)),
        (signed(31), unsigned(31))]


@pytest.mark.parametrize("a_shape,b_shape", WIDE, ids=str)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_full_width(a_shape, b_shape, data):
    a_vals, b_vals = _values(a_shape), _values(b_shape)
    corner = st.sampled_from([a_vals[0], a_vals[-1], 0, 1, -1 if a_shape.signed else 2])
    a = st.one_of(st.integers(a_vals[0], a_vals[-1]), corner)
    b = st.one_of(st.integers(b_vals[0], b_vals[-1]),
                  st.sampled_from([b_vals[0], b_vals[-1], 0, 1]))
    pairs = data.draw(st.lists(st.tuples(a, b), min_size=1, max_size=40))
    levels = data.draw(st.integers(0, adder_levels(a_shape, b_shape)))
    mul = TiledMultiplier(a_shape, b_shape, registered_levels=levels)
    assert mul.latency == 3 + levels
    bad = _run(mul, pairs, seed=len(pairs))
    assert not bad, bad[:10]


def test_wrong_product_is_caught():
    """A product off by one in a single case, or one cycle late, fails the check."""
    pairs = [(3, 5), (-7, 200), (-128, 255), (0, 0)]
    mul = TiledMultiplier(signed(8), unsigned(8), low_limb_bits=3)
    assert len(_run(mul, pairs, seed=1, expect=lambda a, b: a * b + (a == -7))) == 1
    mul = TiledMultiplier(signed(8), unsigned(8), low_limb_bits=3)
    mul.latency += 1
    assert _run(mul, pairs, seed=1)


@pytest.mark.parametrize("kwargs,message", [
    ({"registered_levels": 3}, r"registered_levels: 3 is out of range \(allowed 0\.\.2\)"),
    ({"low_limb_bits": 1}, r"low_limb_bits: 1 is out of range"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TiledMultiplier(signed(32), unsigned(32), **kwargs)
