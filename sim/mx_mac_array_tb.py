"""cocotb bench of the MX dot product on the MAC array: tiles of one to four blocks through
the generated Verilog, random valid gaps on the input, random backpressure on the output,
a reset in the middle of a tile, and every FP32 output compared exactly with
:func:`qdp.golden.mx_matmul`.

Stimulus kinds (:data:`KINDS`), cycled over the tiles:

``random``
    Every code (NaN and Inf codes included), scales near 2**0 (117..137).
``wide``
    Every code, scales over the whole E8M0 range (0..254) and now and then the NaN
    scale: results that overflow to Inf, that are subnormal or round to zero.
``cancel``
    A block at a large scale, the same block again with B's signs flipped (its sum
    cancels the first exactly) and a block at a small scale: the result is the small
    block alone, which only an exact accumulator gets right.
``ties``
    Sums that lie exactly halfway between two FP32 values (a block of 1.0 * 2**e, one of
    1.0 * 2**(e - 24), optionally one at 2**(e - 23) to make the lower neighbour odd),
    and a few with a far smaller block as the sticky bit that breaks the tie.
``zero``
    Zero codes of either sign: every output +0.

The exhaustive check sends every pair of element codes as the single non-zero product of
a one-block tile (random scales): ``2**(2 width)`` products.

The Traffic is the MAC array's (:class:`~qdp.sim.mac_array_tb.TileTraffic`) with these
tiles; a ``golden`` override ``{"accumulate": "fp32"}`` adds the block sums in FP32, one
rounding per block, as a non-exact accumulator would: the bench must fail with it.
"""

import cocotb
import numpy as np

from ..golden.mx import element_format
from ..golden.mx_mac_array import mx_matmul
from .bench import run_stream_bench
from .mac_array_tb import TileTraffic

__all__ = ["KINDS", "make_tiles", "input_fields", "expected_rows", "exhaustive_elements",
           "exhaustive_tiles", "MxTileTraffic", "test_mx_mac_array"]

KINDS = ("random", "wide", "cancel", "ties", "zero")


def _one(elem):
    """The code of 1.0."""
    if elem.exp_bits == 0:
        return 1 << elem.man_bits
    return elem.bias << elem.man_bits


def _sign_bit(elem):
    return 1 << (elem.width - 1)


def _negated(codes, elem):
    if elem.exp_bits == 0:
        return (256 - codes.astype(np.int64)) & 0xFF
    return codes ^ _sign_bit(elem)


def _finite_codes(rng, shape, elem):
    """Random codes with the NaN and Inf codes replaced by zero (MXINT8: -128 too, so
    that every code has a negation)."""
    codes = rng.integers(0, 1 << elem.width, shape)
    if elem.exp_bits == 0:
        return np.where(codes == 128, 0, codes)
    field = (codes >> elem.man_bits) & ((1 << elem.exp_bits) - 1)
    top = field == (1 << elem.exp_bits) - 1
    if elem.name == "fp8_e5m2":
        return np.where(top, 0, codes)
    if elem.name == "fp8_e4m3":
        return np.where((codes & 0x7F) == 0x7F, 0, codes)
    return codes


def _tile(mac, elem, kind, blocks, rng):
    rows, cols, size = mac.rows, mac.cols, mac.block_size
    k = blocks * size
    width = elem.width
    a = rng.integers(0, 1 << width, (rows, k))
    b = rng.integers(0, 1 << width, (k, cols))
    sa = rng.integers(117, 138, (rows, blocks))
    sb = rng.integers(117, 138, (blocks, cols))
    if kind == "wide":
        sa, sb = rng.integers(0, 255, sa.shape), rng.integers(0, 255, sb.shape)
        sa[rng.random(sa.shape) < 0.03] = 0xFF
        sb[rng.random(sb.shape) < 0.03] = 0xFF
    elif kind == "cancel":
        a, b, sa, sb = _cancelling(mac, elem, rng)
    elif kind == "ties":
        a, b, sa, sb = _ties(mac, elem, rng)
    elif kind == "zero":
        a = rng.choice([0, _sign_bit(elem) if elem.exp_bits else 0], (rows, k))
        b = rng.choice([0, _sign_bit(elem) if elem.exp_bits else 0], (k, cols))
    return {"a": a.astype(np.int64), "b": b.astype(np.int64), "a_scale": sa.astype(np.int64),
            "b_scale": sb.astype(np.int64), "kind": kind}


def _cancelling(mac, elem, rng):
    """Three blocks: one at a large scale, the same with B's signs flipped at the same
    scale, one at a small scale."""
    rows, cols, size = mac.rows, mac.cols, mac.block_size
    a = _finite_codes(rng, (rows, size), elem)
    b = _finite_codes(rng, (size, cols), elem)
    a = np.concatenate([a, a, _finite_codes(rng, (rows, size), elem)], axis=1)
    b = np.concatenate([b, _negated(b, elem), _finite_codes(rng, (size, cols), elem)])
    high_a, high_b = rng.integers(150, 255, (rows, 1)), rng.integers(150, 255, (1, cols))
    sa = np.concatenate([high_a, high_a, rng.integers(0, 110, (rows, 1))], axis=1)
    sb = np.concatenate([high_b, high_b, rng.integers(0, 110, (1, cols))])
    return a, b, sa, sb


def _ties(mac, elem, rng):
    """Four blocks, at most one non-zero product each (+-1.0 * +-1.0 at the block's first
    k), whose scale sums for every output are ``e``, ``e - 23``, ``e - 24`` and
    ``e - 60`` (``e`` in the normal range): the second block (present or not) sets the
    parity of the FP32 neighbours, the third is half an ulp, the fourth (present or not)
    the sticky bit."""
    rows, cols, size = mac.rows, mac.cols, mac.block_size
    one = _one(elem)
    minus = int(_negated(np.array([one]), elem)[0])
    a = np.zeros((rows, 4 * size), np.int64)
    b = np.zeros((4 * size, cols), np.int64)
    sa = np.repeat(rng.integers(60, 181, (rows, 1)), 4, axis=1)
    sb = rng.integers(94, 175, (1, cols)) + np.array([0, -23, -24, -60])[:, None]
    for block, present in enumerate([True, rng.random() < 0.7, True, rng.random() < 0.5]):
        if present:
            a[:, block * size] = rng.choice([one, minus], rows)
            b[block * size, :] = rng.choice([one, minus], cols)
    return a, b, sa, sb


def make_tiles(mac, ks, rng, kinds=KINDS):
    """One tile per K in ``ks`` (whole blocks), kinds cycled: dicts of ``a`` (rows x K
    codes), ``b`` (K x cols), ``a_scale`` (rows x blocks), ``b_scale`` (blocks x cols)
    and ``kind``; ``cancel`` tiles have three blocks and ``ties`` four whatever K."""
    elem = element_format(mac.element)
    return [_tile(mac, elem, kinds[n % len(kinds)], max(1, k // mac.block_size), rng)
            for n, k in enumerate(ks)]


def ks_for(mac, config):
    """One to four blocks per tile, cycled until ``vectors`` output elements."""
    count = max(4, -(-config["vectors"] // (mac.rows * mac.cols)))
    return [(1 + n % 4) * mac.block_size for n in range(count)]


def input_fields(mac, tiles):
    """The input beats of ``tiles``: codes, each beat's block scales, ``last``."""
    size = mac.block_size
    fields = {"a": np.concatenate([t["a"].T for t in tiles]),
              "b": np.concatenate([t["b"] for t in tiles]),
              "a_scale": np.concatenate([np.repeat(t["a_scale"].T, size, axis=0)
                                         for t in tiles]),
              "b_scale": np.concatenate([np.repeat(t["b_scale"], size, axis=0)
                                         for t in tiles]),
              "last": np.concatenate([np.arange(t["a"].shape[1]) == t["a"].shape[1] - 1
                                      for t in tiles]).astype(np.int64)}
    return fields


def _fp32_blocks(mac, t):
    """The non-exact model: each block's exact sum rounded to FP32, the blocks added in
    FP32 in order."""
    size, total = mac.block_size, None
    for j in range(t["a_scale"].shape[1]):
        part = mx_matmul(t["a"][:, j * size:(j + 1) * size], t["a_scale"][:, j:j + 1],
                         t["b"][j * size:(j + 1) * size], t["b_scale"][j:j + 1],
                         mac.element, block_size=size)
        with np.errstate(invalid="ignore"):          # Inf - Inf: NaN, as FP32 adds
            total = part if total is None else (total + part).astype(np.float32)
    return total


def expected_rows(mac, tiles, golden_overrides=None):
    """``(data, first, last)`` per output row: FP32 patterns of every tile's C."""
    overrides = dict(golden_overrides or {})
    if overrides.pop("accumulate", "exact") == "fp32":
        results = [_fp32_blocks(mac, t) for t in tiles]
    else:
        results = [mx_matmul(t["a"], t["a_scale"], t["b"], t["b_scale"], mac.element,
                             block_size=mac.block_size) for t in tiles]
    if overrides:
        raise ValueError(f"golden: unknown overrides {sorted(overrides)}")
    data = np.concatenate(results).view(np.uint32).astype(np.int64)
    first = np.tile(np.arange(mac.rows) == 0, len(tiles)).astype(np.int64)
    last = np.tile(np.arange(mac.rows) == mac.rows - 1, len(tiles)).astype(np.int64)
    return data, first, last


def _shown(tiles, mac):
    rows = mac.rows
    return {"tile": np.repeat(np.arange(len(tiles)), rows),
            "row": np.tile(np.arange(rows), len(tiles)),
            "K": np.repeat([t["a"].shape[1] for t in tiles], rows),
            "kind_index": np.repeat([(*KINDS, "exhaustive").index(t["kind"])
                                     for t in tiles], rows)}


def exhaustive_elements(mac):
    """Products of :func:`exhaustive_tiles`: every pair of element codes."""
    return 1 << (2 * element_format(mac.element).width)


def exhaustive_tiles(mac, seed=0):
    """One-block tiles whose first k-step carries ``rows`` A codes and ``cols`` B codes,
    all other codes zero, so each output is one product; together every pair of codes,
    at random scales."""
    width = element_format(mac.element).width
    rng = np.random.default_rng(seed)
    codes = np.arange(1 << width)
    a_sets = -(-len(codes) // mac.rows)
    b_sets = -(-len(codes) // mac.cols)
    tiles = []
    for i in range(a_sets):
        a_codes = np.resize(codes[i * mac.rows:(i + 1) * mac.rows], mac.rows)
        for j in range(b_sets):
            b_codes = np.resize(codes[j * mac.cols:(j + 1) * mac.cols], mac.cols)
            a = np.zeros((mac.rows, mac.block_size), np.int64)
            b = np.zeros((mac.block_size, mac.cols), np.int64)
            a[:, 0], b[0, :] = a_codes, b_codes
            tiles.append({"a": a, "b": b, "a_scale": rng.integers(0, 256, (mac.rows, 1)),
                          "b_scale": rng.integers(0, 256, (1, mac.cols)),
                          "kind": "exhaustive"})
    return tiles


class MxTileTraffic(TileTraffic):
    """The MAC array's tile traffic with MX tiles (see the module)."""

    expected = staticmethod(expected_rows)
    make_tiles = staticmethod(make_tiles)
    input_fields = staticmethod(input_fields)
    shown = staticmethod(_shown)
    kinds = KINDS
    ks_for = staticmethod(ks_for)
    exhaustive_tiles = staticmethod(exhaustive_tiles)

    def _phase(self, tiles):
        phase = super()._phase(tiles)
        inputs = len(phase.inputs["i"]["last"])
        # The timeout counts beats at one per cycle; short blocks run slower.
        rate = self.bench.config["manifest"]["throughput_beats_per_cycle"]
        phase.timeout_beats += int(inputs / rate) - inputs
        return phase


@cocotb.test()
async def test_mx_mac_array(dut):
    await run_stream_bench(dut, MxTileTraffic)
