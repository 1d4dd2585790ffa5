"""The generated DequantizeLinear Verilog against :func:`qdp.golden.dequantize_linear` on
Verilator and Icarus: int8/uint8/int16/int32 inputs (int32 with and without a zero point,
values whose float32 rounding ties), FP32, BF16, FP16 and a custom output format,
constant and run-time scales (special bit patterns among the run-time ones), every input
of the exhaustive configurations; random gaps, backpressure and a mid-stream reset.
"""

import pytest
from conftest import require_simulator

from qdp.blocks import generate
from qdp.sim.dequantize_linear_tb import exhaustive_elements
from qdp.sim.module import Module
from qdp.sim.runner import run_bench

# Elements per configuration. Icarus simulates the wide (int32) datapaths at a few hundred
# elements a second here; the volume is Verilator's.
VECTORS = {"verilator": 50_000, "icarus": 2_000}

CONFIGS = [
    dict(scale=0.037, zero_point=-3),
    dict(in_width=8, in_signed=False, out_format="bf16", runtime_scale=True, lanes=2,
         per_lane=True),
    dict(in_width=32, scale=1.7e-5, zero_point=-123456),
    dict(in_width=32, out_format="fp16", runtime_scale=True),
    dict(in_width=32, out_format="bf16", scale=3.3e-7),
    dict(in_width=4, out_format="e4m3", runtime_scale=True),
    dict(in_width=16, out_format="fp16", runtime_scale=True, block_scale=True, lanes=2),
]

# Every input of 16-bit types on both simulators: through four run-time scales on
# Verilator, one constant scale on Icarus; every int8 through four run-time scales on both.
EXHAUSTIVE = {
    "verilator": [
        dict(in_width=16, out_format="bf16", runtime_scale=True),
        dict(in_width=16, in_signed=False, out_format="fp16", runtime_scale=True),
        dict(in_width=8, out_format="fp32", runtime_scale=True, lanes=2, per_lane=True),
    ],
    "icarus": [
        dict(in_width=16, out_format="bf16", scale=3.1e-5, zero_point=-32768),
        dict(in_width=8, out_format="fp32", runtime_scale=True, lanes=2, per_lane=True),
    ],
}


def _id(params):
    return "-".join(f"{k}={v}" for k, v in params.items()
                    if k not in ("scale", "zero_point")).replace(" ", "")


@pytest.mark.parametrize("params", CONFIGS, ids=_id)
def test_dequantize_linear_bit_exact(simulator, params, tmp_path):
    result = run_bench("dequantize-linear", params, simulator,
                       {"vectors": VECTORS[simulator], "seed": len(_id(params))},
                       workdir=tmp_path)
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
    assert result.compared >= VECTORS[simulator]


@pytest.mark.parametrize("simulator_name, params",
                         [(sim, p) for sim, configs in EXHAUSTIVE.items() for p in configs],
                         ids=lambda v: v if isinstance(v, str) else _id(v))
def test_every_input(simulator_name, params, tmp_path):
    require_simulator(simulator_name)
    result = run_bench("dequantize-linear", params, simulator_name,
                       {"vectors": 1000, "exhaustive": True}, workdir=tmp_path)
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
    _, manifest = generate("dequantize-linear", params)
    every = exhaustive_elements(Module(manifest).params)
    assert every >= 2 * 256 and result.compared >= every


def test_wrong_golden_is_caught(simulator, tmp_path):
    result = run_bench("dequantize-linear", CONFIGS[2], simulator,
                       {"vectors": 1000, "seed": 3, "reset": False,
                        "golden": {"in_width": 16}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
