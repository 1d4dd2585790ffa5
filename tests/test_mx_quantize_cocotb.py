"""The generated MX quantizer's Verilog against :func:`qdp.golden.mx_quantize` on
Verilator and Icarus: all six elements, FP32, BF16, FP16 and a custom format in, every
rounding mode, blocks of 1 to 64 elements with short tails; blocks that are all zero,
hold one huge outlier, are all subnormal, hold an Inf or a NaN, reach the largest
exponents, round past the largest element or sit exactly on rounding ties (sim/
mx_quantize_tb.py MX_KINDS); random gaps, independent backpressure on ``o`` and
``scale``, a reset inside a block, and a no-stall stream that measures cycles per block
and the latency."""

import pytest
from conftest import params_id

from qdp.sim.runner import run_bench

# Elements per configuration: the volume is Verilator's; Icarus is about 5x slower.
VECTORS = {"verilator": 40_000, "icarus": 8_000}
PAUSES = ((0.3, 0.3, 0.3), (0.1, 0.6, 0.1), (0.4, 0.1, 0.8), (0.0, 0.5, 0.5))  # i, o, scale

CONFIGS = [
    dict(element="int8", block_size=32, lanes=4),
    dict(element="fp8_e4m3", block_size=32, lanes=8, read_register=True),
    dict(element="fp8_e5m2", in_format="bf16", block_size=32, lanes=2),
    dict(element="fp6_e3m2", in_format="fp16", block_size=16, lanes=4,
         rounding="half_away"),
    dict(element="fp6_e2m3", block_size=64, lanes=16, rounding="floor"),
    dict(element="fp4_e2m1", in_format="bf16", block_size=32, lanes=4, rounding="trunc"),
    dict(element="fp4_e2m1", in_format="e5m2", block_size=2, lanes=2, rounding="half_zero"),
    dict(element="fp8_e4m3", in_format="fp16", block_size=1, lanes=1, rounding="half_up"),
    dict(element="int8", in_format="bf16", block_size=6, lanes=2, rounding="half_down"),
]


@pytest.mark.parametrize("params", CONFIGS, ids=params_id)
def test_mx_quantize_bit_exact(simulator, params, tmp_path):
    index = CONFIGS.index(params)
    in_pause, out_pause, scale_pause = PAUSES[index % len(PAUSES)]
    vectors = VECTORS[simulator]
    config = {"vectors": vectors, "seed": 41 + index, "in_pause": in_pause,
              "out_pause": out_pause, "scale_pause": scale_pause, "reset": True,
              "steady_blocks": 4}
    result = run_bench("mx-quantize", params, simulator, config, workdir=tmp_path)
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
    summary = result.summary
    assert summary["compared"] >= vectors, summary
    assert summary["compared_scales"] >= vectors // params["block_size"], summary
    steady = summary["steady"]
    assert steady["cycles_per_block"] == [params["block_size"] // params["lanes"]], steady
    assert steady["input_stall_cycles"] == 0 and steady["output_gap_cycles"] == 0, steady
    assert steady["latency_cycles"] == steady["latency_stated"], steady


def test_wrong_golden_is_caught(simulator, tmp_path):
    """A golden that rounds ties away from zero (microxcaling's default) where the
    hardware rounds them to even must fail, with a report naming the input."""
    result = run_bench("mx-quantize", CONFIGS[3], simulator,
                       {"vectors": 4000, "seed": 5, "reset": False, "steady_blocks": 0,
                        "golden": {"rounding": "half_even"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
    report = result.summary["reports"][0]
    for word in ("beat", "lane", "'x'", "expected", "got"):
        assert word in report, report
