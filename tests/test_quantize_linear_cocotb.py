"""The generated QuantizeLinear Verilog against :func:`qdp.golden.quantize_linear` on
Verilator and Icarus: FP32, BF16, FP16 and a custom format; both rounding models;
constant and run-time scales (zero, negative, subnormal, huge, Inf and NaN scales among
the run-time ones), per tensor and per lane; every BF16 and every FP16 bit pattern through
the exhaustive check; random gaps, backpressure and a mid-stream reset throughout.
"""

import pytest
from conftest import require_simulator

from qdp.sim.quantize_linear_tb import exhaustive_elements
from qdp.sim.module import Module
from qdp.blocks import generate
from qdp.sim.runner import run_bench

# Elements per configuration: the bulk driver makes volume cheap on Verilator.
VECTORS = {"verilator": 50_000, "icarus": 5_000}

CONFIGS = [
    dict(in_format="fp32", scale=0.0370000004768, zero_point=-3),
    dict(in_format="fp32", runtime_scale=True, lanes=2, per_lane=True, out_signed=False),
    dict(in_format="fp32", rounding_model="exact", rounding="half_away", runtime_scale=True,
         out_width=16),
    dict(in_format="bf16", scale=[1e-38, 3.0e38, 0.5], zero_point=[0, 127, -128], lanes=3,
         per_lane=True),
    dict(in_format="fp16", rounding_model="exact", rounding="floor", runtime_scale=True,
         out_width=4, out_signed=False),
    dict(in_format="e4m3", runtime_scale=True, out_width=2, lanes=2),
    dict(in_format="bf16", runtime_scale=True, block_scale=True, lanes=2, per_lane=True),
]

# Every BF16 and every FP16 value on both simulators, both rounding models: through five
# run-time scales on Verilator, through one constant scale (ties, range-end zero points)
# on Icarus, which simulates about 7,000 elements a second here.
EXHAUSTIVE = {
    "verilator": [
        dict(in_format="bf16", runtime_scale=True),
        CONFIGS[4],                     # fp16, exact, floor, 4-bit unsigned: its build
    ],
    "icarus": [
        dict(in_format="bf16", scale=0.125, zero_point=-128),
        dict(in_format="fp16", scale=6.0e-8, zero_point=255, out_signed=False),
    ],
}
# Every (x, scale) bit-pattern pair of a small format: the arithmetic for all inputs.
EVERY_PAIR = [
    dict(in_format="e3m3", runtime_scale=True, out_width=4),
    dict(in_format="e3m3", runtime_scale=True, out_width=4, rounding_model="exact",
         rounding="half_down"),
]


def _id(params):
    return "-".join(f"{k}={v}" for k, v in params.items()
                    if k not in ("scale", "zero_point")).replace(" ", "")


@pytest.mark.parametrize("params", CONFIGS, ids=_id)
def test_quantize_linear_bit_exact(simulator, params, tmp_path):
    result = run_bench("quantize-linear", params, simulator,
                       {"vectors": VECTORS[simulator], "seed": len(_id(params))},
                       workdir=tmp_path)
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
    assert result.compared >= VECTORS[simulator]


def _exhaustive(simulator, params, tmp_path):
    result = run_bench("quantize-linear", params, simulator,
                       {"vectors": 1000, "exhaustive": True}, workdir=tmp_path)
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
    _, manifest = generate("quantize-linear", params)
    every = exhaustive_elements(Module(manifest).params)
    assert result.compared >= every
    return every


@pytest.mark.parametrize("simulator_name, params",
                         [(sim, p) for sim, configs in EXHAUSTIVE.items() for p in configs],
                         ids=lambda v: v if isinstance(v, str) else _id(v))
def test_every_bit_pattern(simulator_name, params, tmp_path):
    """All 65,536 BF16 / FP16 values per lane (Verilator: through five scales -- 1, a
    tie-making power of two, an ordinary one, the smallest subnormal, a huge one -- with
    range-end zero points)."""
    require_simulator(simulator_name)
    assert _exhaustive(simulator_name, params, tmp_path) >= 65536


@pytest.mark.parametrize("params", EVERY_PAIR, ids=_id)
def test_every_input_pair(simulator, params, tmp_path):
    assert _exhaustive(simulator, params, tmp_path) == 2 * 128 * 128


def test_cycle_driver(simulator, tmp_path):
    params = CONFIGS[1]
    result = run_bench("quantize-linear", params, simulator,
                       {"vectors": 2000, "seed": 5, "driver": "cycle"}, workdir=tmp_path)
    assert result.passed and result.mismatches == 0, result.summary


def test_wrong_golden_is_caught(simulator, tmp_path):
    result = run_bench("quantize-linear", CONFIGS[0], simulator,
                       {"vectors": 2000, "seed": 3, "reset": False,
                        "golden": {"rounding_model": "exact", "rounding": "half_up"}},
                       workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
