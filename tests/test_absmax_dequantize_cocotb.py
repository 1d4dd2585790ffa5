"""The generated blockwise dequantizer's Verilog against
:func:`qdp.golden.dequantize_blockwise` on Verilator and Icarus: both models, FP32, BF16,
FP16 and custom formats in and out, special scales, blocks of 1..8 beats, every (q,
absmax) pair of an 8-bit format; random gaps on both inputs, backpressure and a
mid-stream reset."""

import pytest

from qdp.blocks import generate
from qdp.sim.absmax_dequantize_tb import exhaustive_elements
from qdp.sim.module import Module
from qdp.sim.runner import run_bench

VECTORS = 20_000

CONFIGS = [
    dict(in_format="fp32", lanes=2),
    dict(in_format="bf16", out_format="fp16", out_width=4),
    dict(in_format="fp32", model="float32", lanes=2),
    dict(in_format="fp16", model="float32", out_format="bf16", lanes=3),
]
EXHAUSTIVE = [
    dict(in_format="e4m3", out_format="fp32", lanes=2),
    dict(in_format="e3m3", out_width=4, out_format="e3m3", model="float32"),
]


def _id(params):
    return "-".join(f"{k}={v}" for k, v in params.items())


def _passed(result):
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary


@pytest.mark.parametrize("params", CONFIGS, ids=_id)
def test_absmax_dequantize_bit_exact(simulator, params, tmp_path):
    result = run_bench("absmax-dequantize", params, simulator,
                       {"vectors": VECTORS, "seed": len(_id(params))}, workdir=tmp_path)
    _passed(result)
    assert result.compared >= VECTORS
    assert result.summary["scales_in"] > VECTORS // (8 * params.get("lanes", 1))


@pytest.mark.parametrize("params", EXHAUSTIVE, ids=_id)
def test_every_input(simulator, params, tmp_path):
    result = run_bench("absmax-dequantize", params, simulator,
                       {"vectors": 1000, "exhaustive": True}, workdir=tmp_path)
    _passed(result)
    _, manifest = generate("absmax-dequantize", params)
    every = exhaustive_elements(Module(manifest).params)
    assert every >= 15 * 18 and result.compared >= every


def test_wrong_golden_is_caught(simulator, tmp_path):
    result = run_bench("absmax-dequantize", CONFIGS[0], simulator,
                       {"vectors": 1000, "seed": 3, "reset": False,
                        "golden": {"model": "float32"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
