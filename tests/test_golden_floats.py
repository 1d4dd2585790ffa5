"""IEEE formats of qdp.golden.floats against NumPy, ml_dtypes and exact Fractions.

The references are independent of the code under test: bit patterns are decoded from
the standard's definition (or read through NumPy / ml_dtypes dtypes), and rounding is
done on Fractions -- for a small format by searching the sorted list of every finite
value, for any format by the textbook ``floor(a / quantum)`` with the rounding modes'
tie rules. NumPy's float32 division, its float64 -> float32 / float16 casts and
ml_dtypes' casts and divisions are correctly rounded (half to even), and serve as
references for ``half_even``.
"""

from bisect import bisect_right
from fractions import Fraction
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from qdp.golden import floats
from qdp.golden.floats import BF16, FP16, FP32, INF, NAN, NORMAL, SUBNORMAL, ZERO
from qdp.golden.rounding import DETERMINISTIC_MODES, NEAREST_MODES

NAMED = (FP32, BF16, FP16)
#: Custom formats of at most 8 bits, rounded exhaustively against the value table.
SMALL = ("e2m1", "e2m2", "e2m3", "e3m2", "e3m3", "e3m4", "e4m3", "e5m2")
#: ml_dtypes' IEEE-like 8-bit types (subnormals, Inf, NaN).
ML8 = {"e5m2": ml_dtypes.float8_e5m2, "e4m3": ml_dtypes.float8_e4m3,
       "e3m4": ml_dtypes.float8_e3m4}
UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32}


# -- references ----------------------------------------------------------------------------

def fields(spec):
    fmt = floats.float_format(spec)
    return fmt.exp_bits, fmt.man_bits


def textbook(bits, e, m):
    """``(kind, negative, value)`` of one IEEE pattern, decoded from the definition:
    exponent field all ones is Inf / NaN, zero is zero / subnormal
    ``0.f * 2**(1 - bias)``, otherwise normal ``1.f * 2**(field - bias)``."""
    negative = bool((bits >> (e + m)) & 1)
    field = (bits >> m) & ((1 << e) - 1)
    frac = bits & ((1 << m) - 1)
    bias = 2 ** (e - 1) - 1
    if field == (1 << e) - 1:
        return ("nan" if frac else "inf"), negative, None
    if field == 0:
        kind, value = ("subnormal" if frac else "zero"), Fraction(frac, 2 ** m) * \
            Fraction(2) ** (1 - bias)
    else:
        kind, value = "normal", (1 + Fraction(frac, 2 ** m)) * Fraction(2) ** (field - bias)
    return kind, negative, -value if negative else value


def moves_up(mode, negative, below, above, low_is_odd):
    """Whether ``mode`` picks the neighbour of larger magnitude; ``below`` and ``above``
    are the distances to the two neighbours (the value lies strictly between them)."""
    if mode == "trunc":
        return False
    if mode == "floor":
        return negative
    if below != above:
        return above < below
    return {"half_even": low_is_odd, "half_away": True, "half_zero": False,
            "half_up": not negative, "half_down": negative}[mode]


def overflow_bits(e, m, mode, negative):
    """IEEE overflow: Inf when the mode rounds the magnitude up, else the largest finite."""
    inf = ((1 << e) - 1) << m
    up = mode in NEAREST_MODES or (mode == "floor" and negative)
    return (inf if up else inf - 1) | (int(negative) << (e + m))


class Table:
    """Every non-negative finite value of a small format, sorted (index = bit pattern)."""

    def __init__(self, spec):
        self.e, self.m = fields(spec)
        self.inf = ((1 << self.e) - 1) << self.m
        self.mags = [textbook(b, self.e, self.m)[2] for b in range(self.inf)]
        # The first value of the binade above the largest: where the format would go on.
        self.beyond = Fraction(2) ** (2 ** (self.e - 1))

    def round(self, negative, a):
        """``{mode: bits}`` of ``(-1)**negative * a`` (``a`` a non-negative Fraction)."""
        sign = int(negative) << (self.e + self.m)
        if a >= self.beyond:
            return {mode: overflow_bits(self.e, self.m, mode, negative)
                    for mode in DETERMINISTIC_MODES}
        i = bisect_right(self.mags, a) - 1
        if self.mags[i] == a:
            return {mode: i | sign for mode in DETERMINISTIC_MODES}
        hi = self.mags[i + 1] if i + 1 < self.inf else self.beyond
        out = {}
        for mode in DETERMINISTIC_MODES:
            j = i + moves_up(mode, negative, a - self.mags[i], hi - a, i % 2 == 1)
            out[mode] = overflow_bits(self.e, self.m, mode, negative) if j == self.inf \
                else j | sign
        return out


def round_fraction(negative, a, spec, mode):
    """``(-1)**negative * a`` rounded to any format: ``floor(a / quantum)`` with the
    quantum of ``a``'s binade (never below the subnormals'), one step up per the mode."""
    e, m = fields(spec)
    bias = 2 ** (e - 1) - 1
    emin, emax = 1 - bias, bias
    sign = int(negative) << (e + m)
    if a == 0:
        return sign
    k = a.numerator.bit_length() - a.denominator.bit_length()
    if a < Fraction(2) ** k:
        k -= 1                                   # now 2**k <= a < 2**(k + 1)
    exponent = max(k, emin)
    quantum = Fraction(2) ** (exponent - m)
    n = math.floor(a / quantum)
    rest = a / quantum - n
    if rest:
        n += moves_up(mode, negative, rest, 1 - rest, n % 2 == 1)
    if n * quantum >= Fraction(2) ** (emax + 1):
        return overflow_bits(e, m, mode, negative)
    if n == 2 ** (m + 1):
        n, exponent = n // 2, exponent + 1
    if n < 2 ** m:
        return sign | n                          # subnormal (or zero)
    return sign | ((exponent + bias) << m) | (n - 2 ** m)


def special_quotient(x, y, e, m):
    """IEEE division's result for special operands (NaN as the string "nan"), or None
    when both are finite and the divisor nonzero."""
    xk, xn, _ = textbook(x, e, m)
    yk, yn, _ = textbook(y, e, m)
    sign = int(xn ^ yn) << (e + m)
    inf = ((1 << e) - 1) << m
    if "nan" in (xk, yk) or (xk == yk == "zero") or (xk == yk == "inf"):
        return "nan"
    if xk == "inf" or yk == "zero":
        return inf | sign
    if yk == "inf":
        return sign
    return None


def value_of(bits, fmt):
    """Float64 values (exact) of bit patterns of a named format, through its dtype."""
    with np.errstate(invalid="ignore"):
        return fmt.values(bits).astype(np.float64)


def pattern_of(values, fmt):
    return np.asarray(values).astype(fmt.dtype).view(UINT[fmt.width]).astype(np.int64)


def biased_bits(rng, n, fmt):
    """Bit patterns with every class well represented: uniform, subnormal, specials,
    near the largest and smallest normals, small integers."""
    specials = np.array([0, 1, (1 << fmt.man_bits) - 1, 1 << fmt.man_bits, fmt.max_bits,
                         fmt.max_bits - 1, fmt.inf_bits, fmt.nan_bits, fmt.inf_bits | 1,
                         ((fmt.bias) << fmt.man_bits)], dtype=np.int64)
    kind = rng.integers(0, 6, n)
    uniform = rng.integers(0, 1 << fmt.width, n)
    mant = rng.integers(0, 1 << fmt.man_bits, n)
    top = (1 << fmt.exp_bits) - 1
    near_edge = np.where(rng.integers(0, 2, n) == 0, rng.integers(1, 4, n),
                         rng.integers(top - 3, top, n))
    small_int = rng.integers(1, 1 << min(fmt.precision, 12), n)
    small_bits = pattern_of(small_int.astype(np.float64), fmt) & ((1 << (fmt.width - 1)) - 1) \
        if fmt.dtype is not None else small_int & fmt.max_bits
    magnitude = np.select([kind == 0, kind == 1, kind == 2, kind == 3, kind == 4],
                          [uniform & ((1 << (fmt.width - 1)) - 1), mant,
                           specials[rng.integers(0, specials.size, n)],
                           (near_edge << fmt.man_bits) | mant, small_bits],
                          (rng.integers(top // 2 - 3, top // 2 + 4, n) << fmt.man_bits) | mant)
    return magnitude | (rng.integers(0, 2, n) << (fmt.width - 1))


def close_to(rng, x, fmt):
    """Patterns whose exponent field lies within 2 of ``x``'s (quotients near 1, and
    the exact ones where the mantissas agree)."""
    n = x.size
    top = (1 << fmt.exp_bits) - 1
    field = np.clip(((x >> fmt.man_bits) & top) + rng.integers(-2, 3, n), 0, top - 1)
    mant = np.where(rng.integers(0, 3, n) == 0, x & ((1 << fmt.man_bits) - 1),
                    rng.integers(0, 1 << fmt.man_bits, n))
    return (field << fmt.man_bits) | mant | (rng.integers(0, 2, n) << (fmt.width - 1))


def check_against_numpy(got, expected_bits, fmt):
    """Bit-exact, except that any NaN of NumPy's must be qdp's canonical NaN."""
    cls, _ = floats.classify(expected_bits, fmt)
    nan = cls == NAN
    assert np.all(got[nan] == fmt.nan_bits)
    bad = np.flatnonzero((got != expected_bits) & ~nan)
    assert bad.size == 0, [(hex(int(got[i])), hex(int(expected_bits[i]))) for i in bad[:5]]


def test_references_agree_with_each_other():
    # The value table and the binade formula round every small-format input alike.
    rng = np.random.default_rng(0)
    for spec in ("e2m1", "e3m3", "e5m2"):
        table = Table(spec)
        for _ in range(600):
            a = Fraction(int(rng.integers(0, 1 << 12)), 1 << int(rng.integers(0, 26)))
            negative = bool(rng.integers(0, 2))
            got = table.round(negative, a)
            assert got == {mode: round_fraction(negative, a, spec, mode)
                           for mode in DETERMINISTIC_MODES}, (spec, a, negative)


def test_reference_spot_values():
    # e3m3: bias 3, values 1 + k/8 in [1, 2); min subnormal 1/32; max 15.
    t = Table("e3m3")
    assert t.mags[1] == Fraction(1, 32) and t.mags[-1] == 15 and t.mags[0b0011000] == 1
    assert t.round(False, Fraction(17, 16))["half_even"] == 0b0011000     # tie to even
    assert t.round(False, Fraction(17, 16))["half_away"] == 0b0011001
    assert t.round(True, Fraction(1, 64))["half_even"] == 0b1000000       # -0
    assert t.round(True, Fraction(1, 64))["floor"] == 0b1000001
    assert t.round(False, Fraction(31, 2))["half_even"] == 0b0111000      # Inf
    assert t.round(False, Fraction(31, 2))["half_zero"] == 0b0110111      # max
    assert t.round(False, Fraction(1000))["trunc"] == 0b0110111
    assert t.round(True, Fraction(1000))["floor"] == 0b1111000


# -- formats -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", NAMED, ids=str)
def test_named_formats_match_numpy_finfo(fmt):
    info = ml_dtypes.finfo(fmt.dtype) if fmt is BF16 else np.finfo(fmt.dtype)
    assert fmt.width == info.bits and fmt.precision == info.nmant + 1
    assert fmt.man_bits == info.nmant and fmt.emin == info.minexp
    assert fmt.emax == info.maxexp - 1 and fmt.bias == fmt.emax
    values = fmt.values(np.array([fmt.max_bits, 1 << fmt.man_bits, 1, fmt.inf_bits,
                                  fmt.nan_bits]))
    assert values[0] == info.max and values[1] == info.smallest_normal
    assert values[2] == info.smallest_subnormal and values[3] == np.inf
    assert np.isnan(values[4])
    assert (fmt.nan_bits >> (fmt.man_bits - 1)) & 1 == 1    # quiet
    assert floats.float_format(fmt.name) is fmt


def test_float_format_names_and_custom_formats():
    assert floats.float_format("fp32") is FP32 and floats.float_format(BF16) is BF16
    assert floats.float_format("e8m23") is FP32
    assert floats.float_format("e8m7") is BF16 and floats.float_format("e5m10") is FP16
    e3m3 = floats.float_format("e3m3")
    assert (e3m3.width, e3m3.bias, e3m3.emin, e3m3.emax, e3m3.dtype) == (7, 3, -2, 3, None)
    assert (e3m3.inf_bits, e3m3.max_bits, e3m3.nan_bits) == (0b0111000, 0b0110111,
                                                             0b0111100)
    assert str(e3m3) == "e3m3" and floats.float_format("e2m13").width == 16
    assert floats.FORMATS == {"fp32": FP32, "bf16": BF16, "fp16": FP16}


@pytest.mark.parametrize("spec", ["fp64", "float32", "e9m2", "e1m3", "e3m0", "e8m10",
                                  "e5m11", "E3M3", "e3m3 ", "", 16, None])
def test_unknown_formats_are_refused_naming_the_parameter(spec):
    with pytest.raises(ValueError, match="^in_format: "):
        floats.float_format(spec, "in_format")


def test_format_fields_are_range_checked():
    with pytest.raises(ValueError, match="exp_bits"):
        floats.FloatFormat("bad", 1, 3)
    with pytest.raises(ValueError, match="man_bits"):
        floats.FloatFormat("bad", 3, 24)


# -- reading bit patterns ------------------------------------------------------------------

@pytest.mark.parametrize("fmt", (BF16, FP16), ids=str)
def test_every_16_bit_pattern_classifies_and_decomposes_as_numpy_reads_it(fmt):
    bits = np.arange(1 << 16, dtype=np.int64)
    v = value_of(bits, fmt)
    info = ml_dtypes.finfo(fmt.dtype) if fmt is BF16 else np.finfo(fmt.dtype)
    cls, sign = floats.classify(bits, fmt)
    expected = np.select([np.isnan(v), np.isinf(v), v == 0,
                          np.abs(v) < float(info.smallest_normal)],
                         [NAN, INF, ZERO, SUBNORMAL], NORMAL)
    assert cls.dtype == np.int8 and np.array_equal(cls, expected)
    assert np.array_equal(sign, np.signbit(v))
    assert np.count_nonzero(cls == SUBNORMAL) == 2 * ((1 << fmt.man_bits) - 1)
    negative, significand, exponent = floats.decompose(bits, fmt)
    assert np.array_equal(negative, sign)
    finite = np.isfinite(v)
    rebuilt = np.ldexp(significand.astype(np.float64), exponent)
    assert np.array_equal(np.where(negative, -rebuilt, rebuilt)[finite], v[finite])
    assert np.all(significand[~finite] == 0)
    normal = cls == NORMAL
    assert np.all((significand[normal] >> fmt.man_bits) == 1)
    assert np.all(significand[cls == SUBNORMAL] < 1 << fmt.man_bits)
    assert np.all(exponent[cls == SUBNORMAL] == fmt.emin - fmt.man_bits)
    assert np.array_equal(fmt.bits(fmt.values(bits)), bits)


def test_fp32_patterns_classify_and_decompose_as_numpy_reads_them():
    rng = np.random.default_rng(1)
    bits = np.concatenate([biased_bits(rng, 200_000, FP32),
                           np.array([0, 1 << 31, 0x7F7FFFFF, 0xFF800000, 0x7FC00000,
                                     0x807FFFFF, 0x00800000, 0x7F800001])])
    v = value_of(bits, FP32)
    cls, sign = floats.classify(bits, FP32)
    expected = np.select([np.isnan(v), np.isinf(v), v == 0,
                          np.abs(v) < float(np.finfo(np.float32).tiny)],
                         [NAN, INF, ZERO, SUBNORMAL], NORMAL)
    assert np.array_equal(cls, expected) and np.array_equal(sign, np.signbit(v))
    negative, significand, exponent = floats.decompose(bits, FP32)
    finite = np.isfinite(v)
    rebuilt = np.ldexp(significand.astype(np.float64), exponent)
    assert np.array_equal(np.where(negative, -rebuilt, rebuilt)[finite], v[finite])
    assert {int(c) for c in np.unique(cls)} == {ZERO, SUBNORMAL, NORMAL, INF, NAN}


@pytest.mark.parametrize("spec", SMALL + ("e2m13", "e6m9", "e7m8"))
def test_custom_patterns_decode_per_the_definition(spec):
    e, m = fields(spec)
    fmt = floats.float_format(spec)
    n = 1 << fmt.width
    bits = np.arange(n) if n <= 1 << 8 else \
        np.random.default_rng(2).integers(0, n, 3000)
    cls, sign = floats.classify(bits, fmt)
    negative, significand, exponent = floats.decompose(bits, fmt)
    names = {"zero": ZERO, "subnormal": SUBNORMAL, "normal": NORMAL, "inf": INF, "nan": NAN}
    for i, b in enumerate(bits.tolist()):
        kind, neg, value = textbook(b, e, m)
        assert (cls[i], sign[i], negative[i]) == (names[kind], neg, neg), (spec, b)
        if value is not None:
            magnitude = Fraction(int(significand[i])) * Fraction(2) ** int(exponent[i])
            assert (-magnitude if neg else magnitude) == value, (spec, b)
            assert floats.to_fraction(b, fmt) == value
        else:
            with pytest.raises(ValueError, match="bits"):
                floats.to_fraction(b, fmt)


@pytest.mark.parametrize("spec", sorted(ML8))
def test_8_bit_patterns_match_ml_dtypes(spec):
    fmt = floats.float_format(spec)
    bits = np.arange(256)
    v = bits.astype(np.uint8).view(ML8[spec]).astype(np.float64)
    cls, sign = floats.classify(bits, fmt)
    assert np.array_equal(cls == NAN, np.isnan(v)) and np.array_equal(cls == INF, np.isinf(v))
    assert np.array_equal(sign, np.signbit(v))
    for b in np.flatnonzero(np.isfinite(v)).tolist():
        assert floats.to_fraction(b, fmt) == Fraction(float(v[b]))


@pytest.mark.parametrize("fmt", NAMED, ids=str)
def test_to_fraction_is_the_exact_value(fmt):
    rng = np.random.default_rng(3)
    if fmt is FP32:
        bits = biased_bits(rng, 3000, fmt)
    else:
        bits = np.concatenate([np.arange(0, 1 << 16, 37), np.arange(0, 1 << fmt.man_bits),
                               fmt.max_bits - np.arange(40)])
    v = value_of(bits, fmt)
    for b, value in zip(bits.tolist(), v.tolist()):
        if math.isfinite(value):
            assert floats.to_fraction(np.int64(b), fmt) == Fraction(value), hex(b)
        else:
            with pytest.raises(ValueError, match="bits: "):
                floats.to_fraction(b, fmt)


def test_patterns_outside_the_width_are_refused():
    for bad in ([-1], [1 << 16], [0, 1 << 20]):
        with pytest.raises(ValueError, match="bits"):
            floats.classify(np.array(bad), FP16)
        with pytest.raises(ValueError, match="bits"):
            floats.decompose(np.array(bad), "fp16")


# -- converting arrays ---------------------------------------------------------------------

def test_as_bits_takes_patterns_own_dtype_and_python_numbers():
    assert floats.as_bits(np.array([0x3F80], np.uint16), BF16).tolist() == [0x3F80]
    assert floats.as_bits(np.array([0x7F], np.uint8), "e4m3").tolist() == [0x7F]
    assert floats.as_bits(np.array([1.5], ml_dtypes.bfloat16), BF16).tolist() == [0x3FC0]
    assert floats.as_bits(np.float16(-2.0), FP16).tolist() == 0xC000
    # Python numbers round half to even: 1 + 2**-8 is a bf16 tie, 1 + 3 * 2**-9 is not.
    assert floats.as_bits([1 + 2 ** -8, 1 + 3 * 2 ** -9, 3], BF16).tolist() == \
        [0x3F80, 0x3F81, 0x4040]
    with np.errstate(over="ignore"):
        assert floats.as_bits(1e6, FP16).tolist() == 0x7C00
    assert floats.as_bits(0.1, FP32).tolist() == int(np.float32(0.1).view(np.uint32))
    bits = floats.as_bits(np.arange(1 << 16, dtype=np.uint16).view(np.float16), FP16)
    assert bits.dtype == np.int64 and bits.tolist() == list(range(1 << 16))


@pytest.mark.parametrize("values,fmt,error", [
    (np.zeros(3), FP32, TypeError),                             # float64 array
    (np.zeros(3, np.float32), BF16, TypeError),                 # another format's dtype
    (np.zeros(3, np.float16), FP32, TypeError),
    (np.array([1, 2], np.int64), FP32, TypeError),              # signed integers
    (np.array([True]), FP16, TypeError),
    (np.array([0x80], np.uint8), "e3m3", ValueError),           # wider than 7 bits
    (np.array([1 << 16], np.uint32), BF16, ValueError),
    ([1.0], "e3m3", TypeError),                                 # no dtype to round to
])
def test_as_bits_refuses_what_would_round_silently(values, fmt, error):
    with pytest.raises(error, match="^x: "):
        floats.as_bits(values, floats.float_format(fmt), "x")


def test_bits_and_values_need_the_exact_dtype():
    with pytest.raises(TypeError, match="values"):
        FP16.bits(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="format"):
        floats.float_format("e3m3").values([1])
    v = FP32.values(np.array([0x3F800000, 0xFF800000]))
    assert v.dtype == np.float32 and v.tolist() == [1.0, -np.inf]


def test_bit_length_matches_python():
    rng = np.random.default_rng(4)
    v = np.concatenate([np.arange(0, 70), (np.int64(1) << np.arange(63)),
                        np.array([(1 << k) - 1 for k in range(1, 64)], dtype=np.int64),
                        rng.integers(0, 1 << 62, 5000) >> rng.integers(0, 62, 5000)])
    got = floats.bit_length(v)
    assert got.tolist() == [int(a).bit_length() for a in v.tolist()]
    assert floats.bit_length(np.array([[5, 0], [1 << 40, 3]])).tolist() == [[3, 0], [41, 2]]


@pytest.mark.parametrize("precision", [1, 2, 8, 11, 24, 53])
def test_round_precision_is_half_even_at_that_many_bits(precision):
    rng = np.random.default_rng(precision)
    v = np.concatenate([np.arange(0, 300), rng.integers(0, 1 << 62, 4000)
                        >> rng.integers(0, 60, 4000),
                        (np.int64(1) << np.arange(1, 62)) + (np.int64(1) << np.arange(0, 61))])
    got = floats.round_precision(v, precision).tolist()
    for a, g in zip(v.tolist(), got):
        drop = max(a.bit_length() - precision, 0)
        assert g == round(Fraction(a, 1 << drop)) << drop, (a, precision)
    if precision == 53:
        assert got == [int(float(a)) for a in v.tolist()]


# -- rounding an exact value ---------------------------------------------------------------

def exhaustive_dyadics(spec):
    """``(sign, significand, exponent)``: every significand of up to precision + 2 bits,
    at every exponent from well below the smallest subnormal to beyond the largest."""
    fmt = floats.float_format(spec)
    sig = np.arange(0, 1 << (fmt.precision + 2))
    exp = np.arange(fmt.emin - fmt.man_bits - fmt.precision - 3, fmt.emax + 2)
    sig, exp, sign = (a.reshape(-1) for a in np.meshgrid(sig, exp, [False, True],
                                                         indexing="ij"))
    return sign, sig, exp


def wide_dyadics(spec, n, seed):
    """Significands of up to 62 bits, scaled to land across the format's range."""
    fmt = floats.float_format(spec)
    rng = np.random.default_rng(seed)
    sig = rng.integers(1, 1 << 62, n, dtype=np.int64) >> rng.integers(0, 62, n)
    top = np.array([int(s).bit_length() for s in sig.tolist()])
    exp = rng.integers(fmt.emin - fmt.man_bits - 4, fmt.emax + 3, n) - top
    return rng.integers(0, 2, n).astype(bool), sig, exp


def dyadic(sig, exp):
    return Fraction(int(sig)) * Fraction(2) ** int(exp)


@pytest.mark.parametrize("spec", SMALL)
def test_round_scaled_exhaustive_small_formats(spec):
    table = Table(spec)
    sign, sig, exp = (np.concatenate(pair) for pair in
                      zip(exhaustive_dyadics(spec), wide_dyadics(spec, 1500, len(spec))))
    expected = [table.round(bool(s), dyadic(m, e))
                for s, m, e in zip(sign.tolist(), sig.tolist(), exp.tolist())]
    for mode in DETERMINISTIC_MODES:
        got = floats.round_scaled(sign, sig, exp, spec, mode)
        assert got.dtype == np.int64
        want = [row[mode] for row in expected]
        bad = np.flatnonzero(got != np.array(want))
        assert bad.size == 0, [(mode, bool(sign[i]), int(sig[i]), int(exp[i]),
                                int(got[i]), want[i]) for i in bad[:5]]


@pytest.mark.parametrize("spec", SMALL)
def test_round_scaled_with_sticky_exhaustive_small_formats(spec):
    """A sticky value is (significand + e) * 2**exponent for some 0 < e < 1: the
    reference takes e = 1/2, which no neighbour or tie can tell from any other e."""
    fmt = floats.float_format(spec)
    table = Table(spec)
    sign, sig, exp = exhaustive_dyadics(spec)
    deep = exp < fmt.emin - fmt.man_bits                # the result's last place is above
    keep = (sig >= 1 << fmt.precision) | (deep & (sig > 0))
    sign, sig, exp = sign[keep], sig[keep], exp[keep]
    expected = [table.round(bool(s), (Fraction(int(m)) + Fraction(1, 2)) * Fraction(2) ** int(e))
                for s, m, e in zip(sign.tolist(), sig.tolist(), exp.tolist())]
    for mode in DETERMINISTIC_MODES:
        got = floats.round_scaled(sign, sig, exp, fmt, mode, sticky=True)
        assert got.tolist() == [row[mode] for row in expected], mode


def test_sticky_needs_a_rounding_bit_below_the_last_place():
    # 5 * 2**0 in e3m3 (precision 4) is exact with 3 bits: no room for a remainder.
    with pytest.raises(ValueError, match="sticky"):
        floats.round_scaled(False, 5, 0, "e3m3", sticky=True)
    with pytest.raises(ValueError, match="sticky"):
        floats.round_scaled([False, False], [1 << 24, 1 << 23], 0, FP32,
                            sticky=[True, True])
    # Below the subnormals' last place any significand has room.
    assert floats.round_scaled(False, 1, -6, "e3m3", "half_even", sticky=True) == 1


def test_round_scaled_signed_zeros_and_overflow_per_mode():
    neg = 1 << 15
    tiny = (True, 1, -60)                     # -2**-60: far below fp16's subnormals
    assert floats.round_scaled(True, 0, 0, FP16) == neg
    assert floats.round_scaled(False, 0, -100, FP16) == 0
    assert floats.round_scaled(*tiny, FP16, "trunc") == neg
    assert floats.round_scaled(*tiny, FP16, "half_away") == neg
    assert floats.round_scaled(*tiny, FP16, "floor") == neg | 1
    assert floats.round_scaled(False, 1, -60, FP16, "floor") == 0
    huge = {mode: (int(floats.round_scaled(False, 1, 200, FP16, mode)),
                   int(floats.round_scaled(True, 1, 200, FP16, mode)))
            for mode in DETERMINISTIC_MODES}
    for mode in NEAREST_MODES:
        assert huge[mode] == (0x7C00, neg | 0x7C00)
    assert huge["floor"] == (0x7BFF, neg | 0x7C00)
    assert huge["trunc"] == (0x7BFF, neg | 0x7BFF)
    # max + half an ulp: a tie, to Inf except where ties go toward zero.
    sig, exp = 2 * 0x7FF + 1, 15 - 11
    got = {m: int(floats.round_scaled(False, sig, exp, FP16, m)) for m in NEAREST_MODES}
    assert got == {"half_even": 0x7C00, "half_away": 0x7C00, "half_up": 0x7C00,
                   "half_down": 0x7BFF, "half_zero": 0x7BFF}


def test_round_scaled_refuses_bad_arguments():
    with pytest.raises(ValueError, match="rounding"):
        floats.round_scaled(False, 1, 0, FP32, "stochastic")
    with pytest.raises(ValueError, match="rounding"):
        floats.round_scaled(False, 1, 0, FP32, "nearest")
    with pytest.raises(ValueError, match="significand"):
        floats.round_scaled(False, -1, 0, FP32)
    with pytest.raises(ValueError, match="significand"):
        floats.round_scaled(False, 1 << 62, 0, FP32)
    with pytest.raises(ValueError, match="format"):
        floats.round_scaled(False, 1, 0, "fp64")


@pytest.mark.parametrize("fmt", NAMED, ids=str)
def test_round_scaled_half_even_matches_numpy_casts(fmt):
    """A significand of at most 53 bits is exact in float64; NumPy's and ml_dtypes'
    float64 casts to float32 / bfloat16 / float16 round it correctly (to Inf on
    overflow)."""
    rng = np.random.default_rng(5)
    n = 100_000
    sig = rng.integers(0, 1 << 53, n) >> rng.integers(0, 53, n)
    sig[:64] = np.arange(64)
    top = floats.bit_length(sig)
    exp = rng.integers(fmt.emin - fmt.man_bits - 3, fmt.emax + 3, n) - top
    sign = rng.integers(0, 2, n).astype(bool)
    value = np.ldexp(sig.astype(np.float64), exp)
    value = np.where(sign, -value, value)
    with np.errstate(over="ignore"):
        expected = pattern_of(value, fmt)
    got = floats.round_scaled(sign, sig, exp, fmt)
    check_against_numpy(got, expected, fmt)
    # The sample reaches every class of result.
    assert {int(c) for c in np.unique(floats.classify(got, fmt)[0])} == \
        {ZERO, SUBNORMAL, NORMAL, INF}


@pytest.mark.parametrize("fmt", NAMED, ids=str)
def test_round_scaled_every_mode_on_wide_significands(fmt):
    sign, sig, exp = wide_dyadics(fmt.name, 1500, 6)
    sticky = (floats.bit_length(sig) > fmt.precision + 1) & (np.arange(sig.size) % 2 == 0)
    for mode in DETERMINISTIC_MODES:
        got = floats.round_scaled(sign, sig, exp, fmt, mode, sticky=sticky).tolist()
        for i in range(sig.size):
            a = (int(sig[i]) + Fraction(1, 3) * bool(sticky[i])) * Fraction(2) ** int(exp[i])
            assert got[i] == round_fraction(bool(sign[i]), a, fmt.name, mode), \
                (mode, int(sig[i]), int(exp[i]), bool(sticky[i]))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 62) - 1), st.integers(-200, 100),
       st.integers(0, (1 << 62) - 1), st.integers(-200, 100), st.booleans(),
       st.sampled_from(DETERMINISTIC_MODES), st.sampled_from(["fp32", "bf16", "e4m3"]))
def test_round_scaled_is_monotone(sig1, exp1, sig2, exp2, negative, mode, spec):
    fmt = floats.float_format(spec)
    if dyadic(sig1, exp1) > dyadic(sig2, exp2):
        sig1, exp1, sig2, exp2 = sig2, exp2, sig1, exp1
    got = floats.round_scaled(negative, [sig1, sig2], [exp1, exp2], fmt, mode).tolist()
    lo, hi = [(-math.inf if negative else math.inf) if floats.classify(g, fmt)[0] == INF
              else floats.to_fraction(g, fmt) for g in got]
    assert (lo >= hi) if negative else (lo <= hi)


# -- rounding a rational -------------------------------------------------------------------

@pytest.mark.parametrize("spec,top", [("e2m1", 16), ("e3m3", 32)])
def test_round_rational_exhaustive_small(spec, top):
    fmt = floats.float_format(spec)
    table = Table(spec)
    num, den, exp, sign = (a.reshape(-1) for a in np.meshgrid(
        np.arange(0, top), np.arange(1, top), np.arange(fmt.emin - fmt.man_bits - 5,
                                                      fmt.emax + 2),
        [False, True], indexing="ij"))
    expected = [table.round(bool(s), Fraction(int(n), int(d)) * Fraction(2) ** int(e))
                for s, n, d, e in zip(sign.tolist(), num.tolist(), den.tolist(),
                                      exp.tolist())]
    for mode in DETERMINISTIC_MODES:
        got = floats.round_rational(sign, num, den, exp, spec, mode)
        assert got.tolist() == [row[mode] for row in expected], mode


def test_round_rational_fp32_matches_numpy_division():
    """num, den < 2**24 are exact in float32, and so are num * 2**a, den * 2**b when they
    stay normal; float32 division then rounds num / den * 2**(a - b) correctly."""
    rng = np.random.default_rng(7)
    n = 200_000
    num = rng.integers(0, 1 << 24, n) >> rng.integers(0, 24, n)
    den = (rng.integers(1, 1 << 24, n) >> rng.integers(0, 24, n)) + 1
    a = rng.integers(-100, 100, n)
    b = rng.integers(-100, 100, n)
    sign = rng.integers(0, 2, n).astype(bool)
    x = np.ldexp(num.astype(np.float32), a)
    y = np.ldexp(den.astype(np.float32), b)
    assert np.array_equal(x.astype(np.float64), np.ldexp(num.astype(np.float64), a))
    with np.errstate(all="ignore"):
        q = np.where(sign, -x, x) / y
    got = floats.round_rational(sign, num, den, a - b, FP32)
    check_against_numpy(got, FP32.bits(q.astype(np.float32)), FP32)


def test_round_rational_every_mode_wide_operands():
    rng = np.random.default_rng(8)
    n = 800
    num = rng.integers(0, 1 << 31, n) >> rng.integers(0, 31, n)
    den = (rng.integers(1, 1 << 31, n) >> rng.integers(0, 31, n)) + 1
    exp = rng.integers(-170, 140, n)
    sign = rng.integers(0, 2, n).astype(bool)
    for spec in ("fp32", "bf16", "fp16"):
        for mode in DETERMINISTIC_MODES:
            got = floats.round_rational(sign, num, den, exp, spec, mode).tolist()
            for i in range(n):
                a = Fraction(int(num[i]), int(den[i])) * Fraction(2) ** int(exp[i])
                assert got[i] == round_fraction(bool(sign[i]), a, spec, mode), \
                    (spec, mode, int(num[i]), int(den[i]), int(exp[i]))


def test_round_rational_refuses_out_of_range_operands():
    for num, den in ((1, 0), (1, -3), (-1, 3), (1 << 31, 3), (1, 1 << 31)):
        with pytest.raises(ValueError, match="num, den"):
            floats.round_rational(False, num, den, 0, FP32)


# -- division ------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["e2m1", "e2m2", "e3m2", "e3m3"])
def test_divide_exhaustive_small_formats_every_mode(spec):
    e, m = fields(spec)
    table = Table(spec)
    n = 1 << (1 + e + m)
    x, y = (a.reshape(-1) for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    expected = []
    for xb, yb in zip(x.tolist(), y.tolist()):
        special = special_quotient(xb, yb, e, m)
        if special is not None:
            expected.append(special)
            continue
        _, xn, xv = textbook(xb, e, m)
        _, yn, yv = textbook(yb, e, m)
        expected.append(table.round(xn ^ yn, abs(xv / yv)))
    nan_bits = floats.float_format(spec).nan_bits
    for mode in DETERMINISTIC_MODES:
        got = floats.divide(x, y, spec, mode).tolist()
        want = [nan_bits if row == "nan" else row if isinstance(row, int) else row[mode]
                for row in expected]
        assert got == want, mode


@pytest.mark.parametrize("spec", sorted(ML8))
def test_divide_8_bit_formats_matches_ml_dtypes(spec):
    fmt = floats.float_format(spec)
    x, y = (a.reshape(-1) for a in np.meshgrid(np.arange(256), np.arange(256),
                                               indexing="ij"))
    dtype = ML8[spec]
    with np.errstate(all="ignore"):
        q = x.astype(np.uint8).view(dtype) / y.astype(np.uint8).view(dtype)
    expected = q.astype(dtype).view(np.uint8).astype(np.int64)
    check_against_numpy(floats.divide(x, y, fmt), expected, fmt)


def numpy_divide(x, y, fmt):
    with np.errstate(all="ignore"):
        q = fmt.values(x) / fmt.values(y)
    assert q.dtype == fmt.dtype
    return fmt.bits(q)


def test_divide_fp32_matches_numpy_on_random_pairs():
    rng = np.random.default_rng(9)
    n = 150_000
    x = biased_bits(rng, 3 * n, FP32)
    y = np.concatenate([biased_bits(rng, n, FP32), close_to(rng, x[n:2 * n], FP32),
                        rng.integers(0, 1 << 32, n)])
    got = floats.divide(x, y, FP32)
    check_against_numpy(got, numpy_divide(x, y, FP32), FP32)
    cls = floats.classify(got, FP32)[0]
    assert {int(c) for c in np.unique(cls)} == {ZERO, SUBNORMAL, NORMAL, INF, NAN}


@pytest.mark.parametrize("fmt", (BF16, FP16), ids=str)
def test_divide_16_bit_matches_numpy_and_ml_dtypes(fmt):
    """Every dividend over a few divisors (ordinary, subnormal, largest, one, specials),
    then random pairs biased to close exponents. NumPy's float16 and ml_dtypes'
    bfloat16 divide in float32 and round again, which is exact for these precisions."""
    rng = np.random.default_rng(10)
    every = np.arange(1 << 16)
    divisors = pattern_of(np.array([0.3, 1.0, -3.0, 1e-3]), fmt).tolist() + \
        [1, 3, (1 << fmt.man_bits) - 1, fmt.max_bits, fmt.max_bits | 1 << 15, 0,
         fmt.inf_bits, fmt.nan_bits]
    x = np.concatenate([np.tile(every, len(divisors)), biased_bits(rng, 200_000, fmt)])
    y = np.concatenate([np.repeat(divisors, every.size), close_to(rng, x[-200_000:], fmt)])
    check_against_numpy(floats.divide(x, y, fmt), numpy_divide(x, y, fmt), fmt)


@pytest.mark.parametrize("fmt", NAMED, ids=str)
def test_divide_every_mode_against_fractions(fmt):
    rng = np.random.default_rng(11)
    n = 700
    x = biased_bits(rng, n, fmt)
    y = np.where(np.arange(n) % 2 == 0, close_to(rng, x, fmt), biased_bits(rng, n, fmt))
    xv, yv = value_of(x, fmt), value_of(y, fmt)
    for mode in DETERMINISTIC_MODES:
        got = floats.divide(x, y, fmt, mode).tolist()
        for i in range(n):
            special = special_quotient(int(x[i]), int(y[i]), fmt.exp_bits, fmt.man_bits)
            if special == "nan":
                want = fmt.nan_bits
            elif special is not None:
                want = special
            else:
                negative = bool(np.signbit(xv[i]) ^ np.signbit(yv[i]))
                want = round_fraction(negative, abs(Fraction(xv[i]) / Fraction(yv[i])),
                                      fmt.name, mode)
            assert got[i] == want, (mode, hex(int(x[i])), hex(int(y[i])))


def test_divide_special_operands():
    one, two, zero, inf, nan = 0x3C00, 0x4000, 0x0000, 0x7C00, 0x7E00
    neg = 0x8000
    cases = {(one, zero): inf, (one, neg | zero): neg | inf, (neg | two, zero): neg | inf,
             (zero, zero): nan, (inf, inf): nan, (neg | inf, inf): nan,
             (0x7C01, one): nan, (one, 0xFE00): nan, (inf, zero): inf,
             (inf, neg | two): neg | inf, (two, inf): zero, (two, neg | inf): neg,
             (neg | zero, one): neg, (zero, neg | one): neg, (two, two): one,
             (one, two): 0x3800}
    x, y = np.array(list(cases)).T
    assert floats.divide(x, y, FP16).tolist() == list(cases.values())
    assert floats.divide(x, y, FP16, "floor").tolist() == list(cases.values())


def test_divide_is_symmetric_in_the_sign():
    """Negating the dividend negates the result in the sign-symmetric modes and swaps
    ties-up with ties-down; dividing by one is the identity in every mode."""
    rng = np.random.default_rng(12)
    x = biased_bits(rng, 40_000, FP32)
    y = np.where(rng.integers(0, 2, x.size) == 0, close_to(rng, x, FP32),
                 biased_bits(rng, x.size, FP32))
    sign = 1 << 31
    got = {m: floats.divide(x, y, FP32, m) for m in DETERMINISTIC_MODES}
    neg = {m: floats.divide(x ^ sign, y, FP32, m) for m in DETERMINISTIC_MODES}
    nan = got["half_even"] == FP32.nan_bits
    assert 0 < nan.sum() < x.size // 4
    for m in DETERMINISTIC_MODES:
        assert np.array_equal(got[m] == FP32.nan_bits, nan)
        assert np.array_equal(neg[m] == FP32.nan_bits, nan)
    for m in ("half_even", "half_away", "half_zero", "trunc"):
        assert np.array_equal(neg[m][~nan], got[m][~nan] ^ sign)
    assert np.array_equal(neg["half_up"][~nan], got["half_down"][~nan] ^ sign)
    assert np.array_equal(neg["half_down"][~nan], got["half_up"][~nan] ^ sign)
    number = floats.classify(x, FP32)[0] != NAN
    for m in DETERMINISTIC_MODES:
        assert np.array_equal(floats.divide(x, 0x3F800000, FP32, m)[number], x[number])


# -- add, round_integer, from_fraction -------------------------------------------------------

def special_sum(x, y, e, m, mode):
    """IEEE addition's result for NaN / Inf operands and exact zero sums, or None."""
    xk, xn, xv = textbook(x, e, m)
    yk, yn, yv = textbook(y, e, m)
    inf = ((1 << e) - 1) << m
    if "nan" in (xk, yk) or (xk == yk == "inf" and xn != yn):
        return "nan"
    if "inf" in (xk, yk):
        return inf | (int(xn if xk == "inf" else yn) << (e + m))
    if xv + yv == 0:
        negative = (xn and yn) or (mode == "floor" and (xn or yn))
        return int(negative) << (e + m)
    return None


@pytest.mark.parametrize("spec", ("e2m2", "e3m3", "e5m2"))
def test_add_exhaustive_small_formats_every_mode(spec):
    e, m = fields(spec)
    table = Table(spec)
    n = 1 << (1 + e + m)
    x, y = (a.reshape(-1) for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    nan_bits = floats.float_format(spec).nan_bits
    rounded = []                                  # {mode: bits} of each finite sum
    for xb, yb in zip(x.tolist(), y.tolist()):
        total = None if special_sum(xb, yb, e, m, "trunc") is not None else \
            textbook(xb, e, m)[2] + textbook(yb, e, m)[2]
        rounded.append(None if total is None else table.round(total < 0, abs(total)))
    for mode in DETERMINISTIC_MODES:
        want = [row[mode] if row is not None else special_sum(xb, yb, e, m, mode)
                for row, xb, yb in zip(rounded, x.tolist(), y.tolist())]
        want = [nan_bits if w == "nan" else w for w in want]
        assert floats.add(x, y, spec, mode).tolist() == want, mode


def test_add_fp32_matches_numpy_on_random_pairs():
    rng = np.random.default_rng(11)
    n = 60_000
    x = biased_bits(rng, 2 * n, FP32)
    y = np.concatenate([biased_bits(rng, n, FP32), close_to(rng, x[n:], FP32) ^ (1 << 31)])
    with np.errstate(all="ignore"):
        want = FP32.bits(FP32.values(x) + FP32.values(y))
    check_against_numpy(floats.add(x, y, FP32), want, FP32)


@settings(max_examples=300, deadline=None)
@given(st.fractions(), st.sampled_from(DETERMINISTIC_MODES))
def test_from_fraction_rounds_once(value, mode):
    """Against the binade formula, for any rational, FP32 and a small format."""
    for spec in ("fp32", "e3m3"):
        got = floats.from_fraction(value, spec, mode)
        assert got == round_fraction(value < 0, abs(value), spec, mode)


@pytest.mark.parametrize("mode", ("half_even", "trunc", "floor"))
def test_round_integer_takes_magnitudes_beyond_62_bits(mode):
    """Bits beyond 62 become sticky: a tie plus a far bit is above the tie."""
    big = [(1 << 200) + 1, (3 << 100) | (1 << 76), 1 << 76, ((1 << 25) + 1) << 80 | 1]
    shifts = [200, 150, 76, 100]
    got = floats.round_integer(np.ones(4, bool), np.array(big, dtype=object),
                               -np.array(shifts), FP32, mode)
    want = [round_fraction(True, Fraction(b) * Fraction(2) ** -s, "fp32", mode)
            for b, s in zip(big, shifts)]
    assert got.tolist() == want
