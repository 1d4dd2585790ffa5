"""The OCP MX golden model (:mod:`qdp.golden.mx`) against an exact nearest-code search
with Fractions, against ``ml_dtypes`` casts, and against torchao's ``to_mx`` (FLOOR scale
mode, CPU) with its documented differences counted."""

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import torch
from torchao.prototype.mx_formats import constants as torchao_constants
from torchao.prototype.mx_formats import mx_tensor as torchao_mx

from qdp.golden.mx import (E8M0_NAN, MX_ELEMENTS, element_values, mx_dequantize,
                           mx_quantize)

ELEMENTS = list(MX_ELEMENTS)


def hard_blocks(rng, blocks, elem, dtype=np.float32):
    """Blocks of 32 aimed at the element's grid: a power-of-two block maximum (so the
    shared scale is known), then exact ties between codes, codes themselves, their
    neighbours, values beyond the largest normal, subnormals, zeros of both signs, and
    random values; a few blocks with an Inf or a NaN, all zeros, or FP32 subnormals."""
    e = rng.integers(-120, 100, blocks)
    scale = np.ldexp(1.0, e - elem.emax)
    codes = np.arange(1 << elem.width, dtype=np.uint8)
    grid = element_values(codes, elem)
    grid = np.unique(np.abs(grid[np.isfinite(grid)]))
    mids = (grid[1:] + grid[:-1]) / 2
    pick = rng.random((blocks, 32))
    values = np.select([pick < 0.3, pick < 0.5, pick < 0.6, pick < 0.7],
                       [rng.choice(mids, (blocks, 32)), rng.choice(grid, (blocks, 32)),
                        rng.choice(mids, (blocks, 32)) * (1 + 2.0 ** -20),
                        rng.uniform(elem.max_value, 2.0 ** (elem.emax + 1), (blocks, 32))],
                       rng.uniform(-elem.max_value, elem.max_value, (blocks, 32)))
    values = values * np.where(rng.random((blocks, 32)) < 0.5, -1, 1) * scale[:, None]
    values[:, 0] = elem.max_value * scale * 1.0       # sets the shared exponent
    x = values.astype(dtype)
    x[0], x[1] = 0, np.float32(-0.0)
    x[2, 5], x[3, 7], x[4, 1] = np.inf, np.nan, -np.inf
    x[5] = np.ldexp(rng.uniform(-1, 1, 32), -140).astype(dtype)      # FP32 subnormals
    return x.reshape(-1)


def code_values(elem):
    """``(value, code)`` of every finite code (MXINT8 without -128), exact."""
    codes = np.arange(1 << elem.width, dtype=np.uint8)
    values = element_values(codes, elem)
    return [(Fraction(v), int(c)) for v, c in zip(values, codes)
            if math.isfinite(v) and not (elem.exp_bits == 0 and c == 0x80)]


def nearest_value(v, table, rounding):
    """The value of the code nearest ``v``; a tie goes to the even code (half_even) or
    to the larger magnitude (half_away)."""
    def key(entry):
        value, code = entry
        tie_rank = (code & 1) if rounding == "half_even" else -abs(value)
        return abs(value - v), tie_rank
    return min(table, key=key)[0]


@pytest.mark.parametrize("element", ELEMENTS)
@pytest.mark.parametrize("rounding", ["half_even", "half_away"])
def test_codes_are_the_nearest_code_exactly(element, rounding):
    elem = MX_ELEMENTS[element]
    rng = np.random.default_rng(len(element) + len(rounding))
    x = hard_blocks(rng, 24, elem)
    codes, scales = mx_quantize(x, element, rounding=rounding)
    table = code_values(elem)
    want_values = []
    for i, xi in enumerate(x):
        s = scales[i // 32]
        if s == E8M0_NAN:
            assert codes[i] == 0
            continue
        v = Fraction(float(xi)) / Fraction(2) ** (int(s) - 127)
        clipped = max(-Fraction(elem.max_value), min(Fraction(elem.max_value), v))
        want_values.append((i, nearest_value(clipped, table, rounding)))
    got = element_values(codes, elem)
    bad = [(i, float(x[i]), got[i], w) for i, w in want_values if got[i] != w]
    assert not bad, bad[:5]


@pytest.mark.parametrize("element", [e for e in ELEMENTS if e != "int8"])
def test_codes_equal_ml_dtypes_casts(element):
    """The scaled value (exact in float64) clipped to ±max and cast by ml_dtypes."""
    elem = MX_ELEMENTS[element]
    x = hard_blocks(np.random.default_rng(3), 400, elem)
    codes, scales = mx_quantize(x, element)
    finite = np.repeat(scales != E8M0_NAN, 32)
    v = np.ldexp(x.astype(np.float64), -(np.repeat(scales.astype(np.int64), 32) - 127))
    v = np.clip(v, -elem.max_value, elem.max_value)
    cast = v[finite].astype(elem.dtype).view(np.uint8)
    assert (codes[finite] == cast).all()
    assert finite.sum() > 12_000


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.float16])
def test_shared_scale_is_floor_log2_of_the_block_maximum(dtype):
    """Against ``frexp`` of the block maximum (exact in float64), every element format;
    just below a power of two a float log2 would be one too high."""
    rng = np.random.default_rng(5)
    low, high = (-20, 14) if dtype == np.float16 else (-30, 30)
    x = np.ldexp(rng.uniform(-1, 1, (300, 32)), rng.integers(low, high, (300, 1)))
    x[0, 3] = np.nextafter(np.float32(2.0 ** 10), np.float32(0))   # just below 2**10
    x = x.astype(dtype)
    amax = np.abs(x.astype(np.float64)).max(axis=1)
    for element, elem in MX_ELEMENTS.items():
        _, scales = mx_quantize(x.reshape(-1), element)
        _, e = np.frexp(amax)
        want = np.clip(e - 1 - elem.emax, -127, 127) + 127
        assert (scales == np.where(amax == 0, 0, want)).all(), element


@pytest.mark.parametrize("element", ELEMENTS)
def test_dequantize_is_exact_then_rounded_to_fp32(element):
    elem = MX_ELEMENTS[element]
    codes = np.resize(np.arange(1 << elem.width, dtype=np.uint8), 32 * 8)
    scales = np.array([0, 1, 127, 130, 200, 254, 255, 60], dtype=np.uint8)
    out = mx_dequantize(codes, scales, element)
    values = element_values(codes, elem)
    for i, (c, y) in enumerate(zip(codes, out)):
        s = int(scales[i // 32])
        if s == E8M0_NAN or not math.isfinite(values[i]):
            assert math.isnan(y) or (math.isinf(values[i]) and math.isinf(y)), (c, s, y)
            continue
        exact = Fraction(values[i]) * Fraction(2) ** (s - 127)
        want = np.float32(float(exact)) if abs(exact) < Fraction(2) ** 200 else \
            np.float32(np.inf) * np.sign(float(values[i]))
        assert y == want or (y == 0 and want == 0), (element, c, s, y, want)


@pytest.mark.parametrize("element", ["fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3",
                                     "fp4_e2m1"])
def test_conformance_torchao_to_mx_floor(element):
    """torchao's ``to_mx`` (FLOOR): the same scales and codes on every finite block whose
    scale byte is above 0. Its documented differences, counted: a byte-0 scale is used
    as 2**-126 (``F32_MIN_NORMAL``) instead of 2**-127, and an Inf block gets the finite
    byte ``128 - emax + 127`` instead of NaN (0xFF)."""
    elem = MX_ELEMENTS[element]
    dtype = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2,
             "fp6_e3m2": torchao_constants.DTYPE_FP6_E3M2,
             "fp6_e2m3": torchao_constants.DTYPE_FP6_E2M3,
             "fp4_e2m1": torch.float4_e2m1fn_x2}[element]
    x = hard_blocks(np.random.default_rng(11), 600, elem)
    codes, scales = mx_quantize(x, element)
    t_scales, t_codes = torchao_mx.to_mx(torch.from_numpy(x.reshape(-1, 32)), dtype, 32)
    t_scales = t_scales.view(torch.uint8).numpy().reshape(-1)
    t_codes = t_codes.view(torch.uint8).numpy().reshape(-1)
    if element == "fp4_e2m1":          # two codes per byte, the first in the low nibble
        t_codes = np.stack([t_codes & 0xF, t_codes >> 4], axis=1).reshape(-1)
    finite = scales != E8M0_NAN
    inf_block = ~finite & np.isinf(x.reshape(-1, 32)).any(axis=1) & \
        ~np.isnan(x.reshape(-1, 32)).any(axis=1)
    assert (t_scales[finite] == scales[finite]).all()
    assert (t_scales[inf_block] == 128 - elem.emax + 127).all() and inf_block.sum() == 2
    same = np.repeat(finite & (scales > 0), 32)
    assert same.sum() >= 540 * 32
    assert (t_codes[same] == codes[same]).all()
    # Where they differ: only byte-0 blocks (torchao divides by 2**-126) and NaN blocks.
    differ = (t_codes != codes).reshape(-1, 32).any(axis=1)
    assert not (differ & finite & (scales > 0)).any()


def test_ties_away_differs_from_half_even_only_on_ties():
    """microxcaling's default rounding (ties away from zero), here as
    ``rounding="half_away"``: the codes differ from half even only where the scaled
    value lies exactly between two codes, by one step; counted on the tie-heavy blocks."""
    counts = {}
    for element, elem in MX_ELEMENTS.items():
        x = hard_blocks(np.random.default_rng(17), 200, elem)
        even, scales = mx_quantize(x, element)
        away, _ = mx_quantize(x, element, rounding="half_away")
        differ = element_values(even, elem) != element_values(away, elem)
        v = np.ldexp(x.astype(np.float64), -(np.repeat(scales.astype(np.int64), 32) - 127))
        grid = element_values(np.arange(1 << elem.width, dtype=np.uint8), elem)
        grid = np.unique(grid[np.isfinite(grid)])
        ties = np.isin(np.abs(v), (grid[1:] + grid[:-1]) / 2)
        assert not (differ & ~ties).any()
        assert (np.abs(element_values(away, elem)) >= np.abs(element_values(even, elem)))[
            differ].all()
        counts[element] = int(differ.sum())
    assert all(n > 100 for n in counts.values()), counts


@pytest.mark.parametrize("call, match", [
    (lambda: mx_quantize(np.zeros(32, np.float32), "fp8"), "element"),
    (lambda: mx_quantize(np.zeros(30, np.float32), "int8"), "block_size"),
    (lambda: mx_quantize(np.zeros(32, np.float32), "int8", block_size=0), "block_size"),
    (lambda: mx_quantize(np.zeros(32, np.float64), "int8"), "x"),
    (lambda: mx_quantize(np.zeros(32, np.float32), "int8", rounding="stochastic"),
     "rounding"),
    (lambda: mx_dequantize(np.zeros(64, np.uint8), np.zeros(1, np.uint8), "int8"),
     "scales"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("element", sorted(MX_ELEMENTS))
@pytest.mark.parametrize("out_format, dtype", [("bf16", ml_dtypes.bfloat16),
                                               ("fp16", np.float16)])
def test_dequantize_to_16_bits_is_one_rounding(element, out_format, dtype):
    """Every code with every scale byte: FP32 holds each value exactly (or overflows, as
    the 16-bit formats do), so one cast of the FP32 result is the single rounding."""
    width = MX_ELEMENTS[element].width
    codes = np.tile(np.arange(1 << width, dtype=np.uint8), 256)
    scales = np.repeat(np.arange(256, dtype=np.uint8), (1 << width) // 16)
    got = mx_dequantize(codes, scales, element, block_size=16, out_format=out_format)
    want = mx_dequantize(codes, scales, element, block_size=16).astype(dtype)
    assert got.dtype == dtype
    nan = np.isnan(want)
    assert (np.isnan(got) == nan).all()
    assert (got[~nan].view(np.uint16) == want[~nan].view(np.uint16)).all()
