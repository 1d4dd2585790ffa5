"""The generated blockwise absmax Verilog against the golden model on Verilator and Icarus.

Matrix: block sizes {lanes, 3*lanes, 64, 256, 4096} x lanes {1, 4, 16}, every rounding
mode, every ``pipeline`` setting and several widths spread over it; every configuration
runs on both simulators with random valid gaps on ``i``, independent random backpressure
on ``o`` and ``scale``, a reset in the middle of a block, and a final no-stall stream that measures cycles per block
(exactly ``block_size / lanes``) and the latency. About 1.3 million quantized elements are
compared per full run.
"""

import pytest
from conftest import params_id

from qdp.golden import ROUNDING_MODES
from qdp.sim.runner import run_bench

ELEMENTS_PER_LANE = 6000        # per configuration: 6000 beats, lanes x 6000 elements
LANES = (1, 4, 16)
WIDTHS = ((8, 8), (16, 8), (32, 8), (5, 4), (2, 2), (12, 7), (24, 6))  # in_width, out_width
PAUSES = ((0.3, 0.3, 0.3), (0.1, 0.6, 0.1), (0.4, 0.1, 0.8), (0.0, 0.5, 0.5))  # i, o, scale


def _matrix():
    configs = []
    for lanes in LANES:
        for block_size in sorted({lanes, 3 * lanes, 64, 256, 4096}):
            index = len(configs)
            in_width, out_width = WIDTHS[index % len(WIDTHS)]
            configs.append(dict(block_size=block_size, lanes=lanes, in_width=in_width,
                                out_width=out_width,
                                rounding=ROUNDING_MODES[index % len(ROUNDING_MODES)],
                                pipeline=index % 4))
    return configs


CONFIGS = _matrix()


def test_matrix_covers_every_size_lane_count_mode_and_pipeline():
    assert {p["rounding"] for p in CONFIGS} == set(ROUNDING_MODES)
    assert {p["pipeline"] for p in CONFIGS} == {0, 1, 2, 3}
    for lanes in LANES:
        sizes = {p["block_size"] for p in CONFIGS if p["lanes"] == lanes}
        assert sizes == {lanes, 3 * lanes, 64, 256, 4096}
    total = sum(ELEMENTS_PER_LANE * p["lanes"] for p in CONFIGS)
    assert 2 * total >= 1_000_000          # both simulators


@pytest.mark.parametrize("params", CONFIGS, ids=params_id)
def test_absmax_bit_exact(simulator, params, tmp_path):
    index = CONFIGS.index(params)
    in_pause, out_pause, scale_pause = PAUSES[index % len(PAUSES)]
    beats_per_block = params["block_size"] // params["lanes"]
    vectors = ELEMENTS_PER_LANE * params["lanes"]
    config = {"vectors": vectors, "seed": 17 + index, "in_pause": in_pause,
              "out_pause": out_pause, "scale_pause": scale_pause, "reset": True,
              "steady_blocks": 2 if beats_per_block >= 1024 else 4}
    result = run_bench("absmax", params, simulator, config, workdir=tmp_path)
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
    summary = result.summary
    assert summary["compared"] >= vectors, summary
    if beats_per_block > 2:
        assert summary["reset"]["inside_block"], summary["reset"]
    steady = summary["steady"]
    # no bubbles: exactly block_size / lanes cycles per block, nothing stalls
    assert steady["cycles_per_block"] == [beats_per_block], steady
    assert steady["input_stall_cycles"] == 0 and steady["output_gap_cycles"] == 0, steady
    assert steady["latency_cycles"] == steady["latency_stated"], steady


# Float input: each named format, a custom one, several modes, lanes and block sizes; the
# traffic (sim/absmax_tb.py FLOAT_KINDS) holds subnormals, ±0, exact ties and Inf and NaN
# blocks.
FLOAT_CONFIGS = [
    dict(in_format="fp32", block_size=64, lanes=4, rounding="half_even"),
    dict(in_format="bf16", block_size=32, lanes=2, rounding="stochastic", pipeline=3),
    dict(in_format="fp16", block_size=16, lanes=16, rounding="floor", pipeline=0),
    dict(in_format="e4m3", block_size=6, lanes=2, out_width=4, rounding="half_away"),
    dict(in_format="fp32", block_size=64, lanes=2, model="float32", pipeline=3),
    dict(in_format="bf16", block_size=2, lanes=2, out_width=6, model="float32"),
]
FLOAT_ELEMENTS = 16000


@pytest.mark.parametrize("params", FLOAT_CONFIGS, ids=params_id)
def test_float_absmax_bit_exact(simulator, params, tmp_path):
    index = FLOAT_CONFIGS.index(params)
    in_pause, out_pause, scale_pause = PAUSES[index % len(PAUSES)]
    config = {"vectors": FLOAT_ELEMENTS, "seed": 71 + index, "in_pause": in_pause,
              "out_pause": out_pause, "scale_pause": scale_pause, "reset": True,
              "steady_blocks": 3}
    result = run_bench("absmax", params, simulator, config, workdir=tmp_path)
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
    assert result.summary["compared"] >= FLOAT_ELEMENTS, result.summary
    steady = result.summary["steady"]
    assert steady["cycles_per_block"] == [params["block_size"] // params["lanes"]], steady
    assert steady["latency_cycles"] == steady["latency_stated"], steady


def test_wrong_golden_is_caught(simulator, tmp_path):
    """A golden that rounds ties toward zero where the hardware rounds them to even must
    fail, with a report naming beat, lane, inputs, expected and got. (half_away would not
    do: with qmax = 127 the only ties below absmax 254 are +-63.5, where it agrees with
    half_even.)"""
    params = dict(block_size=8, lanes=2, in_width=8, rounding="half_even")
    result = run_bench("absmax", params, simulator,
                       {"vectors": 2000, "seed": 5, "golden": {"rounding": "half_zero"},
                        "steady_blocks": 0}, workdir=tmp_path)
    assert not result.passed
    assert result.mismatches > 0
    report = result.summary["reports"][0]
    for word in ("beat", "lane", "inputs", "'x'", "'absmax'", "expected", "got"):
        assert word in report, report
