"""The generated blockwise dequantizer's Verilog against
:func:`qdp.golden.dequantize_blockwise` on Verilator and Icarus: both models, FP32, BF16,
FP16 and custom formats in and out, special scales, blocks of 1..8 beats, every (q,
absmax) pair of an 8-bit format; random gaps on both inputs, backpressure and a
mid-stream reset."""

import pytest
from conftest import assert_bit_exact, params_id, require_simulator

from qdp.blocks import generate
from qdp.sim.absmax_dequantize_tb import exhaustive_elements
from qdp.sim.module import Module
from qdp.sim.runner import run_bench

# Elements per configuration: the volume is Verilator's; Icarus runs about 4,500 a second.
VECTORS = {"verilator": 20_000, "icarus": 6_000}

CONFIGS = [
    dict(in_format="fp32", lanes=2),
    dict(in_format="bf16", out_format="fp16", out_width=4),
    dict(in_format="fp32", model="float32", lanes=2),
    dict(in_format="fp16", model="float32", out_format="bf16", lanes=3),
]
# Every (q, absmax) pair of an 8-bit absmax format on Verilator (130,560 elements), of a
# 7-bit one into int4 on Icarus; the float32 model's every q through every special c on both.
EXHAUSTIVE = {
    "verilator": [dict(in_format="e4m3", out_format="fp32", lanes=2),
                  dict(in_format="e3m3", out_width=4, out_format="e3m3", model="float32")],
    "icarus": [dict(in_format="e3m3", out_width=4, out_format="bf16", lanes=2),
               dict(in_format="e3m3", out_width=4, out_format="e3m3", model="float32")],
}


@pytest.mark.parametrize("params", CONFIGS, ids=params_id)
def test_absmax_dequantize_bit_exact(simulator, params, tmp_path):
    vectors = VECTORS[simulator]
    result = run_bench("absmax-dequantize", params, simulator,
                       {"vectors": vectors, "seed": len(params_id(params))}, workdir=tmp_path)
    assert_bit_exact(result)
    assert result.compared >= vectors
    assert result.summary["scales_in"] > vectors // (8 * params.get("lanes", 1))


@pytest.mark.parametrize("simulator_name, params",
                         [(sim, p) for sim, configs in EXHAUSTIVE.items() for p in configs],
                         ids=lambda v: v if isinstance(v, str) else params_id(v))
def test_every_input(simulator_name, params, tmp_path):
    require_simulator(simulator_name)
    result = run_bench("absmax-dequantize", params, simulator_name,
                       {"vectors": 1000, "exhaustive": True}, workdir=tmp_path)
    assert_bit_exact(result)
    _, manifest = generate("absmax-dequantize", params)
    every = exhaustive_elements(Module(manifest).params)
    assert every >= 15 * 18 and result.compared >= every


def test_wrong_golden_is_caught(simulator, tmp_path):
    result = run_bench("absmax-dequantize", CONFIGS[0], simulator,
                       {"vectors": 1000, "seed": 3, "reset": False,
                        "golden": {"model": "float32"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
