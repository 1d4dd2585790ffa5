"""The NF4 golden model (:mod:`qdp.golden.nf4`) against a transliteration of
bitsandbytes' CUDA ``dQuantizeNF4`` tree, exact threshold cases, and the installed
bitsandbytes' CPU ``quantize_4bit`` / ``dequantize_4bit``, its differences counted."""

import bitsandbytes.functional as bnb
import numpy as np
import pytest
import torch

from qdp.golden.nf4 import CODE_VALUES, THRESHOLDS, nf4_dequantize, nf4_quantize

T = [float(t) for t in THRESHOLDS]


def kernel_tree(x):
    """``dQuantizeNF4`` of ``csrc/kernels.cu``, branch for branch (thresholds in FP32)."""
    if x > T[7]:
        if x > T[11]:
            if x > T[13]:
                return 0b1111 if x > T[14] else 0b1110
            return 0b1101 if x > T[12] else 0b1100
        if x > T[9]:
            return 0b1011 if x > T[10] else 0b1010
        return 0b1001 if x > T[8] else 0b1000
    if x > T[3]:
        if x > T[5]:
            return 0b0111 if x > T[6] else 0b0110
        return 0b0101 if x > T[4] else 0b0100
    if x > T[1]:
        return 0b0011 if x > T[2] else 0b0010
    return 0b0001 if x > T[0] else 0b0000


def unpack(packed):
    return np.stack([packed >> 4, packed & 0xF], axis=1).reshape(-1)


def test_codes_follow_the_kernel_tree():
    """Per element the kernel's tree on ``fl32(x * fl32(1 / absmax))``, including values
    on and next to every threshold, zeros, NaN and Inf blocks."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (200, 64)).astype(np.float32)
    x[:, 0] = 1.0                                 # absmax 1: v = x exactly
    x[:100, 1:16] = THRESHOLDS
    x[:100, 16:31] = np.nextafter(THRESHOLDS, np.float32(np.inf))
    x[:100, 31:46] = np.nextafter(THRESHOLDS, np.float32(-np.inf))
    x[150] = 0
    x[151, 3], x[152, 9], x[153, 0] = np.nan, np.inf, -np.inf
    packed, absmax = nf4_quantize(x.reshape(-1))
    codes = unpack(packed).reshape(200, 64)
    with np.errstate(all="ignore"):
        c = (np.float32(1) / absmax).astype(np.float32)
        v = (x * c[:, None]).astype(np.float32)
    want = np.vectorize(kernel_tree)(v.astype(np.float64))
    assert (codes == want).all()
    assert (codes[:100, 1:16] == np.arange(15)).all()          # on a threshold: lower
    assert (codes[:100, 16:31] == np.arange(1, 16)).all()
    assert (codes[150] == 0).all()                              # 0 * Inf is NaN: code 0
    assert absmax[151] == np.nanmax(np.abs(x[151]))             # fmaxf passes NaN over
    assert codes[151, 3] == 0


def test_block_of_nans_keeps_the_kernels_start_value():
    x = np.full(64, np.nan, np.float32)
    packed, absmax = nf4_quantize(x)
    assert absmax[0] == -np.finfo(np.float32).max and (packed == 0).all()


def test_dequantize_is_one_fp32_product():
    rng = np.random.default_rng(2)
    packed = rng.integers(0, 256, 512, dtype=np.uint8)
    absmax = rng.standard_normal(16).astype(np.float32) * 10
    absmax[3] = 0
    y = nf4_dequantize(packed, absmax)
    want = (CODE_VALUES[unpack(packed)] * np.repeat(absmax, 64)).astype(np.float32)
    assert (y.view(np.uint32) == want.view(np.uint32)).all()


@pytest.mark.parametrize("block_size", [32, 64, 256, 4096])
def test_conformance_bitsandbytes_cpu(block_size):
    """bitsandbytes' CPU path (``backends/default/ops.py``) computes its thresholds as
    FP32 midpoints of the code values, clamps ``x * (1/absmax)`` to [-1, 1] and gives an
    all-zero block code 7 (0.0) where the kernel gives 0: the same codes everywhere
    else, and the same absmax and dequantized values."""
    rng = np.random.default_rng(block_size)
    x = rng.standard_normal(block_size * 256).astype(np.float32)
    x[:block_size] = 0                                          # an all-zero block
    packed, absmax = nf4_quantize(x, block_size=block_size)
    q, state = bnb.quantize_4bit(torch.from_numpy(x), blocksize=block_size,
                                 quant_type="nf4")
    ours, theirs = unpack(packed), unpack(q.numpy().reshape(-1))
    assert (state.absmax.numpy() == absmax).all()
    differ = ours != theirs
    assert (differ[:block_size] & (ours[:block_size] == 0) &
            (theirs[:block_size] == 7)).all()
    assert not differ[block_size:].any()
    y = bnb.dequantize_4bit(q, state).numpy().reshape(-1)
    mine = nf4_dequantize(packed, absmax, block_size=block_size)
    assert (y[block_size:].view(np.uint32) == mine[block_size:].view(np.uint32)).all()


def test_cpu_midpoints_are_the_kernel_literals():
    """The CPU path's thresholds, FP32 midpoints of the code values, are exactly the
    kernel's literals rounded to FP32: the two paths differ only in the all-zero block
    (and the clamp, which moves no code)."""
    midpoints = ((CODE_VALUES[:-1] + CODE_VALUES[1:]) / np.float32(2)).astype(np.float32)
    assert (midpoints.view(np.uint32) == THRESHOLDS.view(np.uint32)).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(block_size=16), "block_size"), (dict(block_size=8192), "block_size"),
    (dict(block_size=48), "block_size"), (dict(block_size=True), "block_size"),
])
def test_bad_block_size(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nf4_quantize(np.zeros(64, np.float32), **kwargs)


def test_bad_input():
    with pytest.raises(ValueError, match="even"):
        nf4_quantize(np.zeros(63, np.float32))
    with pytest.raises(ValueError, match="x: expected float32"):
        nf4_quantize(np.zeros(64, np.float64))
    with pytest.raises(ValueError, match="absmax"):
        nf4_dequantize(np.zeros(64, np.uint8), np.zeros(3, np.float32))
