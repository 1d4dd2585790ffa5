"""The generated MX dot product's Verilog against :func:`qdp.golden.mx_matmul` on
Verilator and Icarus: tiles of one to four blocks of random codes, the whole E8M0 range,
exact cancellation across scales, rounding ties, zeros; random valid gaps, backpressure
and a reset in the middle of a tile; every pair of FP8 E4M3 codes as a product; a golden
that adds the block sums in FP32 must fail."""

import pytest
from conftest import assert_bit_exact, params_id, require_simulator

from qdp.blocks import generate
from qdp.sim.module import Module
from qdp.sim.mx_mac_array_tb import exhaustive_elements
from qdp.sim.runner import run_bench

# Output elements per configuration: the volume is Verilator's; Icarus is slower.
VECTORS = {"verilator": 6000, "icarus": 1200}
CONFIGS = [dict(rows=4, cols=4, element="fp8_e4m3"), dict(rows=4, cols=4, element="int8"),
           dict(rows=2, cols=3, element="fp8_e5m2", block_size=8, limb_width=128),
           dict(rows=3, cols=2, element="fp6_e3m2", block_size=4, limb_width=32)]


@pytest.mark.parametrize("params", CONFIGS, ids=params_id)
def test_mx_mac_array_bit_exact(simulator, params, tmp_path):
    vectors = VECTORS[simulator]
    result = run_bench("mx-mac-array", params, simulator,
                       {"vectors": vectors, "seed": len(params_id(params))}, workdir=tmp_path)
    assert_bit_exact(result)
    assert result.compared >= vectors
    assert result.summary["macs"] >= vectors * params.get("block_size", 32)   # K >= a block


def test_every_pair_of_e4m3_codes(tmp_path):
    """On Verilator: 65,536 products, 16 per one-block tile, at random scales."""
    require_simulator("verilator")
    params = CONFIGS[0]
    result = run_bench("mx-mac-array", params, "verilator",
                       {"vectors": 100, "exhaustive": True}, workdir=tmp_path)
    assert_bit_exact(result)
    _, manifest = generate("mx-mac-array", params)
    every = exhaustive_elements(Module(manifest).params)
    assert every == 65536 and result.compared >= every


def test_fp32_accumulation_is_caught(simulator, tmp_path):
    """A golden that rounds every block sum to FP32 and adds in FP32 must fail."""
    result = run_bench("mx-mac-array", CONFIGS[2], simulator,
                       {"vectors": 600, "seed": 3, "reset": False,
                        "golden": {"accumulate": "fp32"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
