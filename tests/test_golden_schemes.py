"""The seeds' float schemes (qdp.golden.schemes) against exact rational references.

The helpers take floats, but every rounding in them is exact: the references round the
Fraction value of the float inputs with textbook formulas.
"""

from fractions import Fraction
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from qdp.golden import (ROUNDING_MODES, absmax_dequantize, absmax_quantize, calibrate_minmax,
                        fixed_point_frac_bits, fixed_point_quantize, zeropoint_dequantize,
                        zeropoint_params, zeropoint_quantize)

from _reference import ref_round

DETERMINISTIC = [m for m in ROUNDING_MODES if m != "stochastic"]


def clip(v, lo, hi):
    return min(max(v, lo), hi)


# --- fixed point: the seeds' worked example ------------------------------------------------

def test_seeds_worked_example():
    # Weights in (-2, 2) on 8-bit fixed point: 1 sign bit, 1 integer bit, 6 fraction bits;
    # 0.101 * 64 = 6.464 -> 6, i.e. 6/64 = 0.09375.
    assert fixed_point_frac_bits(2.0, 8) == 6
    weights = np.array([-1.99, -0.5, 0.101, 1.3, 1.999])
    assert fixed_point_frac_bits(float(np.abs(weights).max()), 8) == 6
    assert fixed_point_quantize(0.101, 8, 6) == 6 / 64 == 0.09375
    got = fixed_point_quantize(weights, 8, 6)
    assert list(got) == [-127 / 64, -32 / 64, 6 / 64, 83 / 64, 127 / 64]


@pytest.mark.parametrize("max_abs,bw,frac", [
    (0.0, 8, 7), (0.3, 8, 7), (1.0, 8, 7), (1.0000001, 8, 6), (2.0, 8, 6), (2.5, 8, 5),
    (4.0, 8, 5), (127.0, 8, 0), (128.0, 8, 0), (2.0, 16, 14), (0.5, 2, 1), (1.5, 2, 0),
])
def test_fixed_point_frac_bits_table(max_abs, bw, frac):
    assert fixed_point_frac_bits(max_abs, bw) == frac


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=2.0 ** 40, allow_nan=False), st.integers(2, 53))
def test_fixed_point_frac_bits_is_the_smallest_that_fits(max_abs, bw):
    int_bits = 0
    while Fraction(max_abs) > 2 ** int_bits:
        int_bits += 1
    if int_bits > bw - 1:
        with pytest.raises(ValueError, match="max_abs"):
            fixed_point_frac_bits(max_abs, bw)
    else:
        assert fixed_point_frac_bits(max_abs, bw) == bw - 1 - int_bits


@pytest.mark.parametrize("args,match", [
    ((129.0, 8), "max_abs"), ((-1.0, 8), "max_abs"), ((math.nan, 8), "max_abs"),
    ((math.inf, 8), "max_abs"), ((1.0, 1), "bw"), ((1.0, 54), "bw"), ((1.0, 8.0), "bw"),
])
def test_fixed_point_frac_bits_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        fixed_point_frac_bits(*args)


@settings(max_examples=400, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.integers(2, 24),
       st.integers(-4, 30), st.sampled_from(DETERMINISTIC))
def test_fixed_point_quantize_matches_reference(fx, bw, frac_bw, mode):
    lo, hi = -2 ** (bw - 1), 2 ** (bw - 1) - 1
    q = clip(ref_round(Fraction(fx) * Fraction(2) ** frac_bw, mode), lo, hi)
    want = Fraction(q) / Fraction(2) ** frac_bw
    got = fixed_point_quantize(fx, bw, frac_bw, rounding=mode)
    assert Fraction(float(got)) == want
    # The seeds' order (clip, then round) gives the same integer.
    v = Fraction(fx) * Fraction(2) ** frac_bw
    assert ref_round(clip(v, lo, hi), mode) == q


def test_fixed_point_quantize_saturates_and_keeps_shape():
    got = fixed_point_quantize(np.array([[5.0, -5.0], [-2.0, 1.984375]]), 8, 6)
    assert got.shape == (2, 2)
    assert got.tolist() == [[127 / 64, -2.0], [-2.0, 127 / 64]]


@pytest.mark.parametrize("kwargs,match", [
    (dict(bw=1), "bw"), (dict(bw=54), "bw"), (dict(frac_bw=2.5), "frac_bw"),
    (dict(rounding="nearest"), "rounding"), (dict(rounding="stochastic"), "rounding"),
    (dict(fx=[1.0, math.nan]), "fx"), (dict(fx=[math.inf]), "fx"),
])
def test_fixed_point_quantize_bad_input(kwargs, match):
    args = dict(fx=[0.5], bw=8, frac_bw=6)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fixed_point_quantize(args.pop("fx"), args.pop("bw"), args.pop("frac_bw"), **args)


# --- absmax symmetric ------------------------------------------------------------------------

def ref_absmax(x, bits, mode):
    values = [Fraction(v) if isinstance(v, float) else Fraction(int(v)) for v in x]
    qmax = 2 ** (bits - 1) - 1
    absmax = max(abs(v) for v in values)
    if absmax == 0:
        return [0] * len(values)
    return [ref_round(qmax * v / absmax, mode) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=-1e30, max_value=1e30, allow_nan=False,
                          allow_subnormal=True), min_size=1, max_size=20),
       st.integers(2, 32), st.sampled_from(DETERMINISTIC))
def test_absmax_quantize_matches_reference(x, bits, mode):
    q, c = absmax_quantize(np.array(x), bits=bits, rounding=mode)
    assert q.dtype == np.int64
    assert q.tolist() == ref_absmax(x, bits, mode)
    qmax = 2 ** (bits - 1) - 1
    absmax = max(abs(v) for v in x)
    assert c == (qmax / absmax if absmax else 1.0)
    assert np.abs(q).max() <= qmax


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(1 << 40), 1 << 40), min_size=1, max_size=20),
       st.sampled_from(DETERMINISTIC))
def test_absmax_quantize_integer_input(x, mode):
    q, _ = absmax_quantize(np.array(x, dtype=np.int64), rounding=mode)
    assert q.tolist() == ref_absmax(x, 8, mode)


def test_absmax_exact_tie_that_float_math_misses():
    # 127 * 23 / 46 = 63.5 exactly; (127 / 46) * 23 is 63.49999999999999 in float64.
    assert (127 / 46) * 23 < 63.5
    q, c = absmax_quantize([23, 46])
    assert q.tolist() == [64, 127]
    q, _ = absmax_quantize([23.0, -46.0], rounding="half_down")
    assert q.tolist() == [63, -127]


def test_absmax_all_zero():
    q, c = absmax_quantize(np.zeros((2, 3)))
    assert q.shape == (2, 3) and not q.any()
    assert c == 1.0
    assert not absmax_dequantize(q, c).any()


def test_absmax_the_largest_element_maps_to_qmax():
    q, c = absmax_quantize(np.array([0.1, -3.7, 2.0], dtype=np.float32), bits=4)
    assert q[1] == -7
    assert c == 7 / float(np.float32(3.7))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1,
                max_size=20))
def test_absmax_dequantize_error(x):
    x = np.array(x)
    q, c = absmax_quantize(x)
    assume(np.abs(x).max() > 1e-300)
    # Dequantization is float: the bound is half a step plus float64 rounding.
    step = 1 / c
    err = np.abs(absmax_dequantize(q, c) - x)
    assert np.all(err <= 0.5 * step * (1 + 1e-12) + 1e-300)


@pytest.mark.parametrize("call,match", [
    (lambda: absmax_quantize([1.0], bits=1), "bits"),
    (lambda: absmax_quantize([1.0], bits=33), "bits"),
    (lambda: absmax_quantize([1.0], rounding="nope"), "rounding"),
    (lambda: absmax_quantize([1.0], rounding="stochastic"), "rounding"),
    (lambda: absmax_quantize([1.0, math.nan]), "x"),
    (lambda: absmax_dequantize([1], 0.0), "c"),
    (lambda: absmax_dequantize([1], math.inf), "c"),
])
def test_absmax_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_absmax_refuses_strings():
    with pytest.raises(TypeError):
        absmax_quantize(np.array(["a"]))


# --- zero-point affine -----------------------------------------------------------------------

def ref_zeropoint_params(fmin, fmax, bits, signed):
    qmin, qmax = (-2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    lo, hi = min(fmin, 0.0), max(fmax, 0.0)
    if lo == hi:
        return 1.0, 0
    s = (hi - lo) / (qmax - qmin)
    return s, clip(round(qmax - Fraction(hi) / Fraction(s)), qmin, qmax)


@pytest.mark.parametrize("fmin,fmax,bits,signed,want", [
    (-1.0, 3.0, 8, False, (4 / 255, 64)),      # z = round(255 - 63.75)
    (1.0, 3.0, 8, False, (3 / 255, 0)),        # widened to [0, 3]
    (-2.0, -1.0, 8, True, (2 / 255, 127)),     # widened to [-2, 0]
    (0.0, 0.0, 8, False, (1.0, 0)),            # degenerate
    (0.0, 0.0, 8, True, (1.0, 0)),
    (5.0, 5.0, 4, False, (5 / 15, 0)),
    # 127 - 1 / s is -0.5000000000000018 with the float64 s = 2/255, not the tie -0.5.
    (-1.0, 1.0, 8, True, (2 / 255, -1)),
])
def test_zeropoint_params_known(fmin, fmax, bits, signed, want):
    assert zeropoint_params(fmin, fmax, bits=bits, signed=signed) == want


finite = st.floats(min_value=-1e30, max_value=1e30, allow_nan=False)


@settings(max_examples=250, deadline=None)
@given(finite, finite, st.integers(2, 16), st.booleans())
def test_zeropoint_params_properties(a, b, bits, signed):
    fmin, fmax = min(a, b), max(a, b)
    lo, hi = min(fmin, 0.0), max(fmax, 0.0)
    if lo != hi and (hi - lo) / (2 ** bits - 1) == 0.0:
        # A subnormal range whose scale underflows float64 is refused, not turned into 0.
        with pytest.raises(ValueError, match="fmax"):
            zeropoint_params(fmin, fmax, bits=bits, signed=signed)
        return
    s, z = zeropoint_params(fmin, fmax, bits=bits, signed=signed)
    assert (s, z) == ref_zeropoint_params(fmin, fmax, bits, signed)
    qmin, qmax = (-2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    assert qmin <= z <= qmax
    # Zero is exact: it quantizes to z and z dequantizes to 0.0.
    assert zeropoint_quantize(0.0, s, z, bits=bits, signed=signed) == z
    assert zeropoint_dequantize(z, s, z) == 0.0
    if lo == hi:
        assert (s, z) == (1.0, 0)
        return
    if s < np.finfo(np.float64).tiny:
        return              # a subnormal scale has too few bits for the next check
    # The ends of the range land on (or one step inside) the ends of the integer range.
    q_lo = int(zeropoint_quantize(lo, s, z, bits=bits, signed=signed))
    q_hi = int(zeropoint_quantize(hi, s, z, bits=bits, signed=signed))
    assert q_lo in (qmin, qmin + 1) and q_hi in (qmax - 1, qmax)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), min_size=1,
                max_size=10),
       st.floats(min_value=1e-4, max_value=10.0), st.integers(2, 16), st.booleans(),
       st.data())
def test_zeropoint_quantize_matches_reference(f, s, bits, signed, data):
    qmin, qmax = (-2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    z = data.draw(st.integers(qmin, qmax))
    got = zeropoint_quantize(np.array(f), s, z, bits=bits, signed=signed)
    want = [clip(round(Fraction(v) / Fraction(s) + z), qmin, qmax) for v in f]
    assert got.tolist() == want


def test_zeropoint_quantize_adds_z_before_rounding():
    # The seeds' order: round(0.5 + 1) = 2, whereas round(0.5) + 1 = 1.
    assert zeropoint_quantize(0.5, 1.0, 1, signed=True) == 2
    assert zeropoint_quantize(0.5, 1.0, 0, signed=True) == 0
    assert zeropoint_quantize(np.float32(2.5), 1.0, 0) == 2


@settings(max_examples=300, deadline=None)
@given(st.integers(-(1 << 16), 1 << 16), st.integers(-(1 << 16), 1 << 16),
       st.floats(min_value=1e-30, max_value=1e30))
def test_zeropoint_dequantize_is_one_rounding(q, z, s):
    # (q - z) is exact; the product is correctly rounded: float(Fraction) rounds once.
    assert zeropoint_dequantize(q, s, z) == float(Fraction(q - z) * Fraction(s))


@pytest.mark.parametrize("call,match", [
    (lambda: zeropoint_params(3.0, -1.0), "fmin"),
    (lambda: zeropoint_params(math.nan, 1.0), "fmin"),
    (lambda: zeropoint_params(0.0, math.inf), "fmax"),
    (lambda: zeropoint_params(-1.0, 1.0, bits=1), "bits"),
    (lambda: zeropoint_params(-1e308, 1e308), "fmax"),
    (lambda: zeropoint_quantize([1.0], 0.0, 0), "s"),
    (lambda: zeropoint_quantize([1.0], -1.0, 0), "s"),
    (lambda: zeropoint_quantize([1.0], 0.1, 256), "z"),
    (lambda: zeropoint_quantize([1.0], 0.1, -1), "z"),
    (lambda: zeropoint_quantize([1.0], 0.1, 128, signed=True), "z"),
    (lambda: zeropoint_quantize([1.0], 0.1, 1.5), "z"),
    (lambda: zeropoint_quantize([math.nan], 0.1, 0), "f"),
    (lambda: zeropoint_quantize([1.0], 0.1, 0, bits=33), "bits"),
    (lambda: zeropoint_dequantize([1], math.nan, 0), "s"),
    (lambda: zeropoint_dequantize([1], 0.1, 0.5), "z"),
])
def test_zeropoint_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- min/max calibration ---------------------------------------------------------------------

def test_calibrate_minmax_known_values():
    f32 = np.float32
    scale, zp = calibrate_minmax(np.array([-1.0, 3.0]))
    assert scale == float(f32(4) / f32(255))
    assert zp == -round(float(f32(-1) / f32(scale)))          # 0 - round(-63.75) = 64
    assert zp == 64
    scale, zp = calibrate_minmax(np.array([-1.0, 3.0]), symmetric=True)
    assert (scale, zp) == (float(f32(3) / f32(127.5)), 0)
    scale, zp = calibrate_minmax(np.array([-1.0, 3.0]), symmetric=True, signed=False)
    assert (scale, zp) == (float(f32(3) / f32(127.5)), 128)
    assert calibrate_minmax(np.zeros(4)) == (float(np.finfo(np.float32).eps), 0)
    scale, zp = calibrate_minmax(np.array([2.0, 5.0]), bits=4)
    assert (scale, zp) == (float(f32(5) / f32(15)), 0)
    scale, zp = calibrate_minmax(np.array([-8.0, -2.0]), signed=True)
    assert (scale, zp) == (float(f32(8) / f32(255)), 127)


@pytest.mark.parametrize("call,match", [
    (lambda: calibrate_minmax(np.array([])), "x"),
    (lambda: calibrate_minmax(np.array([1.0, math.nan])), "x"),
    (lambda: calibrate_minmax(np.array([1.0]), bits=1), "bits"),
    (lambda: calibrate_minmax(np.array([1.0]), bits=17), "bits"),
    (lambda: calibrate_minmax(np.array([-3e38, 3e38])), "x"),
])
def test_calibrate_minmax_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
