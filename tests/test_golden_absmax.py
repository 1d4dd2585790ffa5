"""Golden blockwise absmax: exact against Fraction, compared with the seeds' float formulas."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from qdp.golden.absmax import blockwise_absmax, dequantize_blockwise, stochastic_random
from qdp.golden.lfsr import lfsr_values

from _reference import ref_round

DETERMINISTIC = ("half_even", "half_away", "half_up", "half_down", "half_zero", "floor",
                 "trunc")
NEAREST = ("half_even", "half_away", "half_up", "half_down", "half_zero")


def ref_q(x, absmax, out_width, rounding, r=None):
    if absmax == 0:
        return 0
    qmax = (1 << (out_width - 1)) - 1
    return ref_round(Fraction(qmax * x, absmax), rounding, r)


def all_pairs(in_width):
    """Every (x, absmax) with |x| <= absmax that an in_width-bit block can hold."""
    lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    return [(x, a) for a in range(0, hi + 2) for x in range(max(-a, lo), min(a, hi) + 1)]


def pair_blocks(pairs):
    """Blocks of two, [x, -absmax], so that each block's absmax is the pair's (the partner
    -absmax always fits, including the most negative value)."""
    return np.array([v for x, a in pairs for v in (x, -a)], dtype=np.int64)


# -- exact: exhaustive ---------------------------------------------------------------------

@pytest.mark.parametrize("in_width", range(2, 7))
@pytest.mark.parametrize("out_width", range(2, 9))
@pytest.mark.parametrize("rounding", DETERMINISTIC)
def test_exhaustive_pairs_match_fraction(in_width, out_width, rounding):
    pairs = all_pairs(in_width)
    q, absmax = blockwise_absmax(pair_blocks(pairs), 2, in_width=in_width,
                                 out_width=out_width, rounding=rounding)
    assert absmax.tolist() == [a for _, a in pairs]
    expected = [v for x, a in pairs
                for v in (ref_q(x, a, out_width, rounding), ref_q(-a, a, out_width, rounding))]
    assert q.tolist() == expected
    qmax = (1 << (out_width - 1)) - 1
    assert q.min() >= -qmax and q.max() <= qmax


@pytest.mark.parametrize("in_width", range(2, 7))
@pytest.mark.parametrize("out_width", (2, 4, 8))
def test_exhaustive_pairs_stochastic(in_width, out_width):
    pairs = all_pairs(in_width)
    x = pair_blocks(pairs)
    rng = np.random.default_rng(in_width * 16 + out_width)
    # Edge values of r, plus r just below and at the point where each fraction carries.
    for r in (np.full(x.size, 1), np.full(x.size, (1 << 32) - 1),
              np.full(x.size, 1 << 31), rng.integers(1, 1 << 32, size=x.size)):
        q, _ = blockwise_absmax(x, 2, in_width=in_width, out_width=out_width,
                                rounding="stochastic", random=r)
        expected = [ref_q(int(xv), abs(int(x[2 * (j // 2) + 1])), out_width, "stochastic",
                          int(r[j])) for j, xv in enumerate(x)]
        assert q.tolist() == expected


def test_stochastic_threshold_is_exact():
    # x/absmax = 1/3 at qmax = 127: v = 42 + 1/3; it carries iff r / 2**32 >= 2/3.
    threshold = -(-(2 << 32) // 3)            # ceil(2 * 2**32 / 3)
    x = np.array([1, 3, 1, 3], dtype=np.int64)
    r = np.array([threshold - 1, 1, threshold, 1])
    q, _ = blockwise_absmax(x, 2, rounding="stochastic", random=r)
    assert q.tolist() == [42, 127, 43, 127]


# -- block structure -----------------------------------------------------------------------

def test_partial_tail_is_its_own_block():
    x = [1, -2, 3, 4, -100, 7, 50]
    q, absmax = blockwise_absmax(x, 3, in_width=8)
    assert absmax.tolist() == [3, 100, 50]
    assert q.tolist()[-1] == 127
    q_head, _ = blockwise_absmax(x[:6], 3, in_width=8)
    q_tail, _ = blockwise_absmax(x[6:], 3, in_width=8)
    assert q.tolist() == q_head.tolist() + q_tail.tolist()


def test_zero_block_gives_zero_in_every_mode():
    x = np.array([0, 0, 0, 0, 5, -5, 0, 1])
    for rounding in DETERMINISTIC:
        q, absmax = blockwise_absmax(x, 4, rounding=rounding, in_width=4)
        assert absmax.tolist() == [0, 5]
        assert q[:4].tolist() == [0, 0, 0, 0]
    q, _ = blockwise_absmax(x, 4, rounding="stochastic", in_width=4,
                            random=np.full(8, (1 << 32) - 1))
    assert q[:4].tolist() == [0, 0, 0, 0]


def test_most_negative_input():
    for in_width in (2, 8, 32, 64):
        lo = -(1 << (in_width - 1))
        q, absmax = blockwise_absmax([lo, 1, lo + 1, 0], 2, in_width=in_width)
        assert absmax.tolist() == [-lo, -lo - 1]
        assert q.tolist() == [-127, ref_q(1, -lo, 8, "half_even"), -127, 0]


def test_all_equal_block_is_full_scale():
    q, absmax = blockwise_absmax(np.full(16, -9), 8, in_width=5, out_width=3)
    assert absmax.tolist() == [9, 9]
    assert q.tolist() == [-3] * 16


def test_shape_and_empty():
    x = np.arange(-6, 6).reshape(3, 4)
    q, absmax = blockwise_absmax(x, 5, in_width=8)
    assert q.shape == (3, 4) and absmax.tolist() == [6, 3, 5]
    q, absmax = blockwise_absmax([], 4)
    assert q.size == 0 and absmax.size == 0


def test_stochastic_random_follows_the_lanes():
    r = stochastic_random(12, 4, seed=99)
    assert r.tolist() == lfsr_values(99, 4, 3).reshape(-1).tolist()
    with pytest.raises(ValueError, match="n:"):
        stochastic_random(10, 4)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_arrays_match_fraction(data):
    in_width = data.draw(st.integers(2, 40), label="in_width")
    out_width = data.draw(st.integers(2, 16), label="out_width")
    rounding = data.draw(st.sampled_from(DETERMINISTIC + ("stochastic",)), label="rounding")
    block_size = data.draw(st.integers(1, 9), label="block_size")
    lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    x = data.draw(st.lists(st.integers(lo, hi), max_size=40), label="x")
    r = None
    if rounding == "stochastic":
        r = data.draw(st.lists(st.integers(1, (1 << 32) - 1), min_size=len(x),
                               max_size=len(x)), label="r")
    q, absmax = blockwise_absmax(np.array(x, dtype=object), block_size, in_width=in_width,
                                 out_width=out_width, rounding=rounding, random=r)
    for b in range(absmax.size):
        chunk = x[b * block_size:(b + 1) * block_size]
        a = max(abs(v) for v in chunk)
        assert absmax[b] == a
        for j, v in enumerate(chunk, start=b * block_size):
            assert q[j] == ref_q(v, a, out_width, rounding, None if r is None else r[j])


# -- round trip ----------------------------------------------------------------------------

@pytest.mark.parametrize("in_width", range(2, 7))
@pytest.mark.parametrize("out_width", (2, 3, 8))
@pytest.mark.parametrize("rounding", DETERMINISTIC + ("stochastic",))
def test_round_trip_error_bound(in_width, out_width, rounding):
    """|q * absmax / qmax - x| <= absmax / (2 qmax) for the nearest modes, < absmax / qmax
    for floor, trunc and stochastic."""
    pairs = all_pairs(in_width)
    x = pair_blocks(pairs)
    r = (np.random.default_rng(5).integers(1, 1 << 32, size=x.size)
         if rounding == "stochastic" else None)
    q, absmax = blockwise_absmax(x, 2, in_width=in_width, out_width=out_width,
                                 rounding=rounding, random=r)
    qmax = (1 << (out_width - 1)) - 1
    for j, xv in enumerate(x.tolist()):
        a = int(absmax[j // 2])
        err = abs(Fraction(int(q[j]) * a, qmax) - xv)
        if rounding in NEAREST:
            assert err <= Fraction(a, 2 * qmax)
        else:
            assert err < Fraction(a, qmax) or a == 0
    deq = dequantize_blockwise(q, absmax, block_size=2, out_width=out_width)
    bound = np.repeat(absmax, 2) / qmax * (0.5 if rounding in NEAREST else 1.0)
    assert np.all(np.abs(deq - x) <= bound * (1 + 1e-12))


# -- the seeds' float formulas -------------------------------------------------------------
#
# Seeds: q = round(127 / absmax * x) in float64. bitsandbytes style: q = rint(x * (127 /
# absmax)) in float32. Both round half to even, so they are compared with exact half_even.
# A float result differs from the exact one only when v = 127 x / absmax lies within the
# float error of a half-integer: |fl(v) - v| <= 2u|v| (one division, one product, unit
# roundoff u) plus 2u|v| more in float32 once x and absmax need more than 24 bits. Within
# that distance the float can only land on the other side of the tie, so the difference is
# 1. In float64 with in_width <= 40 the nearest non-tie is 1/(2 absmax) >= 2**-40 away,
# far beyond 4u * 127, so float64 differs at exact ties only.

def float64_seed(x, absmax):
    return np.round(127 / absmax.astype(np.float64) * x.astype(np.float64)).astype(np.int64)


def float32_bnb(x, absmax):
    scale = np.float32(127) / absmax.astype(np.float32)
    return np.rint(x.astype(np.float32) * scale).astype(np.int64)


def exact_half_even(x, absmax):
    """127 x / absmax rounded half to even, in int64 (independent of round_div)."""
    num = 127 * x
    f = num // absmax
    rem2 = 2 * (num - f * absmax)
    return f + ((rem2 > absmax) | ((rem2 == absmax) & (f % 2 == 1))), rem2 == absmax


def float_differences(x, absmax):
    exact, tie = exact_half_even(x, absmax)
    q64, q32 = float64_seed(x, absmax), float32_bnb(x, absmax)
    # distance of v from the nearest half-integer, |frac(v) - 1/2|
    dist = np.abs((2 * 127 * x) % (2 * absmax) - absmax) / (2 * absmax)
    out = {}
    for name, q, u in (("float64", q64, 2.0 ** -53), ("float32", q32, 2.0 ** -24)):
        diff = q != exact
        assert np.all(np.abs(q - exact) <= 1), name
        assert np.all(dist[diff] <= 4 * u * 127), name
        out[name] = (int(diff.sum()), int((diff & ~tie).sum()))
    out["ties"] = int(tie.sum())
    return out


def pair_arrays(in_width):
    pairs = [(x, a) for x, a in all_pairs(in_width) if a > 0]
    x, a = np.array(pairs, dtype=np.int64).T
    return x, a


# Exhaustive over all (x, absmax > 0) pairs: (pairs, exact ties, float64 differences,
# float32 differences); every difference is at an exact tie and is 1.
FLOAT_DIFFS_EXHAUSTIVE = {
    2: (7, 2, 0, 0), 3: (23, 4, 0, 0), 4: (79, 8, 0, 0), 5: (287, 16, 0, 0),
    6: (1087, 32, 0, 2), 7: (4223, 64, 4, 8), 8: (16639, 128, 14, 18),
    9: (66047, 508, 36, 30), 10: (263167, 1016, 74, 58),
}


@pytest.mark.parametrize("in_width", sorted(FLOAT_DIFFS_EXHAUSTIVE))
def test_float_formulas_exhaustive(in_width):
    x, a = pair_arrays(in_width)
    got = float_differences(x, a)
    pairs, ties, d64, d32 = FLOAT_DIFFS_EXHAUSTIVE[in_width]
    assert (x.size, got["ties"], got["float64"], got["float32"]) == \
        (pairs, ties, (d64, 0), (d32, 0))
    if in_width <= 6:   # the golden itself, not only the int64 reference above
        q, _ = blockwise_absmax(pair_blocks([(int(v), int(w)) for v, w in zip(x, a)]), 2,
                                in_width=in_width)
        assert np.array_equal(q[0::2], exact_half_even(x, a)[0])


@pytest.mark.parametrize("in_width", (16, 24, 32))
def test_float_formulas_sampled(in_width):
    """2**20 random pairs: float64 still only differs at ties; float32 also off ties once
    absmax exceeds 2**24 ulps (bounded by the distance assertion in float_differences)."""
    rng = np.random.default_rng(in_width)
    a = rng.integers(1, (1 << (in_width - 1)) + 1, size=1 << 20)
    x = np.clip((rng.random(a.size) * (2 * a + 1)).astype(np.int64) - a,
                -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1)
    got = float_differences(x, a)
    assert got["float64"][1] == 0
    # the golden agrees with the int64 reference on a slice
    q, _ = blockwise_absmax(np.stack([x[:4096], -a[:4096]], axis=1).reshape(-1), 2,
                            in_width=in_width)
    assert np.array_equal(q[0::2], exact_half_even(x[:4096], a[:4096])[0])


# -- bad parameters ------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(block_size=0), "block_size"),
    (dict(block_size=-4), "block_size"),
    (dict(block_size=2.0), "block_size"),
    (dict(block_size=True), "block_size"),
    (dict(out_width=1), "out_width"),
    (dict(out_width=33), "out_width"),
    (dict(in_width=1), "in_width"),
    (dict(in_width=65), "in_width"),
    (dict(rounding="nearest"), "rounding"),
    (dict(x=[8]), "x"),
    (dict(x=[-9]), "x"),
    (dict(rounding="stochastic"), "random"),
    (dict(rounding="stochastic", random=[1, 2]), "random"),
    (dict(random=[1, 2, 3]), "random"),
])
def test_bad_parameters(kwargs, name):
    args = dict(x=[1, -2, 3], block_size=2, in_width=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name}:"):
        blockwise_absmax(args.pop("x"), args.pop("block_size"), **args)


def test_float_input_refused():
    with pytest.raises(TypeError):
        blockwise_absmax([0.5, 1.0], 2)


def test_dequantize_bad_parameters():
    with pytest.raises(ValueError, match="^absmax:"):
        dequantize_blockwise([1, 2, 3], [4], block_size=2)
    with pytest.raises(ValueError, match="^block_size:"):
        dequantize_blockwise([1, 2, 3], [4], block_size=0)
    with pytest.raises(ValueError, match="^out_width:"):
        dequantize_blockwise([1, 2, 3], [4, 4], block_size=2, out_width=1)
