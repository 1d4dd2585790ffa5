# amaranth: UnusedElaboratable=no
"""The quantized linear layer in Amaranth's own simulator against
:func:`qdp.golden.qlinear.qlinear`: shapes, K, wrap/saturating accumulators, bias,
per-column requantization to int8 and uint8, rounding and saturation modes, random valid
gaps and backpressure; full-rate throughput; parameter checks."""

import numpy as np
import pytest

from qdp.golden.qlinear import qlinear
from qdp.hdl.qlinear import QLinear
from qdp.sim.amaranth_stream import run_streams
from qdp.sim.mac_array_tb import KINDS, input_beats, make_tiles
from qdp.sim.payload import unpack


def _requant(rng, cols, acc_width, k, out_width):
    """Per-column (M, S) that bring a typical K-deep int8 sum near the output range."""
    mult = [int(v) for v in rng.integers(1 << 20, 1 << 24, size=cols)]
    # |acc| ~ 128 * 128 * sqrt(K); aim 2**(out_width - 1) at about that.
    bits = 14 + int(np.log2(max(k, 1)) / 2) + 24 - (out_width - 1)
    shift = [int(v) for v in np.clip(bits + rng.integers(-2, 3, size=cols), 0,
                                     acc_width + 31)]
    return mult, shift


def run(q, ks, *, seed, in_pause=0.3, out_pause=0.3, kinds=KINDS):
    rng = np.random.default_rng(seed)
    tiles = make_tiles(q.array, ks, rng, kinds)
    want = np.concatenate([
        qlinear(t["a"], t["b"], a_zero=t["a_zero"], w_zero=t["b_zero"], bias=list(q.bias),
                multiplier=list(q.multiplier), shift=list(q.shift),
                zero_point=list(q.zero_point), out_width=q.out_width,
                out_signed=q.out_signed, rounding=q.rounding, saturation=q.saturation,
                acc_width=q.acc_width, saturate=q.saturate, mult_width=q.mult_width)
        for t in tiles])
    received, cycles = run_streams(q, {"i": input_beats(q.array, tiles)}, {"o": len(want)},
                                   in_pause=in_pause, out_pause=out_pause, seed=seed)
    got = unpack(q.o.payload.shape(), received["o"])
    bad = np.argwhere(got["data"] != want)
    assert len(bad) == 0, [f"row {r} lane {c}: expected {want[r, c]} got {got['data'][r, c]}"
                           for r, c in bad[:10]]
    rows = q.rows
    assert np.array_equal(got["first"], np.tile(np.arange(rows) == 0, len(tiles)))
    assert np.array_equal(got["last"], np.tile(np.arange(rows) == rows - 1, len(tiles)))
    return cycles


@pytest.mark.parametrize("rows,cols", [(1, 8), (8, 1), (3, 5), (4, 4)])
@pytest.mark.parametrize("out_signed", [True, False])
@pytest.mark.parametrize("quant_latency", [1, 4])
def test_qlinear_int8_uint8(rows, cols, out_signed, quant_latency):
    rng = np.random.default_rng(rows * 100 + cols * 10 + out_signed + quant_latency)
    mult, shift = _requant(rng, cols, 32, 50, 8)
    q = QLinear(rows=rows, cols=cols, bias=[int(v) for v in rng.integers(-50000, 50000, cols)],
                multiplier=mult, shift=shift,
                zero_point=[int(v) for v in rng.integers(-5, 5, cols)] if out_signed
                else [int(v) for v in rng.integers(120, 136, cols)],
                out_signed=out_signed, quant_latency=quant_latency)
    run(q, [1, 2, rows, 100, 50, 3], seed=rows + cols)


@pytest.mark.parametrize("params", [
    dict(acc_width=16, saturate=True, bias=[32767, -32768, 1000], rounding="half_away",
         saturation="sat_sym"),
    dict(acc_width=16, saturate=False, bias=[32767, -32768, 1000], rounding="floor",
         saturation="wrap"),
    dict(acc_width=20, a_signed=False, runtime_zero=True, rounding="half_up",
         saturation="sat_zero"),
    dict(acc_width=24, a_zero=[1, -2, 3, 4], b_zero=7, rounding="trunc", out_width=4),
], ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()).replace(" ", ""))
def test_qlinear_modes(params):
    rng = np.random.default_rng(len(str(params)))
    acc_width = params["acc_width"]
    mult, shift = _requant(rng, 3, acc_width, 20, params.get("out_width", 8))
    q = QLinear(rows=4, cols=3, multiplier=mult, shift=shift, zero_point=[0, 1, -1], **params)
    run(q, [1, 2, 4, 100, 20], seed=3)


@pytest.mark.parametrize("dataflow", ["broadcast", "systolic"])
@pytest.mark.parametrize("pipelined", [True, False])
def test_qlinear_systolic_and_broadcast_agree(dataflow, pipelined):
    q = QLinear(rows=3, cols=4, multiplier=[3 << 20, 5 << 20, 1 << 22, 7 << 19],
                shift=[38, 39, 37, 38], bias=[9, -9, 99, -99], dataflow=dataflow,
                pipelined=pipelined)
    run(q, [1, 2, 3, 100, 13], seed=5)


@pytest.mark.parametrize("pipelined,array_latency", [(True, 4 + 4 + 2 + 6), (False, 4 + 4 + 2)])
def test_qlinear_full_rate(pipelined, array_latency):
    q = QLinear(rows=4, cols=4, multiplier=1 << 20, shift=34, pipelined=pipelined)
    tiles, k = 8, 32
    cycles = run(q, [k] * tiles, seed=1, in_pause=0, out_pause=0, kinds=("random",))
    assert cycles == tiles * k + q.latency + q.rows - 1
    assert q.latency == array_latency + 4 and q.lanes == 4 and q.throughput == 1


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(rows=0), ValueError, "rows"),
    (dict(a_width=9), ValueError, "a_width"),
    (dict(acc_width=16, bias=1 << 15), ValueError, "bias"),
    (dict(bias=[1, 2]), ValueError, "bias"),
    (dict(multiplier=[1, 2]), ValueError, "multiplier"),
    (dict(multiplier=1 << 32), ValueError, "multiplier"),
    (dict(shift=-1), ValueError, "shift"),
    (dict(zero_point=128), ValueError, "zero_point"),
    (dict(rounding="stochastic"), ValueError, "rounding"),
    (dict(rounding="nearest"), ValueError, "rounding"),
    (dict(saturation="clip"), ValueError, "saturation"),
    (dict(out_width=1), ValueError, "out_width"),
    (dict(quant_latency=5), ValueError, "quant_latency"),
])
def test_bad_parameters_name_themselves(kwargs, exc, match):
    with pytest.raises(exc, match=f"^{match}:"):
        QLinear(**kwargs)
