"""Float-input blockwise absmax and its dequantizer (qdp.golden.absmax_float): every pair of
a small format against exact Fractions, FP32 and BF16 against NumPy's and PyTorch's own
float32 arithmetic, the special values, and the errors."""

import bisect
import functools
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from qdp.golden import block_constant, blockwise_absmax, dequantize_blockwise
from qdp.golden.floats import FP16, float_format, to_fraction
from qdp.golden.rounding import DETERMINISTIC_MODES

SMALL = float_format("e3m3")


def round_fraction(v, mode):
    """An integer from the exact rational ``v``, written from the modes' definitions."""
    lo = math.floor(v)
    frac = v - lo
    if mode == "floor":
        return lo
    if mode == "trunc":
        return lo if v >= 0 else math.ceil(v)
    if frac != Fraction(1, 2):
        return lo + (frac > Fraction(1, 2))
    return lo + {"half_even": lo % 2, "half_away": v > 0, "half_up": 1, "half_down": 0,
                 "half_zero": v < 0}[mode]


def finite_patterns(fmt):
    bits = np.arange(1 << fmt.width, dtype=np.uint64)
    exponent = (bits >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
    return bits[exponent != (1 << fmt.exp_bits) - 1]


@functools.cache
def _magnitudes(fmt):
    """Every finite non-negative value of ``fmt`` in order, as Fractions, and its pattern."""
    pats = [b for b in finite_patterns(fmt).tolist() if not b >> (fmt.width - 1)]
    return [to_fraction(np.uint64(b), fmt) for b in pats], pats


def nearest_pattern(v, negative, fmt):
    """The ``fmt`` pattern nearest the Fraction ``v`` (sign bit ``negative``), ties to the
    even pattern, beyond the largest value by half a step Inf: exact comparisons of the
    candidates, no float rounding involved."""
    values, pats = _magnitudes(fmt)
    target = abs(v)
    k = bisect.bisect_left(values, target)
    step = values[-1] - values[-2]
    if k == len(values):
        best = fmt.inf_bits if target >= values[-1] + step / 2 else pats[-1]
    elif values[k] == target or k == 0:
        best = pats[k]
    else:
        below, above = target - values[k - 1], values[k] - target
        best = pats[k - 1] if (below, pats[k - 1] & 1) < (above, pats[k] & 1) else pats[k]
    return best | (int(negative) << (fmt.width - 1))


@pytest.mark.parametrize("rounding", DETERMINISTIC_MODES)
def test_every_pair_of_a_small_format_is_exact(rounding):
    """Blocks [absmax, x] for every finite pattern pair with |x| <= absmax, e3m3 into int4."""
    pats = finite_patterns(SMALL)
    values = {int(b): to_fraction(b, SMALL) for b in pats}
    pairs = [(a, x) for a in values for x in values if abs(values[x]) <= abs(values[a])
             and values[a] >= 0 and not (a >> 6)]
    blocks = np.array(pairs, dtype=np.uint64).reshape(-1)
    q, absmax = blockwise_absmax(blocks, 2, in_format="e3m3", out_width=4, rounding=rounding)
    qmax = 7
    want = [0 if values[a] == 0 else round_fraction(qmax * values[v] / values[a], rounding)
            for a, x in pairs for v in (a, x)]
    assert q.tolist() == want
    assert absmax.tolist() == [a for a, _ in pairs]


def test_stochastic_takes_r_per_element():
    x = np.array([1.0, 0.5, -0.25, 0.75], dtype=np.float32)
    r = np.array([0, 0, (1 << 32) - 1, 1 << 31], dtype=np.int64)
    q, _ = blockwise_absmax(x, 4, in_format="fp32", out_width=3, rounding="stochastic",
                            random=r)
    # qmax = 3: 3, 1.5 (r=0: 1), -0.75 (r near 1: 0), 2.25 (r=1/2: 2)
    assert q.tolist() == [3, 1, 0, 2]


def hard_fp32(rng, blocks, size):
    """Blocks of normal, subnormal and tie-making values, some with exact half-steps."""
    x = (rng.standard_normal((blocks, size)) * np.exp2(rng.integers(-140, 120, (blocks, 1))))
    x = x.astype(np.float32)
    ties = rng.integers(0, blocks, blocks // 4)
    # absmax 254 * 2**e: qmax * x / absmax = k / 2 for x = k * 2**e.
    e = np.exp2(rng.integers(-20, 20, (ties.size, 1))).astype(np.float32)
    x[ties] = rng.integers(-254, 255, (ties.size, size)).astype(np.float32) * e
    x[ties, 0] = 254 * e[:, 0]
    return x


def test_float32_model_is_numpy_float32():
    rng = np.random.default_rng(1)
    x = hard_fp32(rng, 400, 32)
    q, absmax = blockwise_absmax(x, 32, in_format="fp32", model="float32")
    with np.errstate(over="ignore", invalid="ignore"):
        c = np.float32(127) / np.abs(x).max(axis=1, keepdims=True)
        y = c * x
    finite = np.isfinite(y)
    want = np.clip(np.rint(np.where(finite, y, 0)), -127, 127).astype(np.int64)
    want = np.where(np.isinf(y), np.sign(y) * 127, want).astype(np.int64)
    assert np.array_equal(q.reshape(x.shape), want)
    assert np.array_equal(absmax, np.abs(x).max(axis=1))
    assert np.array_equal(block_constant(absmax, in_format="fp32"), c.reshape(-1))


def test_float32_model_is_pytorch_on_bf16():
    """PyTorch with c from an FP32 division equals the model; ``127.0 / absmax`` (a Python
    scalar over a tensor) is computed as ``127 * (1 / absmax)``, rounded twice: that c
    differs in its last bit for some blocks, and q by one where a product lands on a
    half-integer (counted)."""
    rng = np.random.default_rng(2)
    x = hard_fp32(rng, 200, 64).astype(ml_dtypes.bfloat16)
    q, _ = blockwise_absmax(x, 64, in_format="bf16", model="float32")
    t = torch.from_numpy(x.astype(np.float32))   # exact: BF16 widens to FP32
    amax = t.abs().amax(dim=1, keepdim=True)

    def torch_q(c):
        return torch.round(c * t).clamp(-127, 127).nan_to_num(0).to(torch.int64).numpy()

    assert np.array_equal(q.reshape(x.shape), torch_q(torch.full_like(amax, 127) / amax))
    scalar = torch_q(127.0 / amax)
    differ = np.count_nonzero(scalar != q.reshape(x.shape))
    assert np.abs(scalar - q.reshape(x.shape)).max() <= 1
    assert 0 < differ < 20      # 3 of 12,800 elements with this seed


def test_float32_model_within_one_of_exact_and_counted():
    """The documented bounds: where c is finite the two models differ by at most one, near
    half-integers; where c overflows (a subnormal absmax) the float32 model saturates."""
    rng = np.random.default_rng(3)
    x = hard_fp32(rng, 2000, 16)
    # Near ties: x the FP32 value nearest (k + 1/2) * absmax / 127 for a random absmax.
    a = (rng.random((500, 1)) + 1) * np.exp2(rng.integers(-30, 30, (500, 1)))
    k = rng.integers(-127, 127, (500, 15)) + 0.5
    x[:500] = np.concatenate([a, k * a / 127], axis=1).astype(np.float32)
    exact, absmax = blockwise_absmax(x, 16, in_format="fp32")
    f32, _ = blockwise_absmax(x, 16, in_format="fp32", model="float32")
    overflow = np.isinf(block_constant(absmax, in_format="fp32"))
    diff = np.abs(exact - f32)
    assert diff[~overflow].max() <= 1
    assert np.count_nonzero(diff[:500]) > 500      # 3,630 of the 8,000 near ties
    assert np.count_nonzero(diff[500:][~overflow[500:]]) < diff.size // 1000
    assert overflow.any()
    assert np.array_equal(f32[overflow], 127 * np.sign(x[overflow]))


def test_special_values_are_documented():
    x = np.array([np.inf, 1, -2, 0, np.nan, 1, 2, 3, 0, 0, -0.0, 0, 1e-45, -1e-45, 0, 1e-45,
                  -np.inf, np.inf, 5, -5], dtype=np.float32)
    for model in ("exact", "float32"):
        q, absmax = blockwise_absmax(x, 4, in_format="fp32", model=model)
        assert q.tolist() == [0] * 12 + [127, -127, 0, 127] + [0] * 4, model
        assert np.isinf(absmax[0]) and np.isnan(absmax[1]) and absmax[2] == 0
        assert np.signbit(absmax).tolist() == [False] * 5
    # The float32 model's c overflows for a tiny absmax: every nonzero x saturates.
    c = block_constant(np.array([1e-45, 0, np.inf], dtype=np.float32), in_format="fp32")
    assert np.isinf(c[0]) and np.isinf(c[1]) and c[2] == 0


def test_dequantize_exact_is_rounded_once():
    """Every q of int4 and every finite e3m3 absmax into FP16, against exact Fractions."""
    absmax = finite_patterns(SMALL)
    absmax = absmax[absmax >> 6 == 0]
    q = np.tile(np.arange(-7, 8), absmax.size)
    y = dequantize_blockwise(q, absmax, block_size=15, out_width=4, in_format="e3m3",
                             out_format="fp16")
    assert y.dtype == np.uint64
    a = np.repeat(absmax, 15)
    for qi, ai, yi in zip(q.tolist(), a.tolist(), y.tolist()):
        v = Fraction(qi) * to_fraction(np.uint64(ai), SMALL) / 7
        assert yi == nearest_pattern(v, qi < 0, FP16), (qi, ai)


@pytest.mark.parametrize("out_format", ["fp32", "bf16", "fp16"])
def test_dequantize_float32_is_numpy(out_format):
    rng = np.random.default_rng(4)
    x = hard_fp32(rng, 300, 32)
    q, absmax = blockwise_absmax(x, 32, in_format="fp32", model="float32")
    c = block_constant(absmax, in_format="fp32")
    y = dequantize_blockwise(q, c, block_size=32, in_format="fp32", out_format=out_format,
                             model="float32")
    with np.errstate(divide="ignore", invalid="ignore"):
        want = (q.reshape(x.shape).astype(np.float32) / c[:, None]).reshape(-1)
    with np.errstate(over="ignore"):    # FP16 overflows to Inf, as the model does
        want = want.astype(float_format(out_format).dtype)
    assert np.array_equal(y.reshape(-1), want, equal_nan=True)


def test_dequantize_specials():
    s = np.array([np.nan, np.inf, np.inf, 0], dtype=np.float32)
    y = dequantize_blockwise(np.array([3, 2, 0, -1]), s, block_size=1, in_format="fp32")
    assert np.isnan(y[0]) and y[1] == np.inf and np.isnan(y[2]) and y[3] == 0
    y = dequantize_blockwise(np.array([3, 0, -2]), np.array([0, 0, 0], dtype=np.float32),
                             block_size=1, in_format="fp32", model="float32")
    assert y[0] == np.inf and np.isnan(y[1]) and y[2] == -np.inf


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(width=16, allow_nan=False, allow_infinity=False), min_size=1,
                max_size=40), st.integers(1, 8), st.sampled_from(DETERMINISTIC_MODES))
def test_fp16_exact_bounds_and_round_trip(values, block_size, rounding):
    x = np.array(values, dtype=np.float16)
    q, absmax = blockwise_absmax(x, block_size, in_format="fp16", rounding=rounding)
    assert np.all(np.abs(q) <= 127)
    assert np.all((q == 0) | (np.sign(q) == np.sign(x.astype(np.float64))))
    a = np.repeat(absmax.astype(np.float64), block_size)[:x.size]
    err = np.abs(q - 127 * x.astype(np.float64) / np.where(a == 0, 1, a))
    assert np.all(err < 1 + 1e-9)
    y = dequantize_blockwise(q, absmax, block_size=block_size, in_format="fp16",
                             out_format="fp32")
    assert np.all(np.abs(y.astype(np.float64) - x) <= a / 127 * 1.0001)


@pytest.mark.parametrize("call, message", [
    (lambda: blockwise_absmax(np.ones(4, np.float32), 2, in_format="fp8"), "in_format"),
    (lambda: blockwise_absmax(np.ones(4, np.float32), 2, in_format="fp32", model="fp64"),
     "model"),
    (lambda: blockwise_absmax(np.ones(4, np.float32), 2, in_format="fp32", model="float32",
                              rounding="floor"), "rounding"),
    (lambda: blockwise_absmax(np.ones(4, np.int64), 2, model="float32"), "model"),
    (lambda: blockwise_absmax(np.ones(4), 2, in_format="fp32"), "x"),
    (lambda: dequantize_blockwise(np.array([200]), np.ones(1, np.float32), block_size=1,
                                  in_format="fp32"), "q"),
    (lambda: dequantize_blockwise(np.ones(4, int), np.ones(1, np.float32), block_size=2,
                                  in_format="fp32"), "scale"),
    (lambda: dequantize_blockwise(np.ones(2, int), np.ones(1, np.float32), block_size=2,
                                  in_format="fp32", out_format="fp64"), "out_format"),
])
def test_bad_input_names_the_parameter(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
