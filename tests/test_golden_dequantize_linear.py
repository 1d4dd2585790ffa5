"""Golden ONNX DequantizeLinear against the ONNX reference's own NumPy sequence and
exact Fractions.

The NumPy reference replays ``onnx/reference/ops/op_dequantize_linear.py``: ``x`` of its
integer dtype, ``x.astype(float32) - zero_point`` (zero point of ``x``'s dtype: float32
for narrow types, float64 for int32 / uint32), times the scale (its dtype), then
``.astype(scale dtype)``; NumPy and ml_dtypes decide every rounding. The Fraction
reference states the same sequence as explicit roundings (half to even) of exact values:
``fl_out(fl32((q - z) * s))`` for narrow inputs, ``fl_out(fl64((fl32(q) - z) * s))`` for
wide ones with a zero point.
"""

from fractions import Fraction
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from qdp.golden import floats
from qdp.golden.dequantize_linear import dequantize_linear, dequantize_linear_bits
from qdp.golden.floats import FP32
from qdp.golden.quantize_linear import quantize_linear

DTYPES = {"fp32": np.float32, "bf16": ml_dtypes.bfloat16, "fp16": np.float16}
UINT = {"fp32": np.uint32, "bf16": np.uint16, "fp16": np.uint16}
#: ONNX's integer types (ml_dtypes for the sub-byte ones), by (width, signed).
INTS = {(2, True): ml_dtypes.int2, (2, False): ml_dtypes.uint2, (4, True): ml_dtypes.int4,
        (4, False): ml_dtypes.uint4, (8, True): np.int8, (8, False): np.uint8,
        (16, True): np.int16, (16, False): np.uint16, (32, True): np.int32,
        (32, False): np.uint32}
#: Scales as bit patterns: ordinary, a full significand, huge (products overflow the
#: 16-bit formats), a subnormal, the smallest subnormal.
SCALES = {
    "fp32": {"ordinary": 0x3DCCCCCD, "full": 0x3F7FFFFF, "huge": 0x7E800000,
             "subnormal": 0x00012345, "tiny": 0x00000001},
    "bf16": {"ordinary": 0x3DCD, "full": 0x3F7F, "huge": 0x7E80, "subnormal": 0x0023,
             "tiny": 0x0001},
    "fp16": {"ordinary": 0x2E66, "full": 0x3BFF, "huge": 0x5A00, "subnormal": 0x0123,
             "tiny": 0x0001},
}


def int_range(width, signed):
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)


def scale_value(spec, bits):
    return np.array(bits, dtype=UINT[spec]).view(DTYPES[spec])


def onnx_reference(q, scale, zero_point, width, signed):
    """``op_dequantize_linear.py``'s computation, with ``q`` and ``zero_point`` of the
    ONNX integer dtype and ``scale`` (any shape broadcasting with ``q``) of the output's."""
    dtype = INTS[width, signed]
    x = np.asarray(q).astype(dtype)
    with np.errstate(all="ignore"):
        if zero_point is not None:
            dx = x.astype(np.float32) - np.asarray(zero_point).astype(dtype)
        else:
            dx = x.astype(np.float32)
        y = dx * scale
        return y.astype(scale.dtype)


def assert_same_floats(got, want):
    """Bit-exact; NaNs of any payload count as one value (qdp's is the canonical NaN)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    spec = {np.dtype(v): k for k, v in DTYPES.items()}[got.dtype]
    fmt = floats.float_format(spec)
    g = got.view(UINT[spec]).astype(np.int64)
    w = want.view(UINT[spec]).astype(np.int64)
    nan = np.isnan(want.astype(np.float32))
    assert np.all(g[nan] == fmt.nan_bits)
    bad = np.flatnonzero((g != w) & ~nan)
    assert bad.size == 0, [(int(i), hex(int(g[i])), hex(int(w[i]))) for i in bad[:5]]


def round_half_even(a, spec):
    """The Fraction ``a`` rounded half to even to a format (``"fp64"`` too), as a
    Fraction, or ``±math.inf`` beyond the largest finite value."""
    e, m = (11, 52) if spec == "fp64" else (floats.float_format(spec).exp_bits,
                                            floats.float_format(spec).man_bits)
    if a == 0 or isinstance(a, float):          # zero, or already beyond (±Inf)
        return a
    bias = 2 ** (e - 1) - 1
    k = abs(a).numerator.bit_length() - abs(a).denominator.bit_length()
    if abs(a) < Fraction(2) ** k:
        k -= 1
    quantum = Fraction(2) ** (max(k, 1 - bias) - m)
    r = round(abs(a) / quantum) * quantum
    if r >= Fraction(2) ** (bias + 1):
        return math.copysign(math.inf, a)
    return r if a > 0 else -r


def as_fraction(value):
    v = float(value)
    return v if math.isinf(v) else Fraction(v)


# -- narrow inputs: every q ----------------------------------------------------------------

NARROW = [(8, True, (None, 0, -128, 127, -3)), (8, False, (None, 0, 255, 128)),
          (4, True, (-8, 7, 0)), (4, False, (0, 15, 9)), (2, True, (-2, 1)),
          (16, True, (None, -32768, 32767, 1234)), (16, False, (0, 65535))]


@pytest.mark.parametrize("spec", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("scale", list(SCALES["fp32"]))
def test_every_narrow_q_matches_the_onnx_reference_sequence(spec, scale):
    s = scale_value(spec, SCALES[spec][scale])
    for width, signed, zero_points in NARROW:
        lo, hi = int_range(width, signed)
        q = np.arange(lo, hi + 1)
        for z in zero_points:
            got = dequantize_linear(q, s, z, out_format=spec, in_width=width,
                                    in_signed=signed)
            assert_same_floats(got, onnx_reference(q, s, z, width, signed))


@pytest.mark.parametrize("spec", ["fp32", "bf16", "fp16"])
def test_narrow_is_the_product_rounded_to_fp32_then_to_the_output(spec):
    """One Fraction per element: fl_out(fl32((q - z) * s)) for every int8 q, over the
    named scales and a few random ones."""
    rng = np.random.default_rng(1)
    fmt = floats.float_format(spec)
    patterns = list(SCALES[spec].values()) + rng.integers(1, fmt.max_bits, 5).tolist()
    q = np.arange(-128, 128)
    for bits in patterns:
        s = scale_value(spec, bits)
        sv = Fraction(float(s))
        for z in (0, -128, 127, 5):
            got = dequantize_linear(q, s, z, out_format=spec)
            want = [round_half_even(round_half_even((v - z) * sv, "fp32"), spec)
                    for v in q.tolist()]
            assert [as_fraction(g) for g in got] == want, (hex(bits), z)


def test_fp16_output_rounds_twice_as_the_reference_does():
    """A 16-bit difference times an 11-bit significand needs 27 bits: FP32 rounds it,
    and the FP16 rounding after that can differ from rounding the exact product once.
    The golden follows the reference's double rounding."""
    s = scale_value("fp16", 0x245F)
    sv = Fraction(float(s))
    # Candidates from NumPy (float64 holds the exact product, and its cast to float16
    # rounds once), each confirmed with Fractions.
    d = np.arange(1, 65536)
    once = (d * float(s)).astype(np.float16)
    candidates = np.flatnonzero(once != (d.astype(np.float32) * s).astype(np.float16))
    cases = []
    for d in (candidates[:3] + 1).tolist():
        twice = round_half_even(round_half_even(d * sv, "fp32"), "fp16")
        assert twice != round_half_even(d * sv, "fp16") == as_fraction(once[d - 1])
        cases.append((d, twice))
    assert len(cases) == 3
    d = np.array([c[0] for c in cases])
    for q, z in ((d - 32768, -32768), (32767 - d, 32767)):      # q - z = ±d
        got = dequantize_linear(q, s, z, out_format="fp16", in_width=16)
        sign = 1 if z < 0 else -1
        assert [as_fraction(g) for g in got] == [sign * t for _, t in cases]
        assert_same_floats(got, onnx_reference(q, s, z, 16, True))


@pytest.mark.parametrize("spec", ["e4m3", "e5m2", "e3m4"])
def test_8_bit_output_formats_match_ml_dtypes(spec):
    """Every int8 q over every 8-bit scale pattern (run time: NaN, Inf and negative
    scales included), zero points 0 and -7."""
    dtype = {"e4m3": ml_dtypes.float8_e4m3, "e5m2": ml_dtypes.float8_e5m2,
             "e3m4": ml_dtypes.float8_e3m4}[spec]
    fmt = floats.float_format(spec)
    q, s_bits = (a.reshape(-1) for a in np.meshgrid(np.arange(-128, 128), np.arange(256),
                                                    indexing="ij"))
    s = s_bits.astype(np.uint8).view(dtype)
    for z in (0, -7):
        got = dequantize_linear_bits(q, s_bits, z, fmt)
        want = onnx_reference(q, s, z, 8, True).view(np.uint8).astype(np.int64)
        nan = np.isnan(onnx_reference(q, s, z, 8, True).astype(np.float32))
        assert np.all(got[nan] == fmt.nan_bits)
        assert np.array_equal(got[~nan], want[~nan])


# -- run-time scales -----------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("width,signed", [(8, True), (16, False), (32, True)])
def test_run_time_special_scales_follow_ieee(spec, width, signed):
    """Zero, Inf, NaN and negative scales: IEEE products (NumPy's), d = 0 counting as
    +0; the ONNX sequence otherwise."""
    fmt = floats.float_format(spec)
    neg = 1 << (fmt.width - 1)
    lo, hi = int_range(width, signed)
    rng = np.random.default_rng(width)
    q = np.concatenate([np.arange(max(lo, -300), min(hi, 300) + 1),
                        rng.integers(lo, hi + 1, 2000), [lo, hi]])
    patterns = [0, neg, fmt.inf_bits, fmt.inf_bits | neg, fmt.nan_bits, fmt.nan_bits | neg,
                fmt.inf_bits | 1, SCALES[spec]["ordinary"] | neg,
                SCALES[spec]["subnormal"] | neg, SCALES[spec]["huge"] | neg]
    for z in (None, 0, lo, hi, 3):
        for bits in patterns:
            s = scale_value(spec, bits)
            got = dequantize_linear_bits(q, bits, z, fmt, in_width=width)
            assert_same_floats(fmt.values(got), onnx_reference(q, s, z, width, signed))


def test_zero_scale_sign_and_zero_d():
    fmt = FP32
    q = np.array([-3, 0, 3, 5])
    for s_bits, want in ((0, [1, 0, 0, 0]), (1 << 31, [0, 1, 1, 1])):
        got = dequantize_linear_bits(q, s_bits, 0, fmt)
        assert (got >> 31).tolist() == want and np.all(got & 0x7FFFFFFF == 0)
    got = dequantize_linear_bits(q, fmt.inf_bits, 0, fmt)
    assert got.tolist() == [fmt.inf_bits | 1 << 31, fmt.nan_bits, fmt.inf_bits,
                            fmt.inf_bits]
    got = dequantize_linear_bits(q, fmt.inf_bits, 5, fmt, in_width=32)
    assert got.tolist() == [fmt.inf_bits | 1 << 31, fmt.inf_bits | 1 << 31,
                            fmt.inf_bits | 1 << 31, fmt.nan_bits]


# -- wide inputs ---------------------------------------------------------------------------

def wide_values(rng, n, width, signed):
    """Random q of a wide type, weighted to where float32 rounds them: 2**24..2**31 and
    their neighbours, halfway cases, the ends of the range."""
    lo, hi = int_range(width, signed)
    kind = rng.integers(0, 4, n)
    top = width - (1 if signed else 0)
    power = np.int64(1) << rng.integers(min(23, top - 2), top, n)
    near = power + rng.integers(-3, 4, n) * (power >> 24)
    half = power + (power >> 24) * rng.integers(0, 8, n) + (power >> 25)
    uniform = rng.integers(lo, hi + 1, n)
    q = np.select([kind == 0, kind == 1, kind == 2], [near, half, uniform],
                  rng.integers(-2000, 2000, n))
    if signed:
        q = np.where(rng.integers(0, 2, n) == 0, -q, q)
    q = np.clip(q, lo, hi)
    q[:4] = [lo, hi, lo + 1, hi - 1]
    return q


WIDE = [(32, True), (32, False)]


@pytest.mark.parametrize("spec", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("width,signed", WIDE)
def test_wide_q_matches_the_onnx_reference_sequence(spec, width, signed):
    rng = np.random.default_rng(width + signed + len(spec))
    n = 20_000
    q = wide_values(rng, n, width, signed)
    lo, hi = int_range(width, signed)
    zs = wide_values(rng, n, width, signed)
    for scale, bits in SCALES[spec].items():
        s = scale_value(spec, bits)
        for z in (None, 0, zs, lo, hi, (1 << 24) + 1):
            got = dequantize_linear(q, s, z, out_format=spec, in_width=width,
                                    in_signed=signed)
            want = onnx_reference(q, s, z, width, signed)
            assert_same_floats(got, want)


@pytest.mark.parametrize("spec", ["fp32", "bf16", "fp16"])
def test_wide_is_fl32_of_q_then_fl64_of_the_product(spec):
    """One Fraction per element: fl_out(fl64((fl32(q) - z) * s)) with a zero point,
    fl_out(fl32(fl32(q) * s)) without."""
    rng = np.random.default_rng(7)
    q = wide_values(rng, 600, 32, True)
    z = wide_values(rng, 600, 32, True)
    s = scale_value(spec, SCALES[spec]["ordinary"])
    sv = Fraction(float(s))
    with_zero = dequantize_linear(q, s, z, out_format=spec, in_width=32)
    without = dequantize_linear(q, s, None, out_format=spec, in_width=32)
    for i in range(q.size):
        q32 = round_half_even(Fraction(int(q[i])), "fp32")
        want = round_half_even(round_half_even((q32 - int(z[i])) * sv, "fp64"), spec)
        assert as_fraction(with_zero[i]) == want, (int(q[i]), int(z[i]))
        want = round_half_even(round_half_even(q32 * sv, "fp32"), spec)
        assert as_fraction(without[i]) == want, int(q[i])


def test_float32_rounding_of_q_matters_only_when_wide():
    # 2**24 + 1 rounds to 2**24 in float32: d = 2**24 - (2**24 + 1) = -1, not 0.
    q = np.array([(1 << 24) + 1, (1 << 25) + 3, -(1 << 24) - 3])
    got = dequantize_linear(q, np.float32(1), (1 << 24) + 1, in_width=32)
    # fl32(2**25 + 3) - z = 2**24 + 3, a float32 tie, to 2**24 + 4; fl32(-2**24 - 3)
    # - z = -(2**25 + 5), to -(2**25 + 4).
    assert got.tolist() == [-1.0, float((1 << 24) + 4), -float((1 << 25) + 4)]
    got = dequantize_linear(q, np.float32(1), None, in_width=32)
    assert got.tolist() == [float(1 << 24), float((1 << 25) + 4), -float((1 << 24) + 4)]
    # int16 and narrower: exact differences.
    got = dequantize_linear(np.array([32767, -32768]), np.float32(1), -32768, in_width=16)
    assert got.tolist() == [65535.0, 0.0]


@pytest.mark.parametrize("width", [17, 24, 31])
def test_non_onnx_wide_widths_take_the_int32_path(width):
    rng = np.random.default_rng(width)
    q = wide_values(rng, 5000, width, True)
    z = wide_values(rng, 5000, width, True)
    s = scale_value("bf16", SCALES["bf16"]["ordinary"])
    for zero in (z, None):
        got = dequantize_linear(q, s, zero, out_format="bf16", in_width=width)
        assert_same_floats(got, onnx_reference(q, s, zero, 32, True))


# -- layouts -------------------------------------------------------------------------------

def elementwise(q, scale_at, zero_at, spec, **kwargs):
    out = np.zeros(q.shape, dtype=DTYPES[spec])
    for index in np.ndindex(q.shape):
        out[index] = dequantize_linear(q[index], scale_at(index), zero_at(index),
                                       out_format=spec, **kwargs)
    return out


@pytest.mark.parametrize("spec", ["fp32", "bf16"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_axis_layout(spec, axis):
    rng = np.random.default_rng(3)
    q = rng.integers(-128, 128, (3, 4, 5))
    n = q.shape[axis]
    scale = rng.uniform(0.01, 3, n).astype(DTYPES[spec])
    zero = rng.integers(-128, 128, n)
    got = dequantize_linear(q, scale, zero, out_format=spec, axis=axis)
    want = elementwise(q, lambda i: scale[i[axis]], lambda i: zero[i[axis]], spec)
    assert_same_floats(got, want)


@pytest.mark.parametrize("shape,axis,block", [((3, 5, 4), 1, 2), ((2, 7), None, 3),
                                              ((6,), 0, 4), ((3, 5, 4), -1, 3)])
@pytest.mark.parametrize("width", [8, 32])
def test_per_block_layout(shape, axis, block, width):
    rng = np.random.default_rng(4)
    lo, hi = int_range(width, True)
    q = rng.integers(lo, hi + 1, shape)
    a = len(shape) - 1 if axis is None else axis % len(shape)
    pshape = tuple(-(-d // block) if i == a else d for i, d in enumerate(shape))
    scale = rng.uniform(0.01, 3, pshape).astype(np.float16)
    zero = rng.integers(lo, hi + 1, pshape)

    def at(index):
        return tuple(k // block if i == a else k for i, k in enumerate(index))

    got = dequantize_linear(q, scale, zero, out_format="fp16", axis=axis, block_size=block,
                            in_width=width)
    want = elementwise(q, lambda i: scale[at(i)], lambda i: zero[at(i)], "fp16",
                       in_width=width)
    assert_same_floats(got, want)
    for z in (None, 0):       # a scalar (or absent) zero point serves every block
        got = dequantize_linear(q, scale, z, out_format="fp16", axis=axis,
                                block_size=block, in_width=width)
        want = elementwise(q, lambda i: scale[at(i)], lambda i: z, "fp16", in_width=width)
        assert_same_floats(got, want)


def test_shapes_scalars_and_custom_formats():
    assert dequantize_linear(3, np.float32(0.5)).shape == ()
    assert dequantize_linear(np.zeros((0, 2), np.int64), np.float32(1)).shape == (0, 2)
    got = dequantize_linear([1, -2], 0.5, out_format="bf16")
    assert got.dtype == ml_dtypes.bfloat16 and got.tolist() == [0.5, -1.0]
    # e3m3 bit patterns out: 0b0010000 is 0.5; 3 * 0.5 = 1.5 is 0b0011100.
    got = dequantize_linear([3, -1, 0], np.uint8(0b0010000), 0, out_format="e3m3")
    assert got.dtype == np.int64 and got.tolist() == [0b0011100, 0b1010000, 0]
    # 100 * 0.5 overflows e3m3 (max 15) to Inf.
    assert dequantize_linear([100], np.uint8(0b0010000), out_format="e3m3").tolist() == \
        [0b0111000]


# -- properties ----------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.floats(width=32, min_value=-1e4, max_value=1e4),
       st.floats(width=32, min_value=2.0 ** -30, max_value=2.0 ** 10),
       st.integers(-128, 127), st.sampled_from(["onnx", "exact"]))
def test_round_trip_within_half_a_step(x, s, z, model):
    """dequantize(quantize(x)) lies within s / 2 of x (plus the float32 roundings of
    the quotient and the product) whenever quantize did not saturate."""
    x32, s32 = np.float32(x), np.float32(s)
    q = quantize_linear(x32, s32, z, rounding_model=model)
    v = Fraction(float(x32)) / Fraction(float(s32))
    if not -128 <= round(v) + z <= 127 or not -127 <= v + z <= 126:
        return
    y = dequantize_linear(q, s32, z)
    err = abs(Fraction(float(y)) - Fraction(float(x32)))
    slack = (abs(Fraction(float(x32))) + Fraction(float(s32)) * 200) * Fraction(1, 2 ** 22) \
        + Fraction(1, 2 ** 148)
    assert err <= Fraction(float(s32)) / 2 + slack


@settings(max_examples=100, deadline=None)
@given(st.integers(-128, 127), st.integers(-128, 127),
       st.floats(width=32, min_value=2.0 ** -100, max_value=2.0 ** 100))
def test_dequantize_is_odd_and_monotone_in_q(q, z, s):
    s32 = np.float32(s)
    y = dequantize_linear(np.array([q, 2 * z - q if -128 <= 2 * z - q <= 127 else q]),
                          s32, z)
    if -128 <= 2 * z - q <= 127:
        assert y[1] == -y[0]                    # (z + d) and (z - d) mirror
    pair = dequantize_linear(np.array(sorted([q, z])), s32, 0)
    assert pair[0] <= pair[1]


# -- bad input -----------------------------------------------------------------------------

Q = np.array([1, -2, 3])


@pytest.mark.parametrize("kwargs,error,name", [
    ({"out_format": "fp64"}, ValueError, "out_format"),
    ({"out_format": "int8"}, ValueError, "out_format"),
    ({"scale": np.float32(0)}, ValueError, "scale"),
    ({"scale": np.float32(-0.0)}, ValueError, "scale"),
    ({"scale": np.float32(-1)}, ValueError, "scale"),
    ({"scale": np.float32(np.nan)}, ValueError, "scale"),
    ({"scale": np.float32(-np.inf)}, ValueError, "scale"),
    ({"scale": np.array([1, 1, 0], np.float32)}, ValueError, "scale"),
    ({"scale": np.array([1.0])}, TypeError, "scale"),
    ({"scale": np.float16(1)}, TypeError, "scale"),
    ({"zero_point": 128}, ValueError, "zero_point"),
    ({"zero_point": -129}, ValueError, "zero_point"),
    ({"zero_point": -1, "in_signed": False, "q": np.array([1])}, ValueError, "zero_point"),
    ({"zero_point": 1 << 31, "in_width": 32}, ValueError, "zero_point"),
    ({"zero_point": [0, 1]}, ValueError, "zero_point"),
    ({"q": np.array([128])}, ValueError, "q"),
    ({"q": np.array([-1]), "in_signed": False}, ValueError, "q"),
    ({"q": np.array([8]), "in_width": 4}, ValueError, "q"),
    ({"in_width": 1}, ValueError, "in_width"),
    ({"in_width": 33}, ValueError, "in_width"),
    ({"in_width": 8.0}, ValueError, "in_width"),
    ({"in_width": True}, ValueError, "in_width"),
    ({"scale": np.ones(2, np.float32)}, ValueError, "scale"),
    ({"scale": np.ones(3, np.float32), "block_size": 2}, ValueError, "scale"),
    ({"scale": np.ones(2, np.float32), "block_size": 0}, ValueError, "block_size"),
    ({"scale": np.ones(2, np.float32), "block_size": 2, "zero_point": [1, 2, 3]},
     ValueError, "zero_point"),
    ({"scale": np.ones(3, np.float32), "axis": 1}, ValueError, "axis"),
])
def test_bad_arguments_are_refused_naming_them(kwargs, error, name):
    args = {"q": Q, "scale": np.float32(0.5)}
    args.update(kwargs)
    q, scale = args.pop("q"), args.pop("scale")
    with pytest.raises(error, match=f"^{name}: "):
        dequantize_linear(q, scale, **args)
