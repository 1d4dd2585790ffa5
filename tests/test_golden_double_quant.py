"""Double quantization (:mod:`qdp.golden.double_quant`) against a transliteration of
bitsandbytes' CUDA ``dQuantize<0>`` binary search, exact rationals, and the installed
bitsandbytes' CPU functions, their differences counted."""

from fractions import Fraction

import bitsandbytes.functional as bnb
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from qdp.golden import floats
from qdp.golden.double_quant import (double_dequantize, double_quantize, dynamic_dequantize,
                                     dynamic_map, dynamic_quantize, midpoints)
from qdp.golden.nf4 import nf4_dequantize, nf4_quantize

T = dynamic_map()


def kernel_search(x):
    """``dQuantize<0>`` of ``csrc/kernels.cu``, step for step, in FP32."""
    pivot, upper_pivot, lower_pivot = 127, 255, 0
    lower, upper = np.float32(-1), np.float32(1)
    val = T[pivot]
    step = 64
    while step:
        if x > val:
            lower_pivot, lower, pivot = pivot, val, pivot + step
        else:
            upper_pivot, upper, pivot = pivot, val, pivot - step
        val = T[pivot]
        step >>= 1
    if upper_pivot == 255:
        upper = T[upper_pivot]
    if lower_pivot == 0:
        lower = T[lower_pivot]
    if x > val:
        return upper_pivot if x > np.float32(np.float32(upper + val) * np.float32(0.5)) \
            else pivot
    return lower_pivot if x < np.float32(np.float32(lower + val) * np.float32(0.5)) else pivot


def test_map_is_bitsandbytes_create_dynamic_map():
    want = bnb.create_dynamic_map().numpy()
    assert (T.view(np.uint32) == want.view(np.uint32)).all()
    assert T.size == 256 and (np.diff(T) > 0).all() and T[127] == 0 and T[255] == 1


def test_codes_follow_the_kernel_search():
    """Values on, just above and just below every FP32 midpoint, every map value, NaN:
    with absmax 1 the normalised value is the input itself."""
    mid = midpoints()
    rng = np.random.default_rng(2)
    probes = np.concatenate([mid, np.nextafter(mid, np.float32(2)),
                             np.nextafter(mid, np.float32(-2)), T,
                             rng.uniform(-1, 1, 4000).astype(np.float32)])
    x = np.concatenate([[np.float32(1)], probes, [np.float32(np.nan)]]).astype(np.float32)
    codes, absmax = dynamic_quantize(x, block_size=x.size)
    assert absmax[0] == 1
    want = [kernel_search(np.float32(v)) for v in x]
    assert codes.tolist() == want
    on = codes[1:1 + mid.size]
    assert (on == np.arange(mid.size) + (np.arange(mid.size) % 2)).all()  # ties: even
    assert codes[-1] == 0                                                 # NaN: code 0


def test_codes_are_nearest_in_exact_arithmetic():
    """Away from the FP32 midpoints' own rounding the code is the nearest map value."""
    rng = np.random.default_rng(3)
    x = np.concatenate([[np.float32(1)], rng.uniform(-1, 1, 3000).astype(np.float32)])
    codes, _ = dynamic_quantize(x, block_size=x.size)
    exact = [Fraction(float(t)) for t in T]
    for v, c in zip(x, codes):
        d = [abs(Fraction(float(v)) - t) for t in exact]
        assert d[c] == min(d) or abs(d[c] - min(d)) <= Fraction(2) ** -24


def test_all_zero_block_and_short_last_block():
    x = np.zeros(300, np.float32)
    x[256:] = np.linspace(-3, 5, 44, dtype=np.float32)
    codes, absmax = dynamic_quantize(x)
    assert absmax.tolist() == [0.0, 5.0]
    assert (codes[:256] == 0).all()                 # 0 * Inf is NaN: code 0
    back = dynamic_dequantize(codes, absmax)
    assert np.signbit(back[:256]).all() and (back[:256] == 0).all()     # T[0] * 0 = -0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-2.0 ** 100, 2.0 ** 100, width=32), min_size=1, max_size=600))
def test_codes_are_monotone_and_dequantize_is_one_product(values):
    x = np.array(values, dtype=np.float32)
    codes, absmax = dynamic_quantize(x, block_size=x.size)
    order = np.argsort(x, kind="stable")
    assert (np.diff(codes[order].astype(int)) >= 0).all()
    back = dynamic_dequantize(codes, absmax, block_size=x.size)
    want = [floats.from_fraction(Fraction(float(T[c])) * Fraction(float(absmax[0])),
                                 floats.FP32) for c in codes]
    zero_sign = ((T[codes] < 0) ^ np.signbit(absmax[0])).astype(int) << 31
    want = [w if w else int(z) for w, z in zip(want, zero_sign)]     # -1 * 0 is -0
    assert back.view(np.uint32).tolist() == want


def test_offset_is_the_correctly_rounded_mean():
    rng = np.random.default_rng(4)
    absmax = np.abs(rng.standard_normal(1000)).astype(np.float32) * np.float32(3)
    _, _, offset = double_quantize(absmax)
    exact = sum(Fraction(float(a)) for a in absmax) / absmax.size
    assert offset.view(np.uint32) == floats.from_fraction(exact, floats.FP32)


def _bnb_states(seed, blocks):
    """bitsandbytes' packed NF4 codes and FP32 absmax of a random tensor, and the state
    of the same quantization with double-quantized constants."""
    a = torch.randn(64 * blocks, generator=torch.Generator().manual_seed(seed))
    packed, plain = bnb.quantize_4bit(a, blocksize=64, quant_type="nf4")
    _, state = bnb.quantize_4bit(a, blocksize=64, compress_statistics=True,
                                 quant_type="nf4")
    return packed, plain.absmax, state


def test_conformance_bitsandbytes_cpu():
    """Against ``quantize_4bit(..., compress_statistics=True)`` on CPU: the offset (torch's
    float32 mean) is within one ulp of the correctly rounded mean; given torch's offset,
    absmax2 is equal and the codes differ only where the CPU path's lookup table over a
    fixed grid of normalised values (``norm_to_lut_index``, not the kernel's midpoint
    search) picks the neighbouring code; dequantization is bit-exact. Counted in the
    README (``pytest tests/test_golden_double_quant.py -k conformance -s``)."""
    offsets = codes_differ = total = 0
    for seed in range(8):
        packed, absmax, state = _bnb_states(seed, 1000 + 37 * seed)
        _, _, offset = double_quantize(absmax.numpy())
        torch_offset = np.float32(state.offset.item())
        ulps = abs(int(offset.view(np.int32)) - int(torch_offset.view(np.int32)))
        assert ulps <= 1
        offsets += ulps != 0
        centred = (absmax - state.offset).numpy()
        codes, absmax2 = dynamic_quantize(centred)
        assert (absmax2 == state.state2.absmax.numpy()).all()
        diff = codes.astype(int) - state.absmax.numpy().astype(int)
        assert (np.abs(diff) <= 1).all()
        codes_differ += int((diff != 0).sum())
        total += codes.size
        back = double_dequantize(state.absmax.numpy(), state.state2.absmax.numpy(),
                                 torch_offset)
        want = (bnb.dequantize_blockwise(state.absmax, state.state2) + state.offset).numpy()
        assert (back.view(np.uint32) == want.view(np.uint32)).all()
        got = nf4_dequantize(packed.numpy().reshape(-1), back)
        want = bnb.dequantize_4bit(packed, state).numpy()
        assert (got.view(np.uint32) == want.reshape(-1).view(np.uint32)).all()
    print(f"\ndouble quantization vs bitsandbytes CPU: offset differs by one ulp in "
          f"{offsets}/8 tensors; codes differ by one step in {codes_differ}/{total}")
    assert codes_differ < total // 100


def test_round_trip_error_is_small():
    """The second quantization moves no block constant by more than a step of the map."""
    x = np.random.default_rng(5).standard_normal(64 * 2048).astype(np.float32)
    _, absmax = nf4_quantize(x)
    back = double_dequantize(*double_quantize(absmax))
    assert np.max(np.abs(back - absmax)) < 0.02 * np.max(absmax)


@pytest.mark.parametrize("call, match", [
    (lambda: dynamic_quantize(np.ones(4, np.float32), block_size=0), "block_size: 0"),
    (lambda: dynamic_dequantize(np.zeros(4, np.uint8), np.ones(3, np.float32)),
     "absmax: expected 1"),
    (lambda: double_quantize(np.zeros(0, np.float32)), "absmax: double quantization"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
