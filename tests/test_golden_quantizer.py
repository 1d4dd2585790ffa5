"""qdp.golden.quantize and the scale conversions against exact rational references.

``y = saturate(round(x * M / 2**S) + Z)``: exhaustive on small widths (every rounding and
saturation mode, both signednesses, every zero point), hypothesis on 64-bit inputs and
32-bit multipliers, per-lane broadcasting, and every bad parameter. The references use
fractions.Fraction and textbook formulas, never the code under test.
"""

from fractions import Fraction
import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from qdp.golden import (ROUNDING_MODES, SATURATION_MODES, lfsr_values, multiplier_from_scale,
                        quantize, quantize_multiplier_tflite)

from _reference import TWO32, ref_round



def ref_range(width, signed):
    return (-2 ** (width - 1), 2 ** (width - 1) - 1) if signed else (0, 2 ** width - 1)


def ref_saturate(r, width, signed, mode):
    lo, hi = ref_range(width, signed)
    if mode == "sat":
        return min(max(r, lo), hi)
    if mode == "sat_sym":
        return min(max(r, -hi if signed else 0), hi)
    if mode == "sat_zero":
        return r if lo <= r <= hi else 0
    low = r & ((1 << width) - 1)
    return low - (1 << width) if signed and low >> (width - 1) else low


def ref_quantize(x, m, s, z, out_width, out_signed, rounding, saturation, r=None):
    return ref_saturate(ref_round(Fraction(x * m, 2 ** s), rounding, r) + z,
                        out_width, out_signed, saturation)


def ref_saturate_array(r, width, signed, mode):
    """Vectorized twin of ref_saturate for small int64 values (the exhaustive test)."""
    lo, hi = ref_range(width, signed)
    if mode == "sat":
        return np.clip(r, lo, hi)
    if mode == "sat_sym":
        return np.clip(r, -hi if signed else 0, hi)
    if mode == "sat_zero":
        return np.where((r >= lo) & (r <= hi), r, 0)
    low = r & ((1 << width) - 1)
    return np.where(signed & (low >> (width - 1) == 1), low - (1 << width), low)


# --- exhaustive small widths -------------------------------------------------------------

IN_WIDTH, MULT_WIDTH, OUT_WIDTH = 5, 4, 3
MULTS = np.arange(0, 1 << MULT_WIDTH)
SHIFTS = np.arange(0, 7)
RANDOM = np.random.default_rng(20240601).integers(0, TWO32, size=(64, MULTS.size, SHIFTS.size))


def x_values(signed):
    lo, hi = ref_range(IN_WIDTH, signed)
    return np.arange(lo, hi + 1)


@functools.lru_cache(maxsize=None)
def ref_rounded(in_signed, rounding):
    """round(x * M / 2**S) over the grid, by Fraction; shared by every saturation/zp."""
    xs = x_values(in_signed)
    out = np.empty((xs.size, MULTS.size, SHIFTS.size), dtype=np.int64)
    for i, x in enumerate(xs):
        for j, m in enumerate(MULTS):
            for k, s in enumerate(SHIFTS):
                r = int(RANDOM[i, j, k]) if rounding == "stochastic" else None
                out[i, j, k] = ref_round(Fraction(int(x) * int(m), 2 ** int(s)), rounding, r)
    return out


@pytest.mark.parametrize("saturation", SATURATION_MODES)
@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_exhaustive_small_widths(rounding, saturation):
    for in_signed in (True, False):
        xs = x_values(in_signed)
        rounded = ref_rounded(in_signed, rounding)
        random = RANDOM[:xs.size, :, :, None] if rounding == "stochastic" else None
        for out_signed in (True, False):
            lo, hi = ref_range(OUT_WIDTH, out_signed)
            zps = np.arange(lo, hi + 1)
            got = quantize(xs[:, None, None, None], MULTS[None, :, None, None],
                           SHIFTS[None, None, :, None], zero_point=zps[None, None, None, :],
                           in_width=IN_WIDTH, in_signed=in_signed, mult_width=MULT_WIDTH,
                           out_width=OUT_WIDTH, out_signed=out_signed, rounding=rounding,
                           saturation=saturation, random=random)
            want = ref_saturate_array(rounded[..., None] + zps, OUT_WIDTH, out_signed,
                                      saturation)
            assert got.shape == want.shape == (xs.size, MULTS.size, SHIFTS.size, zps.size)
            assert got.dtype == np.int64
            bad = np.argwhere(got != want)
            assert bad.size == 0, [
                dict(x=int(xs[i]), M=int(MULTS[j]), S=int(SHIFTS[k]), Z=int(zps[l]),
                     in_signed=in_signed, out_signed=out_signed, got=int(got[i, j, k, l]),
                     want=int(want[i, j, k, l])) for i, j, k, l in bad[:5]]


def test_exhaustive_reference_spot_check():
    # Pins the vectorized reference to the scalar one on a few hand-picked points.
    for x, m, s, z in [(-16, 15, 0, 3), (15, 15, 6, -4), (-3, 1, 1, 0), (7, 9, 4, 1)]:
        for rounding in ROUNDING_MODES[:-1]:
            for saturation in SATURATION_MODES:
                want = ref_quantize(x, m, s, z, OUT_WIDTH, True, rounding, saturation)
                rounded = ref_round(Fraction(x * m, 2 ** s), rounding)
                got = ref_saturate_array(np.array([rounded + z]), OUT_WIDTH, True, saturation)
                assert got[0] == want


def test_design_example_values():
    # half_even vs half_away on x * M / 2**S = -2.5 and 2.5; the seeds' [-127, 127].
    assert quantize(-5, 1, 1, rounding="half_even") == -2
    assert quantize(-5, 1, 1, rounding="half_away") == -3
    assert quantize(5, 1, 1, rounding="half_up") == 3
    assert quantize(-1000, 1, 0, saturation="sat_sym") == -127
    assert quantize(-1000, 1, 0, saturation="sat") == -128
    assert quantize(-1000, 1, 0, saturation="sat_zero") == 0
    assert quantize(200, 1, 0, saturation="wrap") == 200 - 256


# --- wide inputs -------------------------------------------------------------------------

@st.composite
def wide_case(draw):
    in_signed = draw(st.booleans())
    in_lo, in_hi = ref_range(64, in_signed)
    out_width = draw(st.integers(2, 32))
    out_signed = draw(st.booleans())
    out_lo, out_hi = ref_range(out_width, out_signed)
    return dict(
        x=draw(st.integers(in_lo, in_hi)),
        m=draw(st.integers(0, TWO32 - 1)),
        s=draw(st.integers(0, 100)),
        z=draw(st.integers(out_lo, out_hi)),
        in_signed=in_signed, out_width=out_width, out_signed=out_signed,
        rounding=draw(st.sampled_from(ROUNDING_MODES)),
        saturation=draw(st.sampled_from(SATURATION_MODES)),
        r=draw(st.integers(0, TWO32 - 1)),
    )


@settings(max_examples=300, deadline=None)
@given(wide_case())
def test_wide_inputs_exact(c):
    random = c["r"] if c["rounding"] == "stochastic" else None
    got = quantize(c["x"], c["m"], c["s"], zero_point=c["z"], in_width=64,
                   in_signed=c["in_signed"], mult_width=32, out_width=c["out_width"],
                   out_signed=c["out_signed"], rounding=c["rounding"],
                   saturation=c["saturation"], random=random)
    want = ref_quantize(c["x"], c["m"], c["s"], c["z"], c["out_width"], c["out_signed"],
                        c["rounding"], c["saturation"], c["r"])
    assert got == want


def test_wide_extremes():
    # Products near 2**96 and shifts that keep only a few bits.
    x_min, x_max = -(1 << 63), (1 << 63) - 1
    for x in (x_min, x_max, -1, 1):
        for m in (TWO32 - 1, 1 << 31, 1):
            for s in (0, 31, 64, 94, 95, 96, 200):
                for rounding in ROUNDING_MODES[:-1]:
                    got = quantize(x, m, s, in_width=64, out_width=32, rounding=rounding)
                    want = ref_quantize(x, m, s, 0, 32, True, rounding, "sat")
                    assert got == want, (x, m, s, rounding)


# --- per lane ----------------------------------------------------------------------------

@pytest.mark.parametrize("rounding", ["half_even", "floor", "stochastic"])
def test_per_lane_parameters_broadcast(rounding):
    rng = np.random.default_rng(5)
    beats, lanes = 40, 8
    x = rng.integers(-(1 << 31), 1 << 31, size=(beats, lanes))
    m = rng.integers(0, 1 << 16, size=lanes)
    s = rng.integers(10, 40, size=lanes)
    z = rng.integers(-128, 128, size=lanes)
    random = lfsr_values(99, lanes, beats) if rounding == "stochastic" else None
    got = quantize(x, m, s, zero_point=z, mult_width=16, rounding=rounding, random=random)
    assert got.shape == (beats, lanes)
    for t in range(beats):
        for k in range(lanes):
            r = int(random[t, k]) if random is not None else None
            want = ref_quantize(int(x[t, k]), int(m[k]), int(s[k]), int(z[k]), 8, True,
                                rounding, "sat", r)
            assert got[t, k] == want, (t, k)


# --- bad parameters ----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(out_width=0), "out_width"),
    (dict(out_width=1), "out_width"),
    (dict(out_width=33), "out_width"),
    (dict(out_width=8.0), "out_width"),
    (dict(in_width=1), "in_width"),
    (dict(in_width=65), "in_width"),
    (dict(mult_width=0), "mult_width"),
    (dict(mult_width=33), "mult_width"),
    (dict(rounding="nearest"), "rounding"),
    (dict(rounding=None), "rounding"),
    (dict(saturation="clip"), "saturation"),
    (dict(zero_point=128), "zero_point"),
    (dict(zero_point=-129), "zero_point"),
    (dict(zero_point=-1, out_signed=False), "zero_point"),
    (dict(zero_point=256, out_signed=False), "zero_point"),
    (dict(zero_point=[0, 0, 200]), "zero_point"),
    (dict(multiplier=16, mult_width=4), "multiplier"),
    (dict(multiplier=-1), "multiplier"),
    (dict(multiplier=[1, 1 << 32, 1]), "multiplier"),
    (dict(x=[16], in_width=5), "x"),
    (dict(x=[-17], in_width=5), "x"),
    (dict(x=[-1], in_signed=False), "x"),
    (dict(x=[1 << 32], in_width=32, in_signed=False), "x"),
    (dict(shift=-1), "shift"),
    (dict(shift=[3, -2, 1]), "shift"),
    (dict(rounding="stochastic"), "random"),
    (dict(rounding="stochastic", random=TWO32), "random"),
    (dict(random=[1, 2, 3]), "random"),
])
def test_bad_parameter_names_itself(kwargs, match):
    args = dict(x=[1, 2, 3], multiplier=3, shift=1)
    args.update(kwargs)
    x, m, s = args.pop("x"), args.pop("multiplier"), args.pop("shift")
    with pytest.raises(ValueError, match=match):
        quantize(x, m, s, **args)


def test_float_input_is_a_type_error():
    with pytest.raises(TypeError):
        quantize(np.array([1.5]), 3, 1)


# --- float scale -> (M, S) ---------------------------------------------------------------

normal_scales = st.floats(min_value=2.0 ** -40, max_value=2.0 ** 20, allow_nan=False,
                          allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(normal_scales, st.integers(1, 32))
def test_multiplier_from_scale_error_bound(scale, mult_width):
    if round(Fraction(scale)) >= 1 << mult_width:
        with pytest.raises(ValueError, match="scale"):
            multiplier_from_scale(scale, mult_width=mult_width)
        return
    m, s, rel = multiplier_from_scale(scale, mult_width=mult_width)
    assert 0 < m < 1 << mult_width
    assert 0 <= s <= 63
    exact_rel = abs(Fraction(m, 1 << s) - Fraction(scale)) / Fraction(scale)
    assert rel == float(exact_rel)
    # Full precision: the top bit of M is used whenever the shift range allowed it.
    if s < 63:
        assert m >= 1 << (mult_width - 1)
        assert exact_rel <= Fraction(1, 1 << (mult_width - 1))
    # And M is the nearest multiplier at that shift.
    assert abs(Fraction(m, 1 << s) - Fraction(scale)) <= Fraction(1, 1 << (s + 1))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 32), st.data())
def test_multiplier_from_scale_round_trip(mult_width, data):
    m0 = data.draw(st.integers(1, (1 << mult_width) - 1))
    s0 = data.draw(st.integers(0, 50))
    scale = m0 / 2 ** s0                   # exact: m0 < 2**32 and a power-of-two divisor
    m, s, rel = multiplier_from_scale(scale, mult_width=mult_width)
    assert Fraction(m, 1 << s) == Fraction(m0, 1 << s0)
    assert rel == 0.0


def test_multiplier_from_scale_known_values():
    assert multiplier_from_scale(0.5, mult_width=8) == (128, 8, 0.0)
    m, s, rel = multiplier_from_scale(1 / 3, mult_width=8)
    assert (m, s) == (171, 9)              # 2**9 / 3 = 170.67; 2**10 / 3 = 341 > 255
    assert rel == float(abs(Fraction(171, 512) - Fraction(1 / 3)) / Fraction(1 / 3))
    assert multiplier_from_scale(1.0, mult_width=32) == (1 << 31, 31, 0.0)
    # Ties go to even: 1.5 * 2**0 cannot be kept by a 1-bit multiplier.
    with pytest.raises(ValueError, match="scale"):
        multiplier_from_scale(1.5, mult_width=1)


def test_multiplier_from_scale_ties_to_even():
    # 0.625 * 2**2 = 2.5: half_even gives 2 (fits 2 bits), 0.625 * 2**3 = 5 does not fit.
    m, s, _ = multiplier_from_scale(0.625, mult_width=2)
    assert (m, s) == (2, 2)
    # 0.875 * 2**2 = 3.5 -> 4 does not fit 2 bits, so the shift stops at 1: 1.75 -> 2.
    m, s, _ = multiplier_from_scale(0.875, mult_width=2)
    assert (m, s) == (2, 1)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan, "1", None, 2.0 ** -70])
def test_multiplier_from_scale_bad_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        multiplier_from_scale(scale)


def test_multiplier_from_scale_too_large():
    with pytest.raises(ValueError, match="scale"):
        multiplier_from_scale(2.0 ** 40, mult_width=32)


@pytest.mark.parametrize("mult_width", [0, 33, 8.0])
def test_multiplier_from_scale_bad_width(mult_width):
    with pytest.raises(ValueError, match="mult_width"):
        multiplier_from_scale(0.5, mult_width=mult_width)


# --- TFLite QuantizeMultiplier -----------------------------------------------------------

@pytest.mark.parametrize("scale,want", [
    (0.0, (0, 0)),
    (0.5, (1 << 30, 0)),
    (1.0, (1 << 30, 1)),
    (0.25, (1 << 30, -1)),
    (1 / 3, (1431655765, -1)),            # 2/3 * 2**31 = 1431655765.33
    (0.75, (1610612736, 0)),
    (2.0 ** -31, (1 << 30, -30)),
    (2.0 ** -32, (1 << 30, -31)),
    (2.0 ** -33, (0, 0)),                 # shift -32 is flushed to zero
    (1 - 2.0 ** -40, (1 << 30, 1)),       # q * 2**31 rounds up to 2**31: halve, shift + 1
    (0.5 + 2.0 ** -32, ((1 << 30) + 1, 0)),   # q * 2**31 = 2**30 + 0.5: ties away from zero
    (1000.0, (2097152000, 10)),           # 1000 = 0.9765625 * 2**10
])
def test_quantize_multiplier_tflite_known_values(scale, want):
    assert quantize_multiplier_tflite(scale) == want


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0 ** -31, max_value=2.0 ** 30, allow_nan=False))
def test_quantize_multiplier_tflite_property(scale):
    m0, shift = quantize_multiplier_tflite(scale)
    assert (1 << 30) <= m0 < (1 << 31)
    assert -31 <= shift <= 31
    # M0 is q * 2**31 rounded half away from zero, q = scale / 2**shift in [0.5, 1].
    err = abs(Fraction(m0) - Fraction(scale) * Fraction(2) ** (31 - shift))
    assert err <= Fraction(1, 2)


@pytest.mark.parametrize("scale", [-0.5, math.inf, math.nan, None])
def test_quantize_multiplier_tflite_bad_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        quantize_multiplier_tflite(scale)


def test_numpy_float32_scales_are_accepted():
    # Frameworks store scales as float32; the conversion uses the float32 value exactly.
    scale = np.float32(0.1)
    m, s, rel = multiplier_from_scale(scale, mult_width=16)
    exact = Fraction(float(scale))
    assert (m, s) == (round(exact * 2 ** 19), 19)          # 0.1 * 2**19 = 52428.8
    assert rel == float(abs(Fraction(m, 1 << s) - exact) / exact)
    assert quantize_multiplier_tflite(scale) == quantize_multiplier_tflite(float(scale))
    with pytest.raises(ValueError, match="scale"):
        multiplier_from_scale(True)
