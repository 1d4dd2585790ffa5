"""The generated group quantizer's Verilog against :func:`qdp.golden.group_quantize` on
Verilator and Icarus: FP32, BF16 and FP16 in, asymmetric (GPTQ) and symmetric (AWQ),
2..8-bit codes, groups of 24 to 128 elements with short tails; groups that are all zero,
subnormal, all positive or negative, hold one huge outlier or sit on and next to the .5
ties of ``x / scale`` (sim/group_quantize_tb.py GROUP_KINDS); random gaps, independent
backpressure on ``o`` and ``scale``, a reset inside a group, and a no-stall stream that
measures cycles per group and the latency."""

import pytest
from conftest import params_id

from qdp.sim.runner import run_bench

# Elements per configuration: a few seconds each; Icarus is about 5x slower.
VECTORS = {"verilator": 6_000, "icarus": 1_200}
PAUSES = ((0.3, 0.3, 0.3), (0.1, 0.6, 0.1), (0.4, 0.1, 0.8))  # i, o, scale

CONFIGS = [
    dict(group_size=128, lanes=4),
    dict(group_size=32, lanes=2, bits=3, symmetric=True, in_format="bf16",
         read_register=True),
    dict(group_size=24, lanes=8, bits=8, in_format="fp16"),
]


@pytest.mark.parametrize("params", CONFIGS, ids=params_id)
def test_group_quantize_bit_exact(simulator, params, tmp_path):
    index = CONFIGS.index(params)
    in_pause, out_pause, scale_pause = PAUSES[index % len(PAUSES)]
    vectors = max(VECTORS[simulator], 3 * params["group_size"])
    config = {"vectors": vectors, "seed": 71 + index, "in_pause": in_pause,
              "out_pause": out_pause, "scale_pause": scale_pause, "reset": True,
              "steady_blocks": 3}
    result = run_bench("group-quantize", params, simulator, config, workdir=tmp_path)
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
    summary = result.summary
    assert summary["compared"] >= vectors, summary
    assert summary["compared_scales"] >= vectors // params["group_size"], summary
    assert summary["reset"]["inside_block"], summary
    steady = summary["steady"]
    assert steady["cycles_per_block"] == [params["group_size"] // params["lanes"]], steady
    assert steady["input_stall_cycles"] == 0 and steady["output_gap_cycles"] == 0, steady
    assert steady["latency_cycles"] == steady["latency_stated"], steady


def test_wrong_golden_is_caught(simulator, tmp_path):
    """A golden whose ``rint`` rounds ties away from zero (``round``, where the golden
    and torch.round go to even) must fail on the tie groups, with a report naming the
    input."""
    result = run_bench("group-quantize", dict(group_size=16, lanes=4), simulator,
                       {"vectors": 1600, "seed": 5, "reset": False, "steady_blocks": 0,
                        "golden": {"ties": "away"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
    report = result.summary["reports"][0]
    for word in ("beat", "lane", "'x'", "expected", "got"):
        assert word in report, report
