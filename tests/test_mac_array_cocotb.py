"""The generated MAC-array Verilog against the golden model on Verilator and Icarus.

Shapes 1x8, 8x1, 3x5, 4x4, 8x8, 16x16; K in {1, 2, rows, 100} (and 1000 on the big
array); random, all-minimum, all-maximum, mixed-sign and extreme-zero-point tiles; wrap
and saturation at acc_width 16 where int8 sums overflow from K = 3; signed/unsigned
operands, narrow widths, constant and run-time zero points; both dataflows, pipelined (the
default: registered DSP tiles and an output FIFO) and not. Every configuration runs on
both simulators with random valid gaps, random backpressure and a reset in the middle of
a tile; one configuration compares over 1,000,000 MACs per simulator.
"""

import pytest

from qdp.sim.runner import run_bench

# Repeats of each configuration's tiles: volume is cheap on Verilator with the bulk
# driver; Icarus runs the array itself slowly.
TILES_SCALE = {"verilator": 10, "icarus": 1}

# (params, ks, tiles): tiles repeats ks.
CONFIGS = [
    (dict(rows=1, cols=8, acc_width=16, saturate=True), [1, 2, 1, 100], 3),
    (dict(rows=8, cols=1, acc_width=16, dataflow="broadcast"), [1, 2, 8, 100], 3),
    (dict(rows=3, cols=5, acc_width=16, saturate=True), [1, 2, 3, 100], 3),
    (dict(rows=3, cols=5, acc_width=16, dataflow="broadcast"), [1, 2, 3, 100], 3),
    (dict(rows=4, cols=4, a_signed=False, runtime_zero=True, acc_width=17, saturate=True),
     [1, 2, 4, 100], 3),
    (dict(rows=4, cols=4, a_width=4, b_width=6, b_signed=False, acc_width=24,
          a_zero=[-8, 7, 0, 3], b_zero=[0, 63, 1, 32]), [1, 2, 4, 100], 3),
    (dict(rows=8, cols=8, acc_width=32), [1, 2, 8, 100], 3),
    (dict(rows=8, cols=8, acc_width=16, saturate=True, runtime_zero=False, a_zero=-3,
          b_zero=5, dataflow="broadcast"), [1, 2, 8, 100], 3),
    (dict(rows=16, cols=16, acc_width=32), [1, 2, 16, 100, 1000], 1),
    # The systolic dataflow: skewed, forwarded operands, a wave of finishing PEs.
    (dict(rows=3, cols=5, acc_width=16, saturate=True, dataflow="systolic"),
     [1, 2, 3, 100], 3),
    (dict(rows=8, cols=1, acc_width=16, dataflow="systolic"), [1, 2, 8, 100], 3),
    (dict(rows=1, cols=8, a_signed=False, runtime_zero=True, acc_width=17,
          dataflow="systolic"), [1, 2, 1, 100], 3),
    (dict(rows=8, cols=8, acc_width=16, saturate=True, a_zero=-3, b_zero=5,
          dataflow="systolic"), [1, 2, 8, 100], 3),
    # Not pipelined: one product register, the broadcast's global enable, no output FIFO.
    (dict(rows=3, cols=5, acc_width=16, saturate=True, pipelined=False), [1, 2, 3, 100], 3),
    (dict(rows=8, cols=8, acc_width=32, pipelined=False), [1, 2, 8, 100], 3),
    (dict(rows=3, cols=5, runtime_zero=True, acc_width=17, dataflow="systolic",
          pipelined=False), [1, 2, 3, 100], 3),
]


def _id(config):
    params, ks, tiles = config
    return "-".join(f"{k}={v}" for k, v in params.items()).replace(" ", "")


@pytest.mark.parametrize("config", CONFIGS, ids=_id)
def test_mac_array_bit_exact(simulator, config, tmp_path):
    params, ks, tiles = config
    tiles *= TILES_SCALE[simulator]
    result = run_bench("mac-array", params, simulator,
                       {"ks": ks, "tiles": tiles, "seed": len(_id(config))}, workdir=tmp_path)
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
    want_macs = sum(ks) * tiles * params["rows"] * params["cols"]
    assert result.summary["macs"] == want_macs
    assert result.compared >= len(ks) * tiles * params["rows"] * params["cols"]


def test_a_million_macs(simulator, tmp_path):
    """16x16, K = 1000, four tiles of each kind's extremes and random: 1,024,000 MACs."""
    params = dict(rows=16, cols=16, acc_width=32)
    result = run_bench("mac-array", params, simulator,
                       {"ks": [1000], "tiles": 4, "seed": 9, "reset": False,
                        "kinds": ["random", "min", "max", "mixed"]}, workdir=tmp_path)
    assert result.passed, "\n".join(result.summary.get("reports", [])) or result.summary
    assert result.summary["macs"] >= 1_000_000


def test_wrong_golden_is_caught(simulator, tmp_path):
    """A golden that wraps where the hardware saturates must fail with a report naming
    the beat, lane, tile, K, expected and got."""
    params = dict(rows=3, cols=5, acc_width=16, saturate=True)
    result = run_bench("mac-array", params, simulator,
                       {"ks": [100], "tiles": 5, "seed": 2, "reset": False,
                        "kinds": ["min", "max"], "golden": {"saturate": False}},
                       workdir=tmp_path)
    assert not result.passed
    assert result.mismatches > 0
    report = result.summary["reports"][0]
    for word in ("beat", "lane", "'tile'", "'K'", "expected", "got"):
        assert word in report, report


@pytest.mark.parametrize("params,gemm", [
    (dict(rows=4, cols=4, runtime_zero=True, a_signed=False, acc_width=32), [10, 37, 9]),
    (dict(rows=3, cols=5, acc_width=16, saturate=True, a_zero=-7, b_zero=3), [7, 100, 11]),
    (dict(rows=4, cols=4, runtime_zero=True, acc_width=17, dataflow="systolic"), [9, 50, 6]),
], ids=["4x4-runtime-zero-10x37x9", "3x5-saturate16-7x100x11", "systolic-4x4-9x50x6"])
def test_tiled_gemm_larger_than_the_array(simulator, params, gemm, tmp_path):
    """A host-side tiler cuts a ragged GEMM into array tiles (padding with operand = zero
    point); every tile and the reassembled C are compared with the golden."""
    result = run_bench("mac-array", params, simulator, {"gemm": gemm, "seed": 4},
                       workdir=tmp_path)
    assert result.passed, "\n".join(result.summary.get("reports", [])) or result.summary
    m, k, n = gemm
    assert result.compared >= 2 * m * n


@pytest.mark.parametrize("dataflow", ["broadcast", "systolic"])
@pytest.mark.parametrize("rows,cols,gemm", [(4, 4, [16, 32, 16]), (8, 8, [64, 64, 64]),
                                            (3, 5, [12, 40, 20])])
def test_utilization_of_a_tiled_gemm_at_full_rate(simulator, rows, cols, gemm, dataflow,
                                                  tmp_path):
    """K = 8 * max(rows, cols), continuously valid input, always-ready output: MAC
    utilization over the whole GEMM (fill and final drain included) >= 95 %."""
    result = run_bench("mac-array", dict(rows=rows, cols=cols, dataflow=dataflow), simulator,
                       {"gemm": gemm, "seed": 1, "in_pause": 0, "out_pause": 0,
                        "reset": False}, workdir=tmp_path)
    assert result.passed, result.summary
    s = result.summary
    print(f"\n{simulator} {dataflow} {rows}x{cols} GEMM {gemm}: {s['macs']} MACs in {s['phase_cycles']} "
          f"cycles, utilization {100 * s['utilization']:.2f} %")
    assert s["utilization"] >= 0.95
