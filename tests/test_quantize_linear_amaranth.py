# amaranth: UnusedElaboratable=no
"""QuantizeLinear in Amaranth's own simulator against :func:`qdp.golden.quantize_linear`:
every format, both rounding models, constant and run-time scales (special scales
included; with every beat or once per block on their own stream), random valid gaps and backpressure; latency at full rate; parameter checks."""

import numpy as np
import pytest

from qdp.golden import floats
from qdp.hdl.quantize_linear import QuantizeLinear
from qdp.sim import quantize_linear_tb
from _float_blocks import check_block


def _check(q, beats, seed, **pauses):
    return check_block(q, quantize_linear_tb, beats, seed, **pauses)


CASES = [
    dict(in_format="fp32", scale=0.037, zero_point=5, lanes=2),
    dict(in_format="bf16", runtime_scale=True),
    dict(in_format="fp16", runtime_scale=True, per_lane=True, lanes=2, out_signed=False,
         rounding_model="exact", rounding="half_zero"),
    dict(in_format="e3m3", runtime_scale=True, out_width=4, rounding_model="exact",
         rounding="floor"),
    dict(in_format="e3m2", runtime_scale=True, out_width=16),
    dict(in_format="bf16", runtime_scale=True, block_scale=True, lanes=2),
    dict(in_format="fp16", runtime_scale=True, block_scale=True, per_lane=True, lanes=3,
         rounding_model="exact", rounding="half_away"),
]


@pytest.mark.parametrize("params", CASES, ids=lambda p: "-".join(f"{k}={v}" for k, v in
                                                                   p.items()))
def test_bit_exact(params):
    _check(QuantizeLinear(**params), 600, seed=len(params))


def test_latency_at_full_rate():
    q = QuantizeLinear(in_format="bf16", runtime_scale=True)
    beats = 50
    cycles = _check(q, beats, seed=2, in_pause=0.0, out_pause=0.0)
    assert cycles == beats + q.latency
    assert q.latency == q.fraction_bits + 16


@pytest.mark.parametrize("model, fraction, latency", [("onnx", 25, 41), ("exact", 10, 24)])
def test_quotient_bits_and_latency(model, fraction, latency):
    q = QuantizeLinear(in_format="fp32", rounding_model=model)
    assert q.fraction_bits == fraction and q.latency == latency


@pytest.mark.parametrize("params, match", [
    (dict(in_format="fp64"), "in_format"),
    (dict(in_format="e2m5"), "in_format"),
    (dict(out_width=1), "out_width"),
    (dict(out_width=17), "out_width"),
    (dict(scale=0.0), "scale"),
    (dict(scale=-1.0), "scale"),
    (dict(scale=float("inf")), "scale"),
    (dict(scale=float("nan")), "scale"),
    (dict(scale=1e-50), "scale"),                   # rounds to zero in fp32
    (dict(zero_point=128), "zero_point"),
    (dict(zero_point=-1, out_signed=False), "zero_point"),
    (dict(rounding="floor"), "rounding"),           # the onnx model is half to even
    (dict(rounding_model="exact", rounding="stochastic"), "rounding"),
    (dict(rounding_model="nearest"), "rounding_model"),
    (dict(runtime_scale=True, scale=1.0), "scale"),
    (dict(per_lane=True, lanes=2, scale=[1.0]), "scale"),
    (dict(in_format="e3m3", scale=0.3), "scale"),   # not exact in a custom format
    (dict(lanes=0), "lanes"),
    (dict(block_scale=True), "block_scale"),        # a block's scale arrives at run time
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        QuantizeLinear(**params)


def test_constant_scale_is_rounded_to_the_format():
    q = QuantizeLinear(in_format="bf16", scale=0.1)
    assert q.scale_bits == int(floats.BF16.bits(np.array(0.1).astype(floats.BF16.dtype)))
    assert q.scale == float(np.array(0.1).astype(floats.BF16.dtype))
