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
