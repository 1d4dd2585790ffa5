"""The generated quantized-linear-layer Verilog against :func:`qdp.golden.qlinear.qlinear`
on Verilator and Icarus: int8 and uint8 outputs, per-column bias and requantization, wrap
and saturating accumulators, random gaps, backpressure and a mid-tile reset.
"""

import pytest

from qdp.sim.runner import run_bench


CONFIGS = [
    dict(rows=4, cols=4, bias=[100000, -100000, 0, 7], multiplier=[3 << 20, 5 << 20, 1 << 22,
         7 << 19], shift=[38, 39, 37, 38], zero_point=[0, -3, 5, 1]),
    dict(rows=3, cols=5, a_signed=False, runtime_zero=True, acc_width=24, out_signed=False,
         bias=[-5, 5, 0, 1000, -1000], multiplier=1 << 20, shift=[33, 34, 35, 36, 37],
         zero_point=128, rounding="half_away", quant_latency=1),
    dict(rows=1, cols=8, acc_width=16, saturate=True, bias=-20000, multiplier=255, shift=16,
         zero_point=0, mult_width=8, rounding="floor", saturation="sat_sym", quant_latency=2),
    dict(rows=8, cols=1, acc_width=16, bias=[32000], multiplier=1 << 15, shift=23,
         out_width=4, saturation="wrap", quant_latency=3, pipelined=False),
    dict(rows=3, cols=4, dataflow="broadcast", bias=[9, -9, 99, -99],
         multiplier=[3 << 20, 5 << 20, 1 << 22, 7 << 19], shift=[38, 39, 37, 38]),
]


def _id(params):
    return "-".join(f"{k}={v}" for k, v in params.items()
                    if k in ("rows", "cols", "acc_width", "saturate", "out_signed",
                             "rounding", "saturation", "dataflow",
                             "pipelined")).replace(" ", "")


@pytest.mark.parametrize("params", CONFIGS, ids=_id)
def test_qlinear_bit_exact(simulator, params, tmp_path):
    ks = [1, 2, params["rows"], 100]
    result = run_bench("qlinear", params, simulator, {"ks": ks, "tiles": 2, "seed": 7},
                       workdir=tmp_path)
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary
    assert result.compared >= len(ks) * 2 * params["rows"] * params["cols"]


def test_wrong_golden_is_caught(simulator, tmp_path):
    params = CONFIGS[0]
    result = run_bench("qlinear", params, simulator,
                       {"ks": [50], "tiles": 4, "seed": 3, "reset": False,
                        "golden": {"rounding": "floor"}}, workdir=tmp_path)
    assert not result.passed and result.mismatches > 0
