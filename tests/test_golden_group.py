"""Group int4 (:mod:`qdp.golden.group`) against transliterations of GPTQ's
``Quantizer.find_params`` / ``quantize`` and AutoAWQ's ``pseudo_quantize_tensor`` in
torch (FP32, CPU), exact rationals, and the packing loops of both projects."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from qdp.golden.group import (AWQ_ORDER, group_dequantize, group_pack, group_quantize,
                              group_unpack)


def gptq_reference(w, bits):
    """GPTQ's ``find_params(sym=False)`` and ``quantize`` per row of ``w``."""
    maxq = torch.tensor(2 ** bits - 1)
    tmp = torch.zeros(w.shape[0])
    xmin = torch.minimum(w.min(1)[0], tmp)
    xmax = torch.maximum(w.max(1)[0], tmp)
    tmp = (xmin == 0) & (xmax == 0)
    xmin[tmp], xmax[tmp] = -1, +1
    scale = (xmax - xmin) / maxq
    zero = torch.round(-xmin / scale)
    q = torch.clamp(torch.round(w / scale[:, None]) + zero[:, None], 0, maxq)
    return q, scale, zero, scale[:, None] * (q - zero[:, None])


def awq_symmetric_reference(w, bits):
    """AutoAWQ's ``pseudo_quantize_tensor`` with ``zero_point=False``."""
    max_val = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-5)
    max_int, min_int = 2 ** (bits - 1) - 1, -(2 ** (bits - 1))
    scales = max_val / max_int
    q = torch.clamp(torch.round(w / scales), min_int, max_int)
    return q, scales[:, 0], q * scales


def weights(seed, groups, group_size):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(groups, group_size, generator=g) * torch.rand(groups, 1, generator=g)
    w[0] = 0                                       # all zero: range -1..1
    w[1] = w[1].abs()                              # non-negative: lo = 0
    w[2, 5] = 40.0                                 # an outlier
    w[3] = -w[3].abs() * 1e-30                     # tiny, negative
    return w


@pytest.mark.parametrize("bits", (2, 3, 4, 8))
@pytest.mark.parametrize("group_size", (32, 128))
def test_asymmetric_is_gptq(bits, group_size):
    w = weights(bits * 7 + group_size, 300, group_size)
    q, scale, zero, back = gptq_reference(w, bits)
    codes, scales, zeros = group_quantize(w.numpy().reshape(-1), bits=bits,
                                          group_size=group_size)
    assert (codes == q.numpy().reshape(-1)).all()
    assert (scales.view(np.uint32) == scale.numpy().view(np.uint32)).all()
    assert (zeros == zero.numpy()).all()
    got = group_dequantize(codes, scales, zeros, group_size=group_size)
    assert (got.view(np.uint32) == back.numpy().reshape(-1).view(np.uint32)).all()


@pytest.mark.parametrize("bits", (4, 8))
def test_symmetric_is_awq(bits):
    w = weights(bits, 300, 128)
    q, scale, back = awq_symmetric_reference(w, bits)
    codes, scales, zeros = group_quantize(w.numpy().reshape(-1), bits=bits, symmetric=True)
    assert (codes == q.numpy().reshape(-1)).all() and (zeros == 0).all()
    assert (scales.view(np.uint32) == scale.numpy().view(np.uint32)).all()
    got = group_dequantize(codes, scales, zeros)
    want = back.numpy().reshape(-1)
    # Integer codes have no -0: torch's round(-0.3) * scale is -0, qdp's +0.
    assert (got.view(np.uint32) == np.where(want == 0, 0, want).view(np.uint32)).all()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(-2.0 ** 60, 2.0 ** 60, width=32), min_size=8, max_size=8),
       st.booleans())
def test_codes_are_the_nearest_step_in_exact_arithmetic(values, symmetric):
    """Given the FP32 scale and zero, ``q`` is the clamped nearest integer to the exact
    ``x / scale`` (+ zero) but where FP32's own rounding of the quotient moved a tie."""
    x = np.array(values, dtype=np.float32)
    codes, scales, zeros = group_quantize(x, group_size=8, symmetric=symmetric)
    lo, hi = (-8, 7) if symmetric else (0, 15)
    s = Fraction(float(scales[0]))
    for v, c in zip(x, codes):
        exact = Fraction(float(v)) / s
        want = min(max(round(exact) + int(zeros[0]), lo), hi)
        assert c == want or abs(abs(exact - int(exact)) - Fraction(1, 2)) < Fraction(2) ** -20


def fl32_of_fraction(value, negative):
    """The FP32 pattern of the exact rational ``value`` (the sign of a zero from
    ``negative``), rounded half to even with subnormals and overflow to Inf: written out
    here, independent of :mod:`qdp.golden.floats`."""
    sign = (1 << 31) if negative else 0
    magnitude = abs(value)
    if magnitude == 0:
        return sign
    # The leading one's exponent e, 2**e <= |v| < 2**(e + 1).
    e = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** e > magnitude:
        e -= 1
    lsb = max(e - 23, -149)                      # the last place, the subnormals' below
    scaled = magnitude / Fraction(2) ** lsb
    m = int(scaled)
    rest = scaled - m
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and m % 2):
        m += 1
    # Biased exponent lsb + 150 (1 at the subnormals' place, where m < 2**23 also
    # encodes); a carry to 2**24 moves into the next binade by itself.
    bits = ((lsb + 150) << 23) + m - (1 << 23)
    return sign | min(bits, 0x7F800000)


def exact_dequantize(q, zero, scale_bits):
    """``fl32(scale * (q - zero))`` from the rationals, IEEE's specials written out: the
    canonical NaN for a NaN scale and ``Inf * 0``, a zero product's sign the XOR of the
    signs (``q - zero = 0`` counting as positive)."""
    d = q - zero
    negative = bool(scale_bits >> 31) != (d < 0)
    field, man = (scale_bits >> 23) & 0xFF, scale_bits & 0x7FFFFF
    if field == 0xFF:
        if man or d == 0:
            return 0x7FC00000
        return (1 << 31 if negative else 0) | 0x7F800000
    significand = man | (1 << 23 if field else 0)
    scale = Fraction(significand) * Fraction(2) ** (max(field, 1) - 150)
    return fl32_of_fraction(scale * d, negative)


#: Scale patterns at IEEE's edges, each with both signs: zero, the smallest and largest
#: subnormals, the smallest normal, 1 and its neighbour (ties when multiplied by odd
#: integers), FLT_MAX and FLT_MAX / 255 (overflow at the largest differences), Inf and
#: NaNs (quiet, signalling, with payloads).
EDGE_SCALES = [s | sign for s in (
    0, 1, 0x007FFFFF, 0x00800000, 0x00000003, 0x3F800000, 0x3F800001, 0x3FFFFFFF,
    0x7F7FFFFF, 0x7F7FFFFE, 0x7B80807F, 0x7B808081, 0x7F000000, 0x7F800000, 0x7FC00000,
    0x7F800001, 0x7FC12345, 0x7FFFFFFF) for sign in (0, 1 << 31)]


def _check_exact(q, zero, scales):
    """Every (q, zero) pair against every scale pattern; ``q``, ``zero`` flat int64."""
    n = len(scales)
    codes, per_scale = np.repeat(q, n), np.tile(np.asarray(scales, np.int64), len(q))
    zeros = np.repeat(zero, n)
    got = group_dequantize(codes, per_scale.astype(np.uint32).view(np.float32), zeros,
                           group_size=1).view(np.uint32)
    want = [exact_dequantize(int(c), int(z), int(s))
            for c, z, s in zip(codes, zeros, per_scale)]
    bad = np.flatnonzero(got != np.array(want, dtype=np.uint32))
    assert not len(bad), [(int(codes[b]), int(zeros[b]), hex(per_scale[b]), hex(got[b]),
                           hex(want[b])) for b in bad[:5]]


@pytest.mark.parametrize("bits", (2, 3, 4))
def test_dequantize_is_exact_for_every_code_zero_and_edge_scale(bits):
    """Every asymmetric (code, zero) pair and every signed code (zero 0) of ``bits`` bits,
    against every edge scale and a hundred random patterns."""
    scales = EDGE_SCALES + list(np.random.default_rng(bits).integers(0, 1 << 32, 100))
    q, zero = np.divmod(np.arange(1 << (2 * bits)), 1 << bits)
    _check_exact(q, zero, scales)
    _check_exact(np.arange(-(1 << (bits - 1)), 1 << (bits - 1)), np.zeros(1 << bits,
                                                                          np.int64), scales)


def test_dequantize_is_exact_for_every_8_bit_difference():
    """Every ``q - zero`` of 8-bit codes (-255..255) against the edge scales."""
    d = np.arange(-255, 256)
    _check_exact(np.maximum(d, 0), np.maximum(-d, 0), EDGE_SCALES)


def test_exact_reference_rounds_as_numpy_casts():
    """The test's own rounding against NumPy's float64 -> float32 cast (correctly
    rounded) on float64 values across FP32's range, subnormals and overflow included, and
    on the ties of the edges."""
    rng = np.random.default_rng(7)
    values = np.ldexp(rng.uniform(1, 2, 3000), rng.integers(-160, 130, 3000))
    values[::7] = np.ldexp(np.round(values[::7] * 2.0 ** 24) / 2.0 ** 24, 0)
    with np.errstate(over="ignore"):
        want = values.astype(np.float32).view(np.uint32)
    got = [fl32_of_fraction(Fraction(float(v)), False) for v in values]
    assert (np.array(got, dtype=np.uint32) == want).all()
    two = Fraction(2)
    assert fl32_of_fraction(two ** -150, False) == 0                  # a tie to even: 0
    assert fl32_of_fraction(3 * two ** -150, True) == 0x80000002      # a tie to even: 2
    assert fl32_of_fraction(two ** 128 * (1 - two ** -25), False) == 0x7F800000
    assert fl32_of_fraction(two ** 128 * (1 - two ** -24), True) == 0xFF7FFFFF
    assert fl32_of_fraction(3 * (1 + two ** -23), False) == 0x40400002  # tie: up to even


@settings(max_examples=300, deadline=None)
@given(st.integers(0, (1 << 32) - 1), st.integers(-255, 255))
def test_dequantize_is_exact_for_any_scale_pattern(scale_bits, d):
    _check_exact(np.array([max(d, 0)]), np.array([max(-d, 0)]), [scale_bits])


def test_packing_follows_gptq_and_awq_loops():
    codes = np.random.default_rng(0).integers(0, 16, (3, 64))
    gptq = np.zeros((3, 8), dtype=np.uint64)
    for i in range(0, 64, 8):                       # qweight[row] |= w[j] << (4*(j-i))
        for j in range(i, i + 8):
            gptq[:, i // 8] |= codes[:, j].astype(np.uint64) << np.uint64(4 * (j - i))
    awq = np.zeros((3, 8), dtype=np.uint64)
    for col in range(8):                            # q[:, col] |= w[:, col*8+o[i]] << 4i
        for i in range(8):
            awq[:, col] |= codes[:, col * 8 + AWQ_ORDER[i]].astype(np.uint64) \
                << np.uint64(4 * i)
    assert (group_pack(codes, "gptq") == gptq.astype(np.uint32)).all()
    assert (group_pack(codes, "awq") == awq.astype(np.uint32)).all()
    for order in ("gptq", "awq"):
        assert (group_unpack(group_pack(codes, order), order) == codes).all()


@pytest.mark.parametrize("call, match", [
    (lambda: group_quantize(np.ones(128, np.float32), group_size=0), "group_size: 0"),
    (lambda: group_quantize(np.ones(100, np.float32)), "group_size: 100 elements"),
    (lambda: group_quantize(np.ones(128, np.float32), bits=1), "bits: 1"),
    (lambda: group_quantize(np.full(128, np.inf, np.float32)), "x: group quantization"),
    (lambda: group_pack(np.zeros(8), order="nibble"), "order: 'nibble'"),
    (lambda: group_dequantize(np.zeros(128), np.ones(2), np.zeros(2)), "scales, zeros"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
