"""qdp.golden.requantize_tflite against TFLite's integer requantization.

TFLite's ``MultiplyByQuantizedMultiplier`` (tensorflow/lite/kernels/internal/common.h and
common.cc) is transliterated below with Python ints standing for C's int32/int64:
gemmlowp's ``SaturatingRoundingDoublingHighMul`` (int64 product, a nudge, C division that
truncates toward zero) and ``RoundingDivideByPOT`` (mask and threshold), and the
``TFLITE_SINGLE_ROUNDING`` variant (one int64 add and arithmetic shift). Every C
operation whose result would overflow its type is checked, so a vector TFLite could not
compute (undefined behaviour in C++) is never used as a reference.

Note what the C code really rounds to: the negative nudge ``1 - 2**30`` with truncating
division sends negative ties toward zero, so the doubling high multiply is round half
*up* (like ARM's VQRDMULH), not half away from zero; ``RoundingDivideByPOT`` is round half
away from zero; the single-rounding variant is round half up.
"""

import numpy as np
import pytest

from qdp.golden import requantize_tflite

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class Overflow(Exception):
    """The C expression overflows its type: TFLite's result is undefined."""


def i32(v):
    if not INT32_MIN <= v <= INT32_MAX:
        raise Overflow(v)
    return v


def i64(v):
    if not INT64_MIN <= v <= INT64_MAX:
        raise Overflow(v)
    return v


def c_div(a, b):
    """C's integer division: the quotient truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def saturating_rounding_doubling_high_mul(a, b):
    overflow = a == b == INT32_MIN
    ab_64 = i64(a * b)
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = c_div(i64(ab_64 + nudge), 1 << 31)
    return INT32_MAX if overflow else i32(ab_x2_high32)


def rounding_divide_by_pot(x, exponent):
    assert 0 <= exponent <= 31
    mask = i32((1 << exponent) - 1)
    remainder = x & mask                         # two's complement AND, as in C
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return i32((x >> exponent) + (1 if remainder > threshold else 0))


def mbqm_double(x, quantized_multiplier, shift):
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(i32(x * i32(1 << left_shift)),
                                              quantized_multiplier), right_shift)


def mbqm_single(x, quantized_multiplier, shift):
    assert quantized_multiplier >= 0 and -31 <= shift <= 30
    total_shift = 31 - shift
    round_ = 1 << (total_shift - 1)
    result = i64(i64(x * quantized_multiplier) + round_)
    return i32(result >> total_shift)


def tflite_requantize(acc, m, shift, zero_point, single_rounding, qmin=INT32_MIN,
                      qmax=INT32_MAX):
    """A kernel's output stage: multiply, add the output offset, clamp (int32 math)."""
    mbqm = mbqm_single if single_rounding else mbqm_double
    y = i32(mbqm(acc, m, shift) + zero_point)
    return min(max(y, qmin), qmax)


def test_reference_transliteration_known_cases():
    # Known cases where double and single rounding differ, on the transliteration itself
    # first: 7984 * M / 2**31 = 5887.55 rounds to 5888, whose division by 2**9 is the tie
    # 11.5 -> 12, where the exact 7984 * M / 2**40 = 11.4991 rounds to 11; and 0.5 -> 1,
    # then the tie 0.5 -> 1, where the exact 0.25 rounds to 0.
    assert mbqm_double(7984, 1583594044, -9) == 12
    assert mbqm_single(7984, 1583594044, -9) == 11
    assert mbqm_double(1, 1 << 30, -1) == 1
    assert mbqm_single(1, 1 << 30, -1) == 0


@pytest.mark.parametrize("acc,m,shift,double,single", [
    (7984, 1583594044, -9, 12, 11),
    (1, 1 << 30, -1, 1, 0),
    # Negative ties of the doubling high multiply go toward zero (half_up), not away.
    (-1, 1 << 30, 0, 0, 0),
    (-3, 1 << 30, 0, -1, -1),
    (3, 1 << 30, 0, 2, 2),
    # RoundingDivideByPOT ties go away from zero.
    (-2, 1 << 30, -1, -1, 0),
    (2, 1 << 30, -1, 1, 1),
])
def test_known_cases(acc, m, shift, double, single):
    assert requantize_tflite(acc, m, shift, out_width=32) == double
    assert requantize_tflite(acc, m, shift, out_width=32, single_rounding=True) == single
    assert mbqm_double(acc, m, shift) == double
    assert mbqm_single(acc, m, shift) == single


def _random_vectors(rng, n, shift_lo, shift_hi):
    acc = rng.integers(INT32_MIN, INT32_MAX, size=n, endpoint=True)
    m = rng.integers(1 << 30, 1 << 31, size=n)
    shift = rng.integers(shift_lo, shift_hi, size=n, endpoint=True)
    return acc, m, shift


def _compare(acc, m, shift, zero_point, single_rounding, out_width=32):
    qmin, qmax = -(1 << (out_width - 1)), (1 << (out_width - 1)) - 1
    want, keep = [], []
    for i, (a, mm, s) in enumerate(zip(acc.tolist(), m.tolist(), shift.tolist())):
        try:
            want.append(tflite_requantize(a, mm, s, zero_point, single_rounding, qmin, qmax))
            keep.append(i)
        except Overflow:
            pass
    keep = np.array(keep, dtype=np.int64)
    got = requantize_tflite(acc[keep], m[keep], shift[keep], zero_point=zero_point,
                            out_width=out_width, single_rounding=single_rounding)
    mismatches = np.flatnonzero(got != np.array(want))
    assert mismatches.size == 0, [
        dict(acc=int(acc[keep][i]), M=int(m[keep][i]), shift=int(shift[keep][i]),
             got=int(got[i]), want=want[i]) for i in mismatches[:5]]
    return keep.size


@pytest.mark.parametrize("single_rounding", [False, True])
def test_random_int32_right_shifts(single_rounding):
    rng = np.random.default_rng(1 + single_rounding)
    acc, m, shift = _random_vectors(rng, 4000, -31, 0)
    assert _compare(acc, m, shift, 0, single_rounding) == 4000


@pytest.mark.parametrize("single_rounding", [False, True])
def test_random_int8_output_stage(single_rounding):
    # What a quantized kernel does: small accumulators, an offset, a clamp to int8.
    rng = np.random.default_rng(3 + single_rounding)
    acc = rng.integers(-(1 << 20), 1 << 20, size=3000)
    m = rng.integers(1 << 30, 1 << 31, size=3000)
    shift = rng.integers(-20, -6, size=3000, endpoint=True)
    for zero_point in (-128, -5, 0, 17, 127):
        assert _compare(acc, m, shift, zero_point, single_rounding, out_width=8) == 3000


@pytest.mark.parametrize("single_rounding", [False, True])
def test_small_left_shifts_without_overflow(single_rounding):
    rng = np.random.default_rng(5 + single_rounding)
    shift = rng.integers(1, 8, size=3000, endpoint=True)
    # Keep acc * 2**shift inside int32 (TFLite computes it in int32).
    limit = (1 << 31) >> shift
    acc = np.array([rng.integers(-lim, lim) for lim in limit.tolist()])
    m = rng.integers(1 << 30, 1 << 31, size=3000)
    assert _compare(acc, m, shift, 0, single_rounding) == 3000


@pytest.mark.parametrize("single_rounding", [False, True])
def test_tie_heavy_vectors(single_rounding):
    # Random vectors almost never hit a rounding tie; these multipliers make ties common.
    rng = np.random.default_rng(7 + single_rounding)
    acc = rng.integers(-4096, 4096, size=3000)
    m = rng.choice([1 << 30, 3 << 29, 5 << 28, (1 << 31) - (1 << 29), 1 << 30 | 1 << 20],
                   size=3000)
    shift = rng.integers(-12, 2, size=3000, endpoint=True)
    assert _compare(acc, m, shift, 0, single_rounding) == 3000


def test_extreme_accumulators():
    acc = np.array([INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX] * 4)
    m = np.array([1 << 30] * 6 + [INT32_MAX] * 6 + [(1 << 30) + 1] * 6 + [0] * 6)
    for shift in (-31, -30, -1, 0):
        sh = np.full(acc.shape, shift)
        for single_rounding in (False, True):
            assert _compare(acc, m, sh, 0, single_rounding) == acc.size


def test_per_channel_broadcast():
    rng = np.random.default_rng(11)
    acc = rng.integers(-(1 << 24), 1 << 24, size=(50, 6))
    m = rng.integers(1 << 30, 1 << 31, size=6)
    shift = rng.integers(-20, -8, size=6)
    got = requantize_tflite(acc, m, shift, zero_point=3)
    for (i, k), g in np.ndenumerate(got):
        assert g == tflite_requantize(int(acc[i, k]), int(m[k]), int(shift[k]), 3, False,
                                      -128, 127)


@pytest.mark.parametrize("kwargs,match", [
    (dict(shift=31), "shift"),
    (dict(shift=-32), "shift"),
    (dict(multiplier=1 << 31), "multiplier"),
    (dict(multiplier=-1), "multiplier"),
    (dict(acc=1 << 31), "acc"),
    (dict(acc=1 << 15, in_width=16), "acc"),
    (dict(out_width=33), "out_width"),
    (dict(out_width=1), "out_width"),
    (dict(in_width=33), "in_width"),
    (dict(zero_point=128), "zero_point"),
])
def test_bad_parameters(kwargs, match):
    args = dict(acc=100, multiplier=1 << 30, shift=-3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        requantize_tflite(args.pop("acc"), args.pop("multiplier"), args.pop("shift"), **args)
