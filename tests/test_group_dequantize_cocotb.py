"""The generated group dequantizer's Verilog against :func:`qdp.golden.group_dequantize`
on Verilator and Icarus: groups of 1..8 beats, asymmetric and symmetric codes of 2..8
bits, scales at the edges (±0, subnormals, FLT_MAX, ±Inf, NaN, any pattern), codes at
their zero point and the range's ends; every code against every zero point against
every top half of the scale; random gaps on both inputs, backpressure and a mid-stream
reset."""

import pytest
from conftest import assert_bit_exact, params_id, require_simulator

from qdp.blocks import generate
from qdp.sim.group_dequantize_tb import exhaustive_elements
from qdp.sim.module import Module
from qdp.sim.runner import run_bench

# Elements per configuration: the volume is Verilator's; Icarus is about 5x slower.
VECTORS = {"verilator": 20_000, "icarus": 4_000}
CONFIGS = [dict(lanes=1), dict(lanes=4), dict(lanes=3, bits=8),
           dict(lanes=2, bits=3, symmetric=True)]


@pytest.mark.parametrize("params", CONFIGS, ids=params_id)
def test_group_dequantize_bit_exact(simulator, params, tmp_path):
    vectors = VECTORS[simulator]
    result = run_bench("group-dequantize", params, simulator,
                       {"vectors": vectors, "seed": len(params_id(params))}, workdir=tmp_path)
    assert_bit_exact(result)
    assert result.compared >= vectors
    assert result.summary["compared_flags"] == 2 * result.compared // params["lanes"]
    assert result.summary["scales_in"] > vectors // (8 * params["lanes"])


def test_every_code_and_zero_against_every_top_half(tmp_path):
    """On Verilator, the build of ``CONFIGS[1]``: 16 codes x 16 zero points x 65,536 scale
    top halves (4.2 million beats of 4 lanes at full rate: the random runs have the gaps
    and backpressure)."""
    require_simulator("verilator")
    params = CONFIGS[1]
    result = run_bench("group-dequantize", params, "verilator",
                       {"vectors": 1000, "exhaustive": True, "in_pause": 0.0,
                        "out_pause": 0.0}, workdir=tmp_path)
    assert_bit_exact(result)
    _, manifest = generate("group-dequantize", params)
    every = exhaustive_elements(Module(manifest).params)
    assert every == 16 * 16 * 65536 and result.summary["exhaustive"] == every


def test_wrong_golden_is_caught(simulator, tmp_path):
    """A golden that drops the scale's sign must fail."""
    result = run_bench("group-dequantize", CONFIGS[1], simulator,
                       {"vectors": 3000, "seed": 3, "reset": False,
                        "golden": {"scale": "magnitude"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0


def test_golden_with_numpy_nans_is_caught(tmp_path):
    """On Verilator: NumPy's own NaNs (a NaN scale's payload, x86's negative ``Inf * 0``)
    in place of the canonical one must fail: the bench sees the hardware's NaNs."""
    require_simulator("verilator")
    result = run_bench("group-dequantize", CONFIGS[1], "verilator",
                       {"vectors": 3000, "seed": 3, "reset": False,
                        "golden": {"nan": "numpy"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
    reports = result.summary["reports"]
    assert reports and all(f"got {0x7FC00000}" in r and "'zero': " in r for r in reports), \
        reports[:3]
