"""The generated NF4 quantizer's Verilog against :func:`qdp.golden.nf4_codes` on
Verilator and Icarus: FP32, BF16 and FP16 in, blocks of 32 to 4096 elements with short
tails; blocks that are all zero, all NaN, hold one huge outlier, are all subnormal, hold
an Inf or a NaN, reach the largest exponents or sit on and next to the kernel's
thresholds (sim/nf4_quantize_tb.py NF4_KINDS); random gaps, independent backpressure on
``o`` and ``scale``, a reset inside a block, and a no-stall stream that measures cycles
per block and the latency."""

import pytest
from conftest import params_id

from qdp.sim.runner import run_bench

# Elements per configuration: the volume is Verilator's; Icarus is about 5x slower.
VECTORS = {"verilator": 24_000, "icarus": 5_000}
PAUSES = ((0.3, 0.3, 0.3), (0.1, 0.6, 0.1), (0.4, 0.1, 0.8), (0.0, 0.5, 0.5))  # i, o, scale

CONFIGS = [
    dict(block_size=64, lanes=1),
    dict(block_size=32, lanes=4, read_register=True),
    dict(in_format="bf16", block_size=64, lanes=8),
    dict(in_format="fp16", block_size=32, lanes=2),
    dict(in_format="bf16", block_size=4096, lanes=16, read_register=True),
]


@pytest.mark.parametrize("params", CONFIGS, ids=params_id)
def test_nf4_quantize_bit_exact(simulator, params, tmp_path):
    index = CONFIGS.index(params)
    in_pause, out_pause, scale_pause = PAUSES[index % len(PAUSES)]
    vectors = max(VECTORS[simulator], 3 * params["block_size"])
    config = {"vectors": vectors, "seed": 61 + index, "in_pause": in_pause,
              "out_pause": out_pause, "scale_pause": scale_pause, "reset": True,
              "steady_blocks": 3}
    result = run_bench("nf4-quantize", params, simulator, config, workdir=tmp_path)
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
    """A golden that puts a value exactly on a threshold above it (``>=``, where the
    kernel compares ``>``) must fail, with a report naming the input."""
    result = run_bench("nf4-quantize", CONFIGS[0], simulator,
                       {"vectors": 2000, "seed": 5, "reset": False, "steady_blocks": 0,
                        "golden": {"on_threshold": "upper"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
    report = result.summary["reports"][0]
    for word in ("beat", "lane", "'x'", "expected", "got"):
        assert word in report, report
