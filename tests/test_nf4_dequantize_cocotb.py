"""The generated NF4 dequantizer's Verilog against :func:`qdp.golden.nf4_values` on
Verilator and Icarus: blocks of 1..8 beats, absmax at the edges (±0, subnormals,
±FLT_MAX, ±Inf, NaN, any pattern); every code against every top half of the absmax;
random gaps on both inputs, backpressure and a mid-stream reset."""

import pytest
from conftest import assert_bit_exact, params_id, require_simulator

from qdp.blocks import generate
from qdp.sim.module import Module
from qdp.sim.nf4_dequantize_tb import exhaustive_elements
from qdp.sim.runner import run_bench

# Elements per configuration: the volume is Verilator's; Icarus is about 5x slower.
VECTORS = {"verilator": 30_000, "icarus": 6_000}
CONFIGS = [dict(lanes=1), dict(lanes=4), dict(lanes=3), dict(lanes=2, double_quant=True)]


@pytest.mark.parametrize("params", CONFIGS, ids=params_id)
def test_nf4_dequantize_bit_exact(simulator, params, tmp_path):
    vectors = VECTORS[simulator]
    result = run_bench("nf4-dequantize", params, simulator,
                       {"vectors": vectors, "seed": len(params_id(params))}, workdir=tmp_path)
    assert_bit_exact(result)
    assert result.compared >= vectors
    assert result.summary["scales_in"] > vectors // (8 * params["lanes"])


def test_every_code_against_every_top_half(tmp_path):
    """On Verilator: 16 codes x 65,536 absmax top halves x 4 lanes."""
    require_simulator("verilator")
    params = dict(lanes=4)
    result = run_bench("nf4-dequantize", params, "verilator",
                       {"vectors": 1000, "exhaustive": True}, workdir=tmp_path)
    assert_bit_exact(result)
    _, manifest = generate("nf4-dequantize", params)
    every = exhaustive_elements(Module(manifest).params)
    assert every == 16 * 65536 * 4 and result.compared >= every


def test_wrong_golden_is_caught(simulator, tmp_path):
    """A golden that drops the absmax's sign (-FLT_MAX of a block of NaNs, any negative
    pattern) must fail."""
    result = run_bench("nf4-dequantize", CONFIGS[1], simulator,
                       {"vectors": 3000, "seed": 3, "reset": False,
                        "golden": {"absmax": "magnitude"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
