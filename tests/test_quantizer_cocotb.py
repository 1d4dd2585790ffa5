"""The generated Quantizer Verilog against the golden model on Verilator and Icarus.

The matrix is a pairwise covering of rounding x saturation x signedness x lanes x
constant/run-time scale x per-tensor/per-lane x latency (shallow and deep pipelines) x
widths, plus the TFLite modes and the deepest pipelines;
every configuration runs on both simulators with random valid gaps, random backpressure
and a reset in the middle of a stream.
"""

import random

import pytest

from qdp.golden import ROUNDING_MODES, SATURATION_MODES
from qdp.sim.runner import run_bench

from _pairwise import pairwise

# Elements per configuration: the bulk driver makes volume cheap on Verilator; Icarus
# runs the model itself 20x slower.
VECTORS = {"verilator": 20_000, "icarus": 2_000}
WIDTHS = ((32, 32, 8), (16, 12, 4), (10, 16, 12))     # in_width, mult_width, out_width
SIGNS = ((True, True), (True, False), (False, True), (False, False))


def _constants(rng, lanes, per_lane, in_width, mult_width, out_width, out_signed):
    def one():
        multiplier = rng.randrange(1 << (mult_width - 1), 1 << mult_width)
        # Trailing zeros in M let x * M / 2**S tie for in-range x even at wide scales.
        zeros = rng.choice([0, 2, mult_width // 2, mult_width - 2])
        multiplier = (multiplier >> zeros | 1) << zeros
        shift = max(0, in_width + mult_width - out_width - rng.randrange(0, 4))
        shift = min(shift, in_width + mult_width - 1)
        lo, hi = (-(1 << (out_width - 1)), (1 << (out_width - 1)) - 1) if out_signed \
            else (0, (1 << out_width) - 1)
        return max(multiplier, 1), shift, rng.randrange(lo // 4, hi // 4 + 1)
    values = [one() for _ in range(lanes if per_lane else 1)]
    columns = list(zip(*values))
    if per_lane:
        return {"multiplier": list(columns[0]), "shift": list(columns[1]),
                "zero_point": list(columns[2])}
    return {"multiplier": columns[0][0], "shift": columns[1][0], "zero_point": columns[2][0]}


def _matrix():
    rows = pairwise({
        "rounding": list(ROUNDING_MODES),
        "saturation": list(SATURATION_MODES),
        "signs": list(range(len(SIGNS))),
        "lanes": [1, 3, 8],
        "runtime_scale": [False, True],
        "per_lane": [False, True],
        "latency": [1, 3, 4, 6, 8],           # 5+: the deep pipeline
        "widths": list(range(len(WIDTHS))),
    })
    configs = []
    for index, row in enumerate(rows):
        in_width, mult_width, out_width = WIDTHS[row["widths"]]
        in_signed, out_signed = SIGNS[row["signs"]]
        params = dict(lanes=row["lanes"], in_width=in_width, in_signed=in_signed,
                      out_width=out_width, out_signed=out_signed, mult_width=mult_width,
                      rounding=row["rounding"], saturation=row["saturation"],
                      runtime_scale=row["runtime_scale"], per_lane=row["per_lane"],
                      latency=row["latency"])
        if not row["runtime_scale"]:
            params.update(_constants(random.Random(index), row["lanes"], row["per_lane"],
                                     in_width, mult_width, out_width, out_signed))
        configs.append(params)
    configs += [
        dict(tflite="double", lanes=1),                         # the default latency, 2
        dict(tflite="double", lanes=3, per_lane=True, latency=4),
        dict(tflite="single", lanes=8, per_lane=True, out_signed=False),
        dict(tflite="double", lanes=3, runtime_scale=False, per_lane=True,
             multiplier=[1583594044, 1 << 30, (1 << 31) - 1], shift=[-9, -1, 2],
             zero_point=[0, -3, 5], latency=1),
        dict(tflite="single", lanes=1, runtime_scale=False, multiplier=1583594044, shift=-9,
             zero_point=128, out_signed=False, latency=3),
        # The deepest pipelines: the reference configuration (the default in32 x M32 ->
        # int8) at its maximum latency, 11, and both TFLite modes deep in the pipeline.
        dict(latency=11),
        dict(tflite="double", lanes=2, per_lane=True, latency=10),
        dict(tflite="single", lanes=1, latency=7),
    ]
    return configs


CONFIGS = _matrix()


def _id(params):
    return "-".join(f"{k}={v}" for k, v in params.items()
                    if k not in ("multiplier", "shift", "zero_point"))


def test_matrix_covers_every_mode():
    seen = {key: {str(p.get(key)) for p in CONFIGS} for key in
            ("rounding", "saturation", "lanes", "runtime_scale", "per_lane", "tflite")}
    assert seen["rounding"] >= set(ROUNDING_MODES)
    assert seen["saturation"] >= set(SATURATION_MODES)
    assert seen["lanes"] >= {"1", "3", "8"}
    assert {"True", "False"} <= seen["runtime_scale"] and {"True", "False"} <= seen["per_lane"]
    assert {"double", "single"} <= seen["tflite"]
    signs = {(p.get("in_signed", True), p.get("out_signed", True)) for p in CONFIGS}
    assert signs == set(SIGNS)


@pytest.mark.parametrize("params", CONFIGS, ids=_id)
def test_quantizer_bit_exact(simulator, params, tmp_path):
    result = run_bench("quantizer", params, simulator,
                       {"vectors": VECTORS[simulator], "seed": len(_id(params))},
                       workdir=tmp_path)
    assert result.summary.get("compared", 0) >= VECTORS[simulator], result.summary
    assert result.passed and result.mismatches == 0, "\n".join(
        result.summary.get("reports", [])) or result.summary


def test_wrong_golden_is_caught(simulator, tmp_path):
    """A golden that rounds ties away from zero where the hardware rounds them to even
    must fail the bench with a report naming beat, lane, inputs, expected and got."""
    params = dict(rounding="half_even")
    result = run_bench("quantizer", params, simulator,
                       {"vectors": 2000, "seed": 5, "golden": {"rounding": "half_away"}},
                       workdir=tmp_path)
    assert not result.passed
    assert result.mismatches > 0
    report = result.summary["reports"][0]
    for word in ("beat", "lane", "inputs", "'x'", "'multiplier'", "'shift'", "expected", "got"):
        assert word in report, report
