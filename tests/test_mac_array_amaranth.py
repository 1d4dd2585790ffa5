# amaranth: UnusedElaboratable=no
"""The MAC array in Amaranth's own simulator against the golden model: shapes, K, operand
types, zero points, wrap and saturation at acc_width 16, random valid gaps and
backpressure; then the measured MAC utilization and latency at full rate; then the
parameter checks.

Run with ``-s`` to see the utilization numbers.
"""

import numpy as np
import pytest

from qdp.hdl.mac_array import MacArray
from qdp.sim.amaranth_stream import run_streams
from qdp.sim.mac_array_tb import KINDS, expected_rows, input_beats, make_tiles
from qdp.sim.payload import unpack


def run(mac, ks, *, seed=0, kinds=KINDS, in_pause=0.3, out_pause=0.3):
    rng = np.random.default_rng(seed)
    tiles = make_tiles(mac, ks, rng, kinds)
    want, first, last = expected_rows(mac, tiles)
    received, cycles = run_streams(mac, {"i": input_beats(mac, tiles)}, {"o": len(want)},
                                   in_pause=in_pause, out_pause=out_pause, seed=seed)
    got = unpack(mac.o.payload.shape(), received["o"])
    bad = np.argwhere(got["data"] != want)
    assert len(bad) == 0, [f"row {r} lane {c}: expected {want[r, c]} got {got['data'][r, c]}"
                           for r, c in bad[:10]]
    assert np.array_equal(got["first"], first) and np.array_equal(got["last"], last)
    return cycles


# Every dataflow, pipelined (the default: DSP tiles, output FIFO) and not.
VARIANTS = [dict(dataflow="broadcast"), dict(dataflow="systolic"),
            dict(dataflow="broadcast", pipelined=False),
            dict(dataflow="systolic", pipelined=False)]


def _name(variant):
    return variant["dataflow"] + ("" if variant.get("pipelined", True) else "-unpipelined")


@pytest.mark.parametrize("rows,cols", [(1, 1), (1, 8), (8, 1), (3, 5), (4, 4), (8, 8)])
@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("variant", VARIANTS, ids=_name)
def test_shapes_and_k_at_acc_width_16(rows, cols, saturate, variant):
    """int8 x int8 into 16 bits: the extreme tiles overflow from K = 3 on, both ways."""
    mac = MacArray(rows=rows, cols=cols, acc_width=16, saturate=saturate, **variant)
    run(mac, [1, 2, rows, 100, 3, 1, 100, 2, rows], seed=rows * 10 + cols + saturate)


@pytest.mark.parametrize("params", [
    dict(a_signed=False, b_signed=True, acc_width=32),
    dict(a_signed=False, b_signed=False, acc_width=17, saturate=True),
    dict(a_width=2, b_width=2, acc_width=16),
    dict(a_width=5, a_signed=False, b_width=7, acc_width=24, saturate=True),
    dict(a_width=8, b_width=8, acc_width=48),
    dict(runtime_zero=True, acc_width=17),
    dict(runtime_zero=True, a_signed=False, acc_width=17, saturate=True),
    dict(runtime_zero=True, a_width=3, b_width=4, b_signed=False, acc_width=16),
    dict(a_zero=[-128, 127, 0, 5], b_zero=[1, -2, 3], acc_width=17, saturate=True),
    dict(a_signed=False, a_zero=128, b_zero=-3, acc_width=32),
], ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("variant", VARIANTS, ids=_name)
def test_operand_types_and_zero_points(params, variant):
    mac = MacArray(rows=4, cols=3, **variant, **params)
    run(mac, [1, 2, 4, 100, 7, 1, 1, 33], seed=len(str(params)))


@pytest.mark.parametrize("variant", VARIANTS, ids=_name)
def test_short_tiles_back_to_back_under_heavy_traffic_noise(variant):
    """K < rows: the drain, not the array, sets the pace; nothing is lost or repeated."""
    mac = MacArray(rows=8, cols=2, acc_width=16, saturate=True, **variant)
    run(mac, [1] * 20 + [2] * 10 + [9] * 3, seed=4, in_pause=0.6, out_pause=0.6)


# 16x16 pipelined takes two minutes in Amaranth's simulator; the cocotb benches run it.
@pytest.mark.parametrize("rows,cols,tiles,variant", [
    (rows, cols, tiles, variant)
    for rows, cols, tiles in [(1, 8, 16), (8, 1, 8), (3, 5, 16), (4, 4, 16), (8, 8, 16),
                              (16, 16, 8)]
    for variant in VARIANTS if rows < 16 or not variant.get("pipelined", True)],
    ids=lambda v: _name(v) if isinstance(v, dict) else str(v))
def test_utilization_at_full_rate(rows, cols, tiles, variant):
    """Continuously valid input, always-ready output, K = 8 * max(rows, cols): useful
    MACs / (rows * cols * cycles) >= 95 %, counting every cycle from the first input
    beat to the last output beat (fill and drain included)."""
    mac = MacArray(rows=rows, cols=cols, **variant)
    k = 8 * max(rows, cols)
    cycles = run(mac, [k] * tiles, seed=1, kinds=("random",), in_pause=0, out_pause=0)
    useful = tiles * k * rows * cols
    utilization = useful / (rows * cols * cycles)
    print(f"\nutilization {_name(variant)} {rows}x{cols} K={k} x{tiles} tiles: {useful} MACs in {cycles} "
          f"cycles = {100 * utilization:.2f} %")
    # Exactly: one cycle per k-step, plus the latency and the drain of the last tile.
    assert cycles == tiles * k + mac.latency + rows - 1
    assert utilization >= 0.95


@pytest.mark.parametrize("rows", [1, 4, 8])
def test_no_idle_cycle_between_tiles_when_k_equals_rows(rows):
    """Broadcast, not pipelined: K = rows is the shortest tile whose drain hides entirely
    behind the next tile."""
    mac = MacArray(rows=rows, cols=3, dataflow="broadcast", pipelined=False)
    tiles = 10
    cycles = run(mac, [rows] * tiles, kinds=("random",), in_pause=0, out_pause=0)
    assert cycles == tiles * rows + mac.latency + rows - 1


@pytest.mark.parametrize("rows", [1, 3, 8])
@pytest.mark.parametrize("variant,shortest", [
    (dict(dataflow="systolic", pipelined=False), lambda r, c: 2 * r + c + 1),
    (dict(dataflow="systolic"), lambda r, c: 2 * r + c + 6),
    (dict(dataflow="broadcast"), lambda r, c: r + 7),
], ids=lambda v: _name(v) if isinstance(v, dict) else "")
def test_shortest_tile_without_a_stall_when_last_waits(rows, variant, shortest):
    """Systolic or pipelined: a tile's last beat waits until the previous tile has
    finished and drained, so back-to-back tiles run without a stall from K = latency +
    rows - 1 on (latency + rows - 2 pipelined: the output FIFO's cycle is not part of
    the wait), and K one shorter costs cycles."""
    cols = 3
    mac = MacArray(rows=rows, cols=cols, **variant)
    k = shortest(rows, cols)
    assert k == mac.latency + rows - 1 - mac.pipelined
    tiles = 6
    cycles = run(mac, [k] * tiles, kinds=("random",), in_pause=0, out_pause=0)
    assert cycles == tiles * k + mac.latency + rows - 1
    slower = run(mac, [k - 1] * tiles, kinds=("random",), in_pause=0, out_pause=0)
    assert slower > tiles * (k - 1) + mac.latency + rows - 1


@pytest.mark.parametrize("variant", VARIANTS, ids=_name)
def test_latency_of_a_single_beat_tile(variant):
    mac = MacArray(rows=1, cols=2, **variant)
    # Taken on cycle 1, out on cycle 1 + latency.
    assert run(mac, [1], in_pause=0, out_pause=0) == 1 + mac.latency


def test_manifest_attributes():
    mac = MacArray(rows=3, cols=5, acc_width=20)
    # Pipelined adds six: the DSP's two extra stages, the fabric product register, the
    # register between accumulator and shadow, the shadow's load, the output FIFO.
    assert (mac.lanes, mac.latency, mac.throughput) == (5, 3 + 5 + 2 + 6, 1)
    assert MacArray(rows=3, cols=5, dataflow="broadcast").latency == 3 + 6
    assert MacArray(rows=3, cols=5, dataflow="broadcast", pipelined=False).latency == 3
    assert MacArray(rows=3, cols=5, dataflow="systolic").latency == 3 + 5 + 2 + 6
    assert MacArray(rows=3, cols=5, dataflow="systolic", pipelined=False).latency == 3 + 5 + 2
    layout = mac.o.payload.shape()
    assert layout.size == 5 * 20 + 2


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(rows=0), ValueError, "rows"),
    (dict(rows=33), ValueError, "rows"),
    (dict(cols=0), ValueError, "cols"),
    (dict(rows=2.0), TypeError, "rows"),
    (dict(a_width=9), ValueError, "a_width"),
    (dict(b_width=1), ValueError, "b_width"),
    (dict(a_signed=1), TypeError, "a_signed"),
    (dict(acc_width=15), ValueError, "acc_width"),
    (dict(acc_width=49), ValueError, "acc_width"),
    (dict(a_signed=False, b_signed=False, acc_width=16), ValueError, "acc_width"),
    (dict(runtime_zero=True, acc_width=16), ValueError, "acc_width"),
    (dict(a_zero=127, b_zero=127, acc_width=16), ValueError, "acc_width"),
    (dict(saturate="yes"), TypeError, "saturate"),
    (dict(a_zero=128), ValueError, "a_zero"),
    (dict(a_signed=False, a_zero=-1), ValueError, "a_zero"),
    (dict(rows=4, a_zero=[1, 2]), ValueError, "a_zero"),
    (dict(cols=4, b_zero=[1, 2, 3, 4, 5]), ValueError, "b_zero"),
    (dict(b_zero=1.5), TypeError, "b_zero"),
    (dict(runtime_zero=True, acc_width=17, a_zero=3), ValueError, "a_zero"),
    (dict(dataflow="diagonal"), ValueError, "dataflow"),
    (dict(pipelined=1), TypeError, "pipelined"),
])
def test_bad_parameters_name_themselves(kwargs, exc, match):
    with pytest.raises(exc, match=f"^{match}:"):
        MacArray(**kwargs)


def test_smallest_acc_width_that_holds_a_product_is_accepted():
    assert MacArray(acc_width=16).product_width == 16          # -128 * -128 = 16384
    assert MacArray(a_signed=False, b_signed=False, acc_width=17).product_width == 17
    assert MacArray(runtime_zero=True, acc_width=17).product_width == 17   # 255 * 255
