# amaranth: UnusedElaboratable=no
"""MxMacArray in Amaranth's own simulator against :func:`qdp.golden.mx_matmul`: every
element format, array shapes, block sizes and limb widths, the bench's tile kinds
(random codes, the whole E8M0 range, exact cancellation, rounding ties, zeros), random
valid gaps and backpressure; throughput and the latency bound at full rate; parameter
checks."""

import numpy as np
import pytest
from _float_blocks import beats_of

from qdp.golden.mx import MX_ELEMENTS
from qdp.hdl import MxMacArray
from qdp.sim import mx_mac_array_tb as tb
from qdp.sim.amaranth_stream import run_streams
from qdp.sim.payload import unpack


def run(mac, tiles, **pauses):
    """``tiles`` through ``mac``: ``(data, (first, last), want, cycles)``."""
    fields = tb.input_fields(mac, tiles)
    want, first, last = tb.expected_rows(mac, tiles)
    received, cycles = run_streams(mac, {"i": beats_of(fields)}, {"o": len(want)}, **pauses)
    got = unpack(mac.o.payload.shape(), received["o"])
    flags = np.stack([got["first"], got["last"]], axis=1)
    assert (flags == np.stack([first, last], axis=1)).all()
    return np.asarray(got["data"]), want, cycles


def check(mac, tiles, **pauses):
    got, want, cycles = run(mac, tiles, **pauses)
    bad = np.argwhere(got != want)
    assert not len(bad), [(tiles[i // mac.rows]["kind"], hex(got[i, j]), hex(want[i, j]))
                          for i, j in bad[:5]]
    return cycles


@pytest.mark.parametrize("element", list(MX_ELEMENTS))
def test_every_element_and_kind(element):
    mac = MxMacArray(rows=2, cols=3, element=element, block_size=2)
    rng = np.random.default_rng(len(element))
    tiles = tb.make_tiles(mac, tb.ks_for(mac, {"vectors": 120}), rng)
    assert {t["kind"] for t in tiles} == set(tb.KINDS)
    check(mac, tiles, seed=1)


@pytest.mark.parametrize("rows, cols, element, block_size, limb_width", [
    (1, 1, "fp8_e5m2", 1, 128), (3, 2, "int8", 5, 32), (4, 4, "fp8_e4m3", 32, 64),
    (1, 4, "fp6_e2m3", 3, 128)])
def test_shapes_block_sizes_and_limbs(rows, cols, element, block_size, limb_width):
    mac = MxMacArray(rows=rows, cols=cols, element=element, block_size=block_size,
                     limb_width=limb_width)
    rng = np.random.default_rng(rows * 10 + cols)
    check(mac, tb.make_tiles(mac, tb.ks_for(mac, {"vectors": 40}), rng), seed=2)


def test_every_code_pair_of_fp4():
    mac = MxMacArray(rows=4, cols=4, element="fp4_e2m1", block_size=1)
    tiles = tb.exhaustive_tiles(mac)
    assert len(tiles) * 16 == tb.exhaustive_elements(mac) == 256
    check(mac, tiles, in_pause=0, out_pause=0)


def test_full_rate_when_blocks_outlast_the_ring():
    """One k-step per cycle when block_size >= ring_period + 5, tiles back to back."""
    mac = MxMacArray(rows=2, cols=2, element="int8", block_size=16, limb_width=128)
    assert mac.ring_period + 5 <= 16 and mac.throughput == 1
    tiles = tb.make_tiles(mac, [32] * 6, np.random.default_rng(0), kinds=("random",))
    cycles = check(mac, tiles, in_pause=0, out_pause=0)
    assert cycles <= 6 * 32 + mac.latency + 2


def test_short_blocks_wait_for_the_ring():
    mac = MxMacArray(rows=2, cols=2, element="fp8_e4m3", block_size=2, limb_width=64)
    tiles = tb.make_tiles(mac, [8] * 4, np.random.default_rng(1), kinds=("random",))
    cycles = check(mac, tiles, in_pause=0, out_pause=0)
    beats = 4 * 8
    # At least `throughput` k-steps per cycle; far fewer than one.
    assert 4 * beats < cycles <= beats / mac.throughput + mac.latency + 8


@pytest.mark.parametrize("rows", [1, 3])
def test_latency_is_a_bound(rows):
    mac = MxMacArray(rows=rows, cols=2, element="fp8_e4m3", block_size=4)
    tiles = tb.make_tiles(mac, [4], np.random.default_rng(rows), kinds=("random",))
    cycles = check(mac, tiles, in_pause=0, out_pause=0)
    # The last beat is taken in cycle 4; the last row leaves at most a ring turn per row
    # after the first.
    assert cycles <= 4 + mac.latency + (rows - 1) * mac.limbs + 1


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(rows=0), ValueError, "rows: 0"), (dict(cols=17), ValueError, "cols: 17"),
    (dict(element="fp8"), ValueError, "element: unknown MX element 'fp8'"),
    (dict(block_size=0), ValueError, "block_size: 0"),
    (dict(limb_width=48), ValueError, "limb_width: unknown value 48; expected one of 32, "
                                      "64, 128"),
    (dict(limb_width=64.0), TypeError, "limb_width: expected an integer, got 64.0")])
def test_bad_parameters_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        MxMacArray(**kwargs)
