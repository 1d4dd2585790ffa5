"""Golden ONNX QuantizeLinear against exact Fractions and NumPy / ml_dtypes arithmetic.

Independent references, per rounding model:

``"exact"``
    ``x / s`` as an exact rational (Python integers from ``float.as_integer_ratio``, or
    ``Fraction``), rounded by each mode's textbook formula (``floor(v + 1/2)``,
    ``ceil(v - 1/2)``, ...), then ``+ z`` and clipped.
``"onnx"``
    the quotient ``fl(x / s)`` computed by NumPy / ml_dtypes in the input's dtype,
    converted exactly to float64 (or a Fraction) and rounded half to even (``np.rint``),
    then ``+ z`` and clipped; NaN gives ``qmin``, ``±Inf`` saturates (the module's
    documented semantics).

Every BF16 and every FP16 input is run for several scales; the 8-bit custom formats for
every pair of input and scale bit patterns.
"""

from fractions import Fraction
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from qdp.golden import floats
from qdp.golden.quantize_linear import (ROUNDING_MODELS, quantize_linear,
                                        quantize_linear_bits)
from qdp.golden.rounding import DETERMINISTIC_MODES, NEAREST_MODES

from _reference import TWO32, ref_round

DTYPES = {"fp32": np.float32, "bf16": ml_dtypes.bfloat16, "fp16": np.float16}
UINT = {"fp32": np.uint32, "bf16": np.uint16, "fp16": np.uint16}
ML8 = {"e4m3": ml_dtypes.float8_e4m3, "e5m2": ml_dtypes.float8_e5m2,
       "e3m4": ml_dtypes.float8_e3m4}
#: Scales as bit patterns: ordinary, one, ties galore (a power of two, and 3/4), a
#: subnormal, one ulp below the largest finite value.
SCALES = {
    "bf16": {"ordinary": 0x3D18, "one": 0x3F80, "eighth": 0x3E00, "three_quarters": 0x3F40,
             "subnormal": 0x0003, "near_max": 0x7F7E},
    "fp16": {"ordinary": 0x2A3D, "one": 0x3C00, "eighth": 0x3000, "three_quarters": 0x3A00,
             "subnormal": 0x0005, "near_max": 0x7BFE},
}
#: (out_width, out_signed, zero points): the ends of each range, and zero.
OUTPUTS = [(8, True, (-128, 127)), (8, False, (0, 255)), (4, True, (-8, 7)),
           (4, False, (15,)), (16, True, (-32768,)), (16, False, (65535,))]


def out_range(width, signed):
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)


def every(spec):
    """All 65,536 values of a 16-bit format (NaNs and infinities included)."""
    return np.arange(1 << 16, dtype=np.uint16).view(DTYPES[spec])


def as_float64(values):
    with np.errstate(invalid="ignore"):
        return np.asarray(values).astype(np.float64)


def scale_value(spec, bits):
    return np.array(bits, dtype=UINT[spec]).view(DTYPES[spec])


# -- references ----------------------------------------------------------------------------

class Exact:
    """``v = x / s`` exactly, for finite ``x`` and finite nonzero ``s`` (float64 arrays
    holding the exact values): ``floor(v)`` (clipped far beyond any output range), how
    the fractional part compares with 1/2, and the rational itself."""

    def __init__(self, x64, s64):
        x64, s64 = np.broadcast_arrays(x64, s64)
        self.ok = np.isfinite(x64) & np.isfinite(s64) & (s64 != 0)
        self.fraction_pairs = []
        floor, cmp, rem = [], [], []
        for a, b, ok in zip(x64.tolist(), s64.tolist(), self.ok.tolist()):
            if not ok:
                self.fraction_pairs.append((0, 1))
                floor.append(0)
                cmp.append(-1)
                rem.append(False)
                continue
            p, q = a.as_integer_ratio()
            c, d = b.as_integer_ratio()
            num, den = p * d, q * c
            if den < 0:
                num, den = -num, -den
            f, r = divmod(num, den)
            self.fraction_pairs.append((num, den))
            floor.append(max(min(f, 1 << 40), -(1 << 40)))
            cmp.append((2 * r > den) - (2 * r < den))
            rem.append(r != 0)
        self.floor = np.array(floor, dtype=np.int64)
        self.cmp = np.array(cmp, dtype=np.int64)
        self.inexact = np.array(rem, dtype=bool)
        with np.errstate(all="ignore"):
            self.special = x64 / s64          # IEEE's quotient: Inf, NaN, signed zero

    def rounded(self, mode, r=None):
        """Each mode by its textbook formula, as float64 (specials from IEEE)."""
        fl, cmp = self.floor, self.cmp
        negative = fl < 0
        half_up = fl + (cmp >= 0)                  # floor(v + 1/2)
        half_down = fl + (cmp > 0)                 # ceil(v - 1/2)
        if mode == "stochastic":
            got = np.array([(n * TWO32 + int(ri) * d) // (d * TWO32)
                            for (n, d), ri in zip(self.fraction_pairs, r.tolist())],
                           dtype=object)
            got = np.clip(got, -(1 << 40), 1 << 40).astype(np.int64)
        else:
            got = {"half_up": half_up, "half_down": half_down,
                   "half_away": np.where(negative, half_down, half_up),
                   "half_zero": np.where(negative, half_up, half_down),
                   "half_even": np.where(cmp == 0, fl + (fl % 2), half_up),
                   "floor": fl, "trunc": fl + (negative & self.inexact)}[mode]
        return np.where(self.ok, got.astype(np.float64), np.rint(self.special))


def onnx_quotient(x, s):
    """ONNX's ``rint`` input: ``x / s`` in the inputs' own dtype, exactly as float64."""
    with np.errstate(all="ignore"):
        q = x / s
    assert q.dtype == np.result_type(x, s) == x.dtype
    return as_float64(q)


def finish(rounded, z, width, signed):
    """``saturate(rounded + z)``; NaN gives qmin. ``rounded`` is float64 (integers,
    ``±Inf`` or NaN), exact up to 2**53."""
    qmin, qmax = out_range(width, signed)
    y = np.clip(rounded + z, qmin, qmax)
    return np.where(np.isnan(rounded), qmin, y).astype(np.int64)


def assert_same(got, want, x, what):
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (what, [(x.reshape(-1)[i], int(got.reshape(-1)[i]),
                                   int(want.reshape(-1)[i])) for i in bad[:5]])


def test_reference_formulas_agree_with_fractions():
    x = np.array([-2.5, -1.5, -0.5, -0.25, 0.0, 0.25, 0.5, 1.5, 2.5, 2.75, -2.75, 7.0])
    exact = Exact(x, np.ones_like(x))
    for mode in DETERMINISTIC_MODES:
        assert exact.rounded(mode).tolist() == [ref_round(Fraction(v), mode) for v in x]
    r = np.array([0, 1, TWO32 - 1, 1 << 31] * 3)
    assert exact.rounded("stochastic", r).tolist() == \
        [ref_round(Fraction(v), "stochastic", int(ri)) for v, ri in zip(x, r)]


# -- exhaustive 16-bit inputs --------------------------------------------------------------

@pytest.mark.parametrize("spec", ["bf16", "fp16"])
@pytest.mark.parametrize("scale", ["ordinary", "one", "three_quarters", "subnormal",
                                   "near_max"])
def test_every_16_bit_input_both_models(spec, scale):
    """Every x for each scale, out_width 16 (the widest range shows the rounded value),
    the onnx model and the exact model in every deterministic mode; the results are
    monotone in x."""
    x = every(spec)
    s = scale_value(spec, SCALES[spec][scale])
    x64 = as_float64(x)
    got = quantize_linear(x, s, in_format=spec, out_width=16)
    assert got.dtype == np.int64 and got.shape == x.shape
    assert_same(got, finish(np.rint(onnx_quotient(x, s)), 0, 16, True), x, "onnx")
    exact = Exact(x64, float(s))
    order = np.argsort(x64[~np.isnan(x64)], kind="stable")
    # Scale one makes every quotient exact, and the extreme scales leave few quotients
    # between saturation and the first integers: fewer modes suffice there.
    modes = {"one": ("half_even", "floor", "trunc"),
             "subnormal": ("half_even", "half_up", "floor", "trunc"),
             "near_max": ("half_away", "half_down", "floor", "trunc")}.get(
                 scale, DETERMINISTIC_MODES)
    for mode in modes:
        got = quantize_linear(x, s, 0, in_format=spec, out_width=16,
                              rounding_model="exact", rounding=mode)
        assert_same(got, finish(exact.rounded(mode), 0, 16, True), x, mode)
        assert np.all(np.diff(got[~np.isnan(x64)][order]) >= 0), mode


@pytest.mark.parametrize("spec,scale", [("bf16", "ordinary"), ("fp16", "three_quarters")])
def test_every_16_bit_input_every_output_range_and_zero_point(spec, scale):
    x = every(spec)
    s = scale_value(spec, SCALES[spec][scale])
    onnx = np.rint(onnx_quotient(x, s))
    exact = Exact(as_float64(x), float(s)).rounded("half_even")
    nan = np.isnan(as_float64(x))
    for width, signed, zero_points in OUTPUTS:
        qmin, qmax = out_range(width, signed)
        for z in zero_points:
            for model, rounded in (("onnx", onnx), ("exact", exact)):
                got = quantize_linear(x, s, z, in_format=spec, out_width=width,
                                      out_signed=signed, rounding_model=model)
                assert_same(got, finish(rounded, z, width, signed), x, (model, width, z))
                assert np.all(got[nan] == qmin)
                assert got[np.isposinf(as_float64(x))].tolist() == [qmax]
                assert got[np.isneginf(as_float64(x))].tolist() == [qmin]


@pytest.mark.parametrize("spec,scale,modes", [
    ("fp16", "three_quarters", ("half_even", "half_down", "trunc", "stochastic")),
    ("bf16", "subnormal", ("floor",)), ("bf16", "near_max", ("stochastic",))])
def test_exact_model_is_the_fraction_rounded_once(spec, scale, modes):
    """One Fraction per element: x / s exactly, rounded by the house reference."""
    x = every(spec)
    s = scale_value(spec, SCALES[spec][scale])
    x64 = as_float64(x)
    finite = np.isfinite(x64)
    sv = Fraction(float(s))
    quotients = [Fraction(v) / sv for v in x64[finite].tolist()]
    r = np.random.default_rng(1).integers(0, TWO32, x.size)
    r[:64] = [0, 1, TWO32 - 1, 1 << 31] * 16
    rr = r[finite].tolist()
    for mode in modes:
        got = quantize_linear(x, s, -3, in_format=spec, out_width=16,
                              rounding_model="exact", rounding=mode,
                              random=r if mode == "stochastic" else None)
        want = [min(max(ref_round(v, mode, rr[i] if mode == "stochastic" else None) - 3,
                        -32768), 32767) for i, v in enumerate(quotients)]
        assert got[finite].tolist() == want, mode


def test_onnx_model_is_half_even_of_the_rounded_quotient_as_a_fraction():
    x = every("fp16")
    s = scale_value("fp16", SCALES["fp16"]["ordinary"])
    q = onnx_quotient(x, s)
    finite = np.isfinite(q)
    want = [min(max(round(Fraction(v)) + 5, -128), 127) for v in q[finite].tolist()]
    got = quantize_linear(x, s, 5, in_format="fp16")
    assert got[finite].tolist() == want
    # The two models differ, and only where the float quotient crossed a half-integer.
    exact = quantize_linear(x, s, 5, in_format="fp16", rounding_model="exact")
    differ = np.flatnonzero(exact != got)
    assert differ.size > 0
    for i in differ.tolist():
        v = Fraction(float(x[i])) / Fraction(float(s))
        assert abs(abs(v - math.floor(v)) - Fraction(1, 2)) <= abs(v) * Fraction(1, 2 ** 11)
        assert abs(int(exact[i]) - int(got[i])) == 1


def test_onnx_quotients_that_overflow_the_format_saturate():
    # fp16: 60000 / 2**-24 overflows to Inf in float16; its sign decides the end.
    x = np.array([60000, 1.0, -60000, -1.0, 2 ** -24, 0.0], np.float16)
    s = np.float16(2 ** -24)
    for model in ROUNDING_MODELS:
        assert quantize_linear(x, s, 3, in_format="fp16", rounding_model=model).tolist() \
            == [127, 127, -128, -128, 4, 3]
    # bf16: the largest value over the smallest subnormal.
    big = np.array([3e38, -3e38], ml_dtypes.bfloat16)
    tiny = scale_value("bf16", 1)
    assert quantize_linear(big, tiny, in_format="bf16", out_signed=False,
                           out_width=4).tolist() == [15, 0]


@pytest.mark.parametrize("spec,scale", [("bf16", "ordinary"), ("fp16", "eighth")])
def test_stochastic_exact_model_every_16_bit_input(spec, scale):
    x = every(spec)
    s = scale_value(spec, SCALES[spec][scale])
    exact = Exact(as_float64(x), float(s))
    rng = np.random.default_rng(2)
    for r in (np.zeros(x.size, np.int64), np.full(x.size, TWO32 - 1),
              rng.integers(0, TWO32, x.size)):
        got = quantize_linear(x, s, 1, in_format=spec, rounding_model="exact",
                              rounding="stochastic", random=r)
        assert_same(got, finish(exact.rounded("stochastic", r), 1, 8, True), x, r[:2])


def test_stochastic_threshold_is_exact():
    # x / s = 1/3 * 2 = 2/3: carries iff r / 2**32 >= 1/3.
    s = np.float32(1.5)
    threshold = -(-TWO32 // 3)
    x = np.ones(4, np.float32)
    got = quantize_linear(x, s, rounding_model="exact", rounding="stochastic",
                          random=[threshold - 1, threshold, 0, TWO32 - 1])
    assert got.tolist() == [0, 1, 0, 1]
    got = quantize_linear(-x, s, rounding_model="exact", rounding="stochastic",
                          random=[0, TWO32 // 3, -(-2 * TWO32 // 3), TWO32 - 1])
    assert got.tolist() == [-1, -1, 0, 0]


# -- FP32 inputs ---------------------------------------------------------------------------

def fp32_inputs(rng, n, s):
    """Random float32 x: uniform patterns, multiples and half-multiples of s with their
    neighbours, values near the saturation edges and near 2**31 * s."""
    k = rng.integers(-70_000, 70_000, n).astype(np.float32)
    kind = rng.integers(0, 5, n)
    with np.errstate(over="ignore"):
        near = np.select([kind == 0, kind == 1, kind == 2],
                         [k * s, (k + np.float32(0.5)) * s,
                          np.float32(2.0) ** rng.integers(20, 34, n).astype(np.float32) * s],
                         rng.integers(0, 1 << 32, n).astype(np.uint32).view(np.float32))
    step = rng.integers(-2, 3, n)
    bits = near.view(np.uint32).astype(np.int64)
    moved = np.where(kind < 3, bits + step, bits) & 0xFFFFFFFF
    return moved.astype(np.uint32).view(np.float32)


@pytest.mark.parametrize("s", [np.float32(0.1), np.float32(1.0), np.float32(3e-39),
                               np.float32(2.0 ** -20 * 3), np.float32(3.3e38)], ids=str)
def test_fp32_inputs_both_models(s):
    rng = np.random.default_rng(int(s.view(np.uint32)))
    x = fp32_inputs(rng, 15_000, s)
    x64 = as_float64(x)
    got = quantize_linear(x, s, 7, out_width=16)
    assert_same(got, finish(np.rint(onnx_quotient(x, s)), 7, 16, True), x, "onnx")
    exact = Exact(x64, float(s))
    for mode in ("half_even", "half_down", "floor", "trunc"):
        got = quantize_linear(x, s, 7, out_width=16, rounding_model="exact", rounding=mode)
        assert_same(got, finish(exact.rounded(mode), 7, 16, True), x, mode)


def test_quotients_beyond_int32_saturate_unlike_the_reference_cast():
    # The ONNX reference casts rint(x / s) to int32 (INT_MIN beyond range); qdp saturates.
    x = np.array([2.0 ** 31, 2.0 ** 40, -(2.0 ** 31) - 2 ** 8, 3e38, np.inf], np.float32)
    for model in ROUNDING_MODELS:
        assert quantize_linear(x, np.float32(1), in_format="fp32",
                               rounding_model=model).tolist() == [127, 127, -128, 127, 127]


# -- run-time scales -----------------------------------------------------------------------

def tiled(spec, scales):
    """Every x against each scale: the values, and their bit patterns (int64)."""
    x = np.tile(every(spec), len(scales))
    s = np.repeat(np.array(scales, dtype=UINT[spec]), 1 << 16).view(DTYPES[spec])
    return x, s, x.view(UINT[spec]).astype(np.int64), s.view(UINT[spec]).astype(np.int64)


@pytest.mark.parametrize("spec", ["bf16", "fp16"])
def test_run_time_zero_inf_and_nan_scales(spec):
    """quantize_linear_bits takes any scale: x / s is IEEE's (x / 0 a signed Inf, 0 / 0
    and Inf / Inf NaN, x / Inf a signed zero), then as for a constant scale: NaN gives
    qmin, Inf saturates, a zero quotient gives z -- in both models."""
    fmt = floats.float_format(spec)
    neg = 1 << 15
    x, s, x_bits, s_bits = tiled(spec, [0, neg, fmt.inf_bits, fmt.inf_bits | neg,
                                        fmt.nan_bits, fmt.nan_bits | neg, fmt.inf_bits | 1])
    z = np.tile(np.array([-5, 9], dtype=np.int64), x.size // 2)
    with np.errstate(all="ignore"):
        want = finish(np.rint(as_float64(x) / as_float64(s)), z, 8, True)
    got = quantize_linear_bits(x_bits, s_bits, z, fmt)
    assert_same(got, want, x, "onnx")
    # The exact model shares the special cases: every 5th input suffices.
    got = quantize_linear_bits(x_bits[::5], s_bits[::5], z[::5], fmt, rounding_model="exact")
    assert_same(got, want[::5], x[::5], "exact")
    assert {-128, -5, 9, 127} <= set(np.unique(want).tolist())


@pytest.mark.parametrize("spec", ["bf16", "fp16"])
def test_run_time_negative_scales(spec):
    neg = 1 << 15
    x, s, x_bits, s_bits = tiled(spec, [SCALES[spec]["three_quarters"] | neg,
                                        SCALES[spec]["subnormal"] | neg])
    fmt = floats.float_format(spec)
    got = quantize_linear_bits(x_bits, s_bits, 3, fmt, out_width=16, out_signed=False)
    assert_same(got, finish(np.rint(onnx_quotient(x, s)), 3, 16, False), x, "onnx")
    exact = Exact(as_float64(x), as_float64(s))
    for mode in ("half_up", "floor"):
        got = quantize_linear_bits(x_bits, s_bits, 3, fmt, out_width=16, out_signed=False,
                                   rounding_model="exact", rounding=mode)
        assert_same(got, finish(exact.rounded(mode), 3, 16, False), x, mode)


def test_run_time_special_scale_semantics_spelled_out():
    fmt = floats.FP16
    one, zero, inf, nan, neg = 0x3C00, 0x0000, 0x7C00, 0x7E00, 0x8000
    cases = [  # x, s, expected with z = 10, int8
        (one, zero, 127), (neg | one, zero, -128), (one, neg | zero, -128),
        (zero, zero, -128), (neg | zero, zero, -128), (inf, inf, -128), (nan, one, -128),
        (one, nan, -128), (one, inf, 10), (neg | one, inf, 10), (inf, one, 127),
        (inf, neg | one, -128), (inf, zero, 127), (zero, inf, 10), (0x7BFF, 1, 127)]
    x, s, want = (np.array(c) for c in zip(*cases))
    for model in ROUNDING_MODELS:
        got = quantize_linear_bits(x, s, 10, fmt, rounding_model=model)
        assert got.tolist() == want.tolist(), model


# -- 8-bit custom formats: every input with every scale ------------------------------------

@pytest.mark.parametrize("spec", sorted(ML8))
def test_every_8_bit_input_and_scale_pattern(spec):
    """All 65,536 (x, s) bit patterns, run-time semantics: onnx against ml_dtypes'
    division in the format (IEEE-like, with subnormals, Inf and NaN), exact against
    the exact rational."""
    fmt = floats.float_format(spec)
    dtype = ML8[spec]
    x_bits, s_bits = (a.reshape(-1) for a in np.meshgrid(np.arange(256), np.arange(256),
                                                         indexing="ij"))
    x = x_bits.astype(np.uint8).view(dtype)
    s = s_bits.astype(np.uint8).view(dtype)
    got = quantize_linear_bits(x_bits, s_bits, 2, fmt, out_width=6)
    assert_same(got, finish(np.rint(onnx_quotient(x, s)), 2, 6, True), x_bits, "onnx")
    exact = Exact(as_float64(x), as_float64(s))
    modes = DETERMINISTIC_MODES if spec == "e4m3" else ("half_even", "trunc")
    for mode in modes:
        got = quantize_linear_bits(x_bits, s_bits, 2, fmt, out_width=6,
                                   rounding_model="exact", rounding=mode)
        assert_same(got, finish(exact.rounded(mode), 2, 6, True), x_bits, mode)


def test_custom_format_through_the_public_function():
    # e3m3: 0b0011100 is 1.5, 0b0010000 is 0.5; 1.5 / 0.5 = 3, -1.5 / 0.5 = -3.
    x = np.array([0b0011100, 0b1011100, 0b0111000], dtype=np.uint8)
    got = quantize_linear(x, np.uint8(0b0010000), 1, in_format="e3m3", out_width=3)
    assert got.tolist() == [3, -2, 3]
    with pytest.raises(TypeError, match="^x: "):
        quantize_linear([1.0], np.uint8(0b0010000), in_format="e3m3")
    with pytest.raises(ValueError, match="^scale: "):
        quantize_linear(x, np.uint8(0b1010000), in_format="e3m3")


# -- layouts -------------------------------------------------------------------------------

def elementwise(x, scale_at, zero_at, spec, **kwargs):
    """The per-tensor function on each element, with the parameters the layout gives
    that element: the hand-built loop the layouts must equal."""
    out = np.zeros(x.shape, dtype=np.int64)
    for index in np.ndindex(x.shape):
        out[index] = quantize_linear(x[index], scale_at(index), zero_at(index),
                                     in_format=spec, **kwargs)
    return out


def random_inputs(rng, shape, spec):
    x = (rng.standard_normal(shape) * 20).astype(DTYPES[spec])
    x.reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
    return x


@pytest.mark.parametrize("spec", ["fp32", "bf16"])
@pytest.mark.parametrize("axis", [0, 2, -2])
def test_per_axis_layout(spec, axis):
    rng = np.random.default_rng(3)
    x = random_inputs(rng, (3, 4, 5), spec)
    n = x.shape[axis]
    scale = rng.uniform(0.05, 3, n).astype(DTYPES[spec])
    zero = rng.integers(0, 256, n)
    for model in ROUNDING_MODELS:
        got = quantize_linear(x, scale, zero, in_format=spec, axis=axis, out_signed=False,
                              rounding_model=model)
        want = elementwise(x, lambda i: scale[i[axis]], lambda i: zero[i[axis]], spec,
                           out_signed=False, rounding_model=model)
        assert np.array_equal(got, want)


@pytest.mark.parametrize("spec", ["fp32", "fp16"])
@pytest.mark.parametrize("shape,axis,block", [((3, 5, 4), 1, 2), ((3, 5, 4), -2, 5),
                                              ((2, 7), None, 3), ((2, 7), 0, 1),
                                              ((6,), None, 4), ((3, 5, 4), 2, 3)])
def test_per_block_layout(spec, shape, axis, block):
    rng = np.random.default_rng(4)
    x = random_inputs(rng, shape, spec)
    a = len(shape) - 1 if axis is None else axis % len(shape)
    blocks = -(-shape[a] // block)
    pshape = tuple(blocks if i == a else d for i, d in enumerate(shape))
    scale = rng.uniform(0.05, 3, pshape).astype(DTYPES[spec])
    zero = rng.integers(-128, 128, pshape)

    def at(index):
        return tuple(k // block if i == a else k for i, k in enumerate(index))

    got = quantize_linear(x, scale, zero, in_format=spec, axis=axis, block_size=block,
                          rounding_model="exact", rounding="half_away")
    want = elementwise(x, lambda i: scale[at(i)], lambda i: zero[at(i)], spec,
                       rounding_model="exact", rounding="half_away")
    assert np.array_equal(got, want)
    # A scalar zero point (the default) serves every block, as in the ONNX reference.
    got = quantize_linear(x, scale, in_format=spec, axis=axis, block_size=block)
    want = elementwise(x, lambda i: scale[at(i)], lambda i: 0, spec)
    assert np.array_equal(got, want)


def test_per_tensor_forms_and_1d_per_axis():
    x = np.array([0.5, 1.0, -3.0, 7.25], np.float32)
    for scale in (np.float32(0.5), np.array([0.5], np.float32), 0.5, [0.5]):
        assert quantize_linear(x, scale, 1).tolist() == [2, 3, -5, 15]
    got = quantize_linear(x, np.array([1, 2, 0.5, 0.25], np.float32), [0, 1, 2, 3])
    assert got.tolist() == [0, 1, -4, 32]
    got = quantize_linear(x.reshape(2, 2), np.array([1, 2], np.float32), axis=0)
    assert got.tolist() == [[0, 1], [-2, 4]]
    assert quantize_linear(np.float32(2.5), np.float32(1)).shape == ()
    assert quantize_linear(np.zeros((0, 3), np.float32), np.float32(1)).shape == (0, 3)
    assert quantize_linear(x, np.float32(0.5), None).tolist() == [1, 2, -6, 14]


# -- properties ----------------------------------------------------------------------------

finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
positive32 = st.floats(width=32, min_value=2.0 ** -149,
                       max_value=float(np.finfo(np.float32).max), allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(finite32, finite32, positive32, st.sampled_from(DETERMINISTIC_MODES),
       st.sampled_from(ROUNDING_MODELS))
def test_quantize_is_monotone_in_x(x1, x2, s, mode, model):
    if model == "onnx":
        mode = "half_even"
    x = np.sort(np.array([x1, x2], np.float32))
    got = quantize_linear(x, np.float32(s), 3, out_width=16, rounding_model=model,
                          rounding=mode)
    assert got[0] <= got[1]


@settings(max_examples=100, deadline=None)
@given(st.floats(width=32, min_value=0, max_value=1e6, allow_nan=False),
       st.floats(width=32, min_value=2.0 ** -10, max_value=2.0 ** 10),
       st.sampled_from(ROUNDING_MODELS))
def test_quantize_is_odd_in_x(x, s, model):
    """q(-x) = -q(x) in the sign-symmetric modes, and ties-up mirrors ties-down, while
    nothing saturates (the range is wide and the zero point 0)."""
    xs = np.array([x, -x], np.float32)
    s = np.float32(s)
    modes = ("half_even",) if model == "onnx" else \
        ("half_even", "half_away", "half_zero", "trunc")
    for mode in modes:
        q = quantize_linear(xs, s, out_width=16, rounding_model=model, rounding=mode)
        assert q[1] == -q[0] or abs(int(q[0])) >= 32767
    if model == "exact":
        up = quantize_linear(xs, s, out_width=16, rounding_model="exact", rounding="half_up")
        down = quantize_linear(xs, s, out_width=16, rounding_model="exact",
                               rounding="half_down")
        assert up[1] == -down[0] or abs(int(down[0])) >= 32767


@settings(max_examples=100, deadline=None)
@given(st.integers(-2000, 2000), st.integers(0, 1), st.sampled_from(NEAREST_MODES))
def test_exact_multiples_and_half_multiples(k, half, mode):
    # x = (k + half/2) * s with s a power of two: an exact quotient (or an exact tie).
    s = np.float32(2.0 ** -5)
    x = np.float32((k + half / 2) * 2.0 ** -5)
    got = int(quantize_linear(x, s, out_width=16, rounding_model="exact", rounding=mode))
    assert got == ref_round(Fraction(2 * k + half, 2), mode)
    assert int(quantize_linear(x, s, out_width=16)) == round(Fraction(2 * k + half, 2))


# -- bad input -----------------------------------------------------------------------------

X = np.array([1.0, 2.0], np.float32)
S = np.float32(0.5)


@pytest.mark.parametrize("kwargs,error,name", [
    ({"in_format": "fp64"}, ValueError, "in_format"),
    ({"in_format": "e9m3"}, ValueError, "in_format"),
    ({"scale": np.float32(0)}, ValueError, "scale"),
    ({"scale": np.float32(-0.0)}, ValueError, "scale"),
    ({"scale": np.float32(-0.5)}, ValueError, "scale"),
    ({"scale": np.float32(np.nan)}, ValueError, "scale"),
    ({"scale": np.float32(np.inf)}, ValueError, "scale"),
    ({"scale": np.array([0.5, 0], np.float32)}, ValueError, "scale"),
    ({"scale": np.float64(0.5).reshape(1)}, TypeError, "scale"),
    ({"scale": np.float16(0.5)}, TypeError, "scale"),
    ({"zero_point": 128}, ValueError, "zero_point"),
    ({"zero_point": -129}, ValueError, "zero_point"),
    ({"zero_point": -1, "out_signed": False}, ValueError, "zero_point"),
    ({"zero_point": 256, "out_signed": False}, ValueError, "zero_point"),
    ({"zero_point": 8, "out_width": 4}, ValueError, "zero_point"),
    ({"zero_point": [0, 200]}, ValueError, "zero_point"),
    ({"zero_point": [0, 1, 2]}, ValueError, "zero_point"),
    ({"scale": np.array([0.5, 1, 2], np.float32)}, ValueError, "scale"),
    ({"out_width": 1}, ValueError, "out_width"),
    ({"out_width": 17}, ValueError, "out_width"),
    ({"out_width": 8.0}, ValueError, "out_width"),
    ({"out_width": True}, ValueError, "out_width"),
    ({"rounding_model": "numpy"}, ValueError, "rounding_model"),
    ({"rounding": "half_up"}, ValueError, "rounding"),
    ({"rounding_model": "exact", "rounding": "nearest"}, ValueError, "rounding"),
    ({"rounding_model": "exact", "rounding": "stochastic"}, ValueError, "random"),
    ({"rounding_model": "exact", "rounding": "stochastic", "random": [1]}, ValueError,
     "random"),
    ({"rounding_model": "exact", "random": [1, 2]}, ValueError, "random"),
    ({"x": np.array([1.0, 2.0])}, TypeError, "x"),
    ({"x": np.array([1.0, 2.0], np.float16)}, TypeError, "x"),
    ({"x": np.array([1, 2], np.int32)}, TypeError, "x"),
])
def test_bad_arguments_are_refused_naming_them(kwargs, error, name):
    args = {"x": X, "scale": S}
    args.update(kwargs)
    x, scale = args.pop("x"), args.pop("scale")
    with pytest.raises(error, match=f"^{name}: "):
        quantize_linear(x, scale, **args)


@pytest.mark.parametrize("x,scale,kwargs,name", [
    (np.zeros((2, 4), np.float32), np.ones((2, 3), np.float32), {"block_size": 2}, "scale"),
    (np.zeros((2, 5), np.float32), np.ones((2, 2), np.float32), {"block_size": 2}, "scale"),
    (np.zeros((2, 4), np.float32), np.ones((2, 4), np.float32), {"block_size": 2, "axis": 0},
     "scale"),
    (np.zeros((2, 4), np.float32), np.ones(2, np.float32), {"block_size": 2}, "scale"),
    (np.zeros((2, 4), np.float32), np.ones((2, 2), np.float32), {"block_size": 0},
     "block_size"),
    (np.zeros((2, 4), np.float32), np.ones((2, 2), np.float32), {"block_size": 2.0},
     "block_size"),
    (np.zeros((2, 4), np.float32), np.ones((2, 2), np.float32), {"block_size": True},
     "block_size"),
    (np.float32(1), np.ones((1,), np.float32), {"block_size": 2}, "block_size"),
    (np.zeros((2, 4), np.float32), np.ones(4, np.float32), {}, "axis"),
    (np.zeros((2, 4), np.float32), np.ones(4, np.float32), {"axis": 2}, "axis"),
    (np.zeros((2, 4), np.float32), np.ones(4, np.float32), {"axis": -3}, "axis"),
    (np.zeros((2, 4), np.float32), np.ones(4, np.float32), {"axis": 1.0}, "axis"),
    (np.zeros((2, 4), np.float32), np.ones(3, np.float32), {"axis": 1}, "scale"),
    (np.zeros((2, 4), np.float32), np.ones((2, 4), np.float32), {}, "scale"),
    (np.zeros((2, 4), np.float32), np.ones((2, 2), np.float32),
     {"block_size": 2, "zero_point": np.zeros((2, 3), np.int64)}, "zero_point"),
])
def test_bad_layouts_are_refused_naming_the_parameter(x, scale, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        quantize_linear(x, scale, **kwargs)
