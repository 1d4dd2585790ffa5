"""The generated MX dequantizer's Verilog against :func:`qdp.golden.mx_dequantize` on
Verilator and Icarus: every element format, FP32, BF16, FP16 and a custom format out,
blocks of 1..8 beats, scales at the E8M0 range ends and NaN; every (code, scale) pair;
random gaps on both inputs, backpressure and a mid-stream reset."""

import pytest
from conftest import assert_bit_exact, params_id, require_simulator

from qdp.blocks import generate
from qdp.sim.module import Module
from qdp.sim.mx_dequantize_tb import exhaustive_elements
from qdp.sim.runner import run_bench

# Elements per configuration: the volume is Verilator's; Icarus is about 5x slower.
VECTORS = {"verilator": 30_000, "icarus": 6_000}

CONFIGS = [
    dict(element="int8", lanes=4),
    dict(element="fp8_e4m3", out_format="bf16", lanes=2),
    dict(element="fp8_e5m2", out_format="fp16", lanes=2),
    dict(element="fp6_e3m2", lanes=3),
    dict(element="fp6_e2m3", out_format="bf16"),
    dict(element="fp4_e2m1", out_format="e5m2", lanes=2),
]
# Every (code, scale byte) pair: of the 8-bit elements on Verilator (65,536 each), of
# the 6- and 4-bit ones on Icarus.
EXHAUSTIVE = {
    "verilator": [dict(element="fp8_e5m2", out_format="bf16", lanes=4),
                  dict(element="fp8_e4m3", lanes=4), dict(element="int8", lanes=4,
                                                          out_format="fp16")],
    "icarus": [dict(element="fp6_e2m3", lanes=2), dict(element="fp4_e2m1", lanes=2,
                                                       out_format="bf16")],
}


@pytest.mark.parametrize("params", CONFIGS, ids=params_id)
def test_mx_dequantize_bit_exact(simulator, params, tmp_path):
    vectors = VECTORS[simulator]
    result = run_bench("mx-dequantize", params, simulator,
                       {"vectors": vectors, "seed": len(params_id(params))}, workdir=tmp_path)
    assert_bit_exact(result)
    assert result.compared >= vectors
    assert result.summary["scales_in"] > vectors // (8 * params.get("lanes", 1))


@pytest.mark.parametrize("simulator_name, params",
                         [(sim, p) for sim, configs in EXHAUSTIVE.items() for p in configs],
                         ids=lambda v: v if isinstance(v, str) else params_id(v))
def test_every_input(simulator_name, params, tmp_path):
    require_simulator(simulator_name)
    result = run_bench("mx-dequantize", params, simulator_name,
                       {"vectors": 1000, "exhaustive": True}, workdir=tmp_path)
    assert_bit_exact(result)
    _, manifest = generate("mx-dequantize", params)
    every = exhaustive_elements(Module(manifest).params)
    assert every >= 16 * 256 and result.compared >= every


def test_wrong_golden_is_caught(simulator, tmp_path):
    result = run_bench("mx-dequantize", CONFIGS[1], simulator,
                       {"vectors": 1000, "seed": 3, "reset": False,
                        "golden": {"out_format": "fp16"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
