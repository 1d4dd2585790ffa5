# amaranth: UnusedElaboratable=no
"""DequantizeLinear in Amaranth's own simulator against
:func:`qdp.golden.dequantize_linear`: narrow and wide inputs (with and without a zero
point), every output format, constant and run-time scales (special scales included),
random valid gaps and backpressure; latency at full rate; parameter checks."""

import numpy as np
import pytest

from _float_blocks import check_block
from qdp.golden import floats
from qdp.hdl.dequantize_linear import DequantizeLinear
from qdp.sim import dequantize_linear_tb

CASES = [
    dict(scale=0.037, zero_point=5, lanes=2),
    dict(in_width=8, in_signed=False, out_format="bf16", runtime_scale=True),
    dict(in_width=16, out_format="fp16", runtime_scale=True, per_lane=True, lanes=2),
    dict(in_width=32, out_format="fp32", scale=1.7e-5, zero_point=-123456),
    dict(in_width=32, out_format="fp32", scale=3.3e-7),                 # no zero point
    dict(in_width=32, out_format="bf16", runtime_scale=True),
    dict(in_width=24, in_signed=False, out_format="fp16", scale=0.001),
    dict(in_width=4, out_format="e3m3", runtime_scale=True),
    dict(in_width=8, out_format="bf16", runtime_scale=True, block_scale=True, lanes=2),
    dict(in_width=32, out_format="fp32", runtime_scale=True, block_scale=True, per_lane=True,
         lanes=2),
]


@pytest.mark.parametrize("params", CASES, ids=lambda p: "-".join(f"{k}={v}" for k, v in
                                                                   p.items()))
def test_bit_exact(params):
    check_block(DequantizeLinear(**params), dequantize_linear_tb, 600, seed=len(params))


def test_latency_at_full_rate():
    q = DequantizeLinear(out_format="bf16", runtime_scale=True)
    cycles = check_block(q, dequantize_linear_tb, 50, seed=2, in_pause=0.0, out_pause=0.0)
    assert cycles == 50 + q.latency


@pytest.mark.parametrize("params, match", [
    (dict(out_format="fp64"), "out_format"),
    (dict(in_width=1), "in_width"),
    (dict(in_width=33), "in_width"),
    (dict(scale=0.0), "scale"),
    (dict(scale=-2.0), "scale"),
    (dict(scale=float("inf")), "scale"),
    (dict(scale=float("nan")), "scale"),
    (dict(zero_point=128), "zero_point"),
    (dict(zero_point=-1, in_signed=False), "zero_point"),
    (dict(runtime_scale=True, zero_point=0), "zero_point"),
    (dict(per_lane=True, lanes=2, scale=[1.0, 2.0, 3.0]), "scale"),
    (dict(lanes=65), "lanes"),
    (dict(block_scale=True, scale=1.0), "block_scale"),
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DequantizeLinear(**params)


def test_constant_scale_is_rounded_to_the_format():
    q = DequantizeLinear(out_format="fp16", scale=0.1)
    assert q.scale_bits == int(floats.FP16.bits(np.float16(0.1)))
