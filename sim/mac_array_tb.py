"""cocotb bench of the MAC array: tiles of random and extreme matrices with chosen K
through the generated Verilog, random valid gaps on the input, random backpressure on the
output, a reset in the middle of a tile, and every output element compared exactly with
:func:`qdp.golden.matmul_int`.

The stimulus and expectation functions are plain Python, shared with the Amaranth-
simulator tests (:mod:`tests.test_mac_array_amaranth`).

Config keys beyond :func:`qdp.sim.bench.bench_config`'s: ``ks`` (the K of each tile, in
order; default: K in {1, 2, rows, 100} cycled until ``vectors`` output elements),
``tiles`` (repeat ``ks`` this many times, default 1), ``kinds`` (stimulus kinds cycled
over the tiles, see :data:`KINDS`), or instead ``gemm: [M, K, N]``: one random GEMM larger
than the array, cut into tiles by the host-side tiler :func:`tile_gemm`, every tile
scored and the reassembled C compared with the golden GEMM. The summary adds ``macs``
(array MACs streamed), ``phase_cycles`` (first input beat offered to last output beat
of the main phase) and, for a GEMM, ``utilization`` = ``macs / (rows * cols *
phase_cycles)`` and ``useful_utilization`` (padding not counted).

:class:`TileTraffic` configures the bench engine (:mod:`qdp.sim.bench`) with these tiles:
``K`` input beats make ``rows`` output beats, whose ``data`` and ``first``/``last`` flags are
compared (``compared``, ``compared_flags``).
"""

import cocotb
import numpy as np

from .. import golden
from ..golden.mac_array import matmul_int
from .bench import run_stream_bench
from .traffic import Check, Expect, Phase, Traffic

__all__ = ["KINDS", "make_tiles", "exhaustive_elements", "exhaustive_tiles", "input_fields",
           "input_beats", "expected_rows",
           "gemm_operands", "tile_gemm", "untile_gemm", "tile_phase", "TileTraffic",
           "test_mac_array"]

#: Stimulus kinds: uniform random, every operand at its minimum, every operand at its
#: maximum, minimum times maximum (mixed signs), and random with large zero points.
KINDS = ("random", "min", "max", "mixed", "zeros")
#: Most operand pairs (a, b) an exhaustive check takes: every pair of two 9-bit operands.
EXHAUSTIVE_MAX_PAIRS = 1 << 18


def _range(width, is_signed):
    return golden._intarray.int_range(width, is_signed)


def make_tiles(mac, ks, rng, kinds=KINDS):
    """One tile per K in ``ks``: dicts of ``a`` (rows x K), ``b`` (K x cols), ``a_zero``
    (rows), ``b_zero`` (cols), and ``kind``. Kinds cycle over the tiles."""
    a_lo, a_hi = _range(mac.a_width, mac.a_signed)
    b_lo, b_hi = _range(mac.b_width, mac.b_signed)
    tiles = []
    for index, k in enumerate(ks):
        kind = kinds[index % len(kinds)]
        a = rng.integers(a_lo, a_hi + 1, size=(mac.rows, k))
        b = rng.integers(b_lo, b_hi + 1, size=(k, mac.cols))
        if kind == "min":
            a[:], b[:] = a_lo, b_lo
        elif kind == "max":
            a[:], b[:] = a_hi, b_hi
        elif kind == "mixed":
            a[:], b[:] = a_lo, b_hi
            # A few sign flips so saturated partial sums walk back from the rail.
            flip = rng.random(size=b.shape) < 0.1
            b[flip] = b_lo
        if mac.runtime_zero:
            if kind == "zeros":
                a_zero = rng.choice([a_lo, a_hi], size=mac.rows)
                b_zero = rng.choice([b_lo, b_hi], size=mac.cols)
            else:
                a_zero = rng.integers(a_lo, a_hi + 1, size=mac.rows)
                b_zero = rng.integers(b_lo, b_hi + 1, size=mac.cols)
        else:
            a_zero = np.broadcast_to(np.asarray(mac.a_zero), (mac.rows,)).copy()
            b_zero = np.broadcast_to(np.asarray(mac.b_zero), (mac.cols,)).copy()
        tiles.append({"a": a, "b": b, "a_zero": a_zero, "b_zero": b_zero, "kind": kind})
    return tiles


def exhaustive_elements(mac):
    """Output elements of :func:`exhaustive_tiles` for ``mac``; ``ValueError`` when its
    operands have more than :data:`EXHAUSTIVE_MAX_PAIRS` pairs."""
    pairs = 1 << (mac.a_width + mac.b_width)
    if pairs > EXHAUSTIVE_MAX_PAIRS:
        raise ValueError(f"exhaustive: {mac.a_width}-bit x {mac.b_width}-bit operands have "
                         f"2**{mac.a_width + mac.b_width} pairs; exhaustive checks take "
                         f"a_width + b_width <= {EXHAUSTIVE_MAX_PAIRS.bit_length() - 1}")
    return _blocks(1 << mac.a_width, mac.rows) * _blocks(1 << mac.b_width, mac.cols) * \
        mac.rows * mac.cols


def _blocks(values, size):
    return -(-values // size)


def exhaustive_tiles(mac):
    """Tiles of K = 1 whose products cover every pair (a, b) of operand values: tile
    (i, j) takes the i-th ``rows`` values of A and the j-th ``cols`` values of B (the last
    block wraps round to the first values), so each output element is one product
    ``(a - a_zero) * (b - b_zero)`` (run-time zero points 0)."""
    exhaustive_elements(mac)
    a_lo, _ = _range(mac.a_width, mac.a_signed)
    b_lo, _ = _range(mac.b_width, mac.b_signed)
    a_values, b_values = 1 << mac.a_width, 1 << mac.b_width
    a_zero = np.zeros(mac.rows, dtype=np.int64) if mac.runtime_zero else \
        np.broadcast_to(np.asarray(mac.a_zero), (mac.rows,)).copy()
    b_zero = np.zeros(mac.cols, dtype=np.int64) if mac.runtime_zero else \
        np.broadcast_to(np.asarray(mac.b_zero), (mac.cols,)).copy()
    tiles = []
    for i in range(_blocks(a_values, mac.rows)):
        a = (np.arange(i * mac.rows, (i + 1) * mac.rows) % a_values + a_lo).reshape(-1, 1)
        for j in range(_blocks(b_values, mac.cols)):
            b = (np.arange(j * mac.cols, (j + 1) * mac.cols) % b_values + b_lo).reshape(1, -1)
            tiles.append({"a": a, "b": b, "a_zero": a_zero, "b_zero": b_zero,
                          "kind": "exhaustive"})
    return tiles


def input_fields(mac, tiles):
    """The input beats of ``tiles`` as payload fields (arrays with one row per beat)."""
    a = np.concatenate([t["a"].T for t in tiles])
    b = np.concatenate([t["b"] for t in tiles])
    last = np.concatenate([np.arange(t["a"].shape[1]) == t["a"].shape[1] - 1
                           for t in tiles]).astype(np.int64)
    fields = {"a": a, "b": b, "last": last}
    if mac.runtime_zero:
        fields["a_zero"] = np.concatenate([np.tile(t["a_zero"], (t["a"].shape[1], 1))
                                           for t in tiles])
        fields["b_zero"] = np.concatenate([np.tile(t["b_zero"], (t["a"].shape[1], 1))
                                           for t in tiles])
    return fields


def input_beats(mac, tiles):
    """The input beats as dicts for ``ctx.set`` in Amaranth's simulator."""
    fields = input_fields(mac, tiles)
    return [{key: (value[n].tolist() if value.ndim > 1 else int(value[n]))
             for key, value in fields.items()} for n in range(len(fields["last"]))]


def expected_rows(mac, tiles, golden_overrides=None):
    """What the array must output: ``(data, first, last)``, one row per output beat."""
    kwargs = dict(acc_width=mac.acc_width, saturate=mac.saturate)
    kwargs.update(golden_overrides or {})
    data = np.concatenate([
        matmul_int(t["a"], t["b"], a_zero=t["a_zero"], b_zero=t["b_zero"], **kwargs)
        for t in tiles]).astype(np.int64)
    first = np.tile(np.arange(mac.rows) == 0, len(tiles)).astype(np.int64)
    last = np.tile(np.arange(mac.rows) == mac.rows - 1, len(tiles)).astype(np.int64)
    return data, first, last


def gemm_operands(mac, m, k, n, rng):
    """A random ``m x k`` by ``k x n`` GEMM for ``mac``'s operand types, with zero points
    per row of A and per column of B when ``runtime_zero``, else the array's scalar
    constants."""
    a_lo, a_hi = _range(mac.a_width, mac.a_signed)
    b_lo, b_hi = _range(mac.b_width, mac.b_signed)
    a = rng.integers(a_lo, a_hi + 1, size=(m, k))
    b = rng.integers(b_lo, b_hi + 1, size=(k, n))
    if mac.runtime_zero:
        a_zero = rng.integers(a_lo, a_hi + 1, size=m)
        b_zero = rng.integers(b_lo, b_hi + 1, size=n)
    else:
        if isinstance(mac.a_zero, tuple) or isinstance(mac.b_zero, tuple):
            raise ValueError("gemm: per-row/column constant zero points belong to array "
                             "rows/columns, not to a larger matrix; use scalar constants "
                             "or runtime_zero")
        a_zero = np.full(m, mac.a_zero)
        b_zero = np.full(n, mac.b_zero)
    return a, b, a_zero, b_zero


def tile_gemm(mac, a, b, a_zero, b_zero):
    """The host-side tiler: cut ``C = (A - a_zero)(B - b_zero)`` into array tiles.

    Tile ``(ti, tj)`` streams the whole K of rows ``ti*rows...`` of A and columns
    ``tj*cols...`` of B. Ragged edges are padded with operand = zero point, whose
    products are exactly 0, so padding never changes a sum (in wrap and in saturate
    mode); the padded outputs are dropped by :func:`untile_gemm`.
    """
    rows, cols = mac.rows, mac.cols
    m, n = a.shape[0], b.shape[1]
    tiles = []
    for ti in range(-(-m // rows)):
        r = slice(ti * rows, min(m, (ti + 1) * rows))
        pad_r = rows - (r.stop - r.start)
        ta = np.concatenate([a[r], np.repeat(np.full((1, a.shape[1]), a_zero[0]), pad_r, 0)])
        taz = np.concatenate([a_zero[r], np.full(pad_r, a_zero[0])])
        for tj in range(-(-n // cols)):
            c = slice(tj * cols, min(n, (tj + 1) * cols))
            pad_c = cols - (c.stop - c.start)
            tb = np.concatenate([b[:, c], np.repeat(np.full((b.shape[0], 1), b_zero[0]),
                                                    pad_c, 1)], axis=1)
            tbz = np.concatenate([b_zero[c], np.full(pad_c, b_zero[0])])
            tiles.append({"a": ta, "b": tb, "a_zero": taz, "b_zero": tbz, "kind": "random",
                          "at": (ti, tj)})
    return tiles


def untile_gemm(mac, tiles, data, m, n):
    """Reassemble the output rows of :func:`tile_gemm`'s tiles into the ``m x n`` C."""
    rows, cols = mac.rows, mac.cols
    c = np.zeros((-(-m // rows) * rows, -(-n // cols) * cols), dtype=np.int64)
    for index, tile in enumerate(tiles):
        ti, tj = tile["at"]
        c[ti * rows:(ti + 1) * rows, tj * cols:(tj + 1) * cols] = \
            data[index * rows:(index + 1) * rows]
    return c[:m, :n]


def _ks_for(mac, config):
    """The K of every tile: ``ks`` repeated ``tiles`` times, or by default K in
    {1, 2, rows, 100} cycled until ``vectors`` output elements are covered."""
    if "ks" in config:
        return list(config["ks"]) * int(config.get("tiles", 1))
    base = [1, 2, mac.rows, 100]
    per_tile = mac.rows * mac.cols
    count = max(len(base), -(-config["vectors"] // per_tile))
    return [base[n % len(base)] for n in range(count)]


def _shown(tiles, mac):
    """Per output row: the inputs a mismatch report names."""
    rows = mac.rows
    tile = np.repeat(np.arange(len(tiles)), rows)
    return {
        "tile": tile,
        "row": np.tile(np.arange(rows), len(tiles)),
        "K": np.repeat([t["a"].shape[1] for t in tiles], rows),
        "a_zero": np.concatenate([t["a_zero"] for t in tiles]),
        "b_zero": np.concatenate([np.tile(t["b_zero"], (rows, 1)) for t in tiles]),
        "kind_index": np.repeat([(*KINDS, "exhaustive").index(t["kind"]) for t in tiles],
                                rows),
    }


def tile_phase(mac, tiles, expected, golden_overrides=None, *, fields_of=input_fields,
               shown_of=None):
    """The phase that streams ``tiles`` through ``mac`` (a MAC array, or a block built on
    one): ``expected(mac, tiles, golden_overrides)`` gives ``(data, first, last)`` per
    output row, ``fields_of(mac, tiles)`` the input fields and ``shown_of(tiles, mac)``
    what a mismatch report names per output row (default: the integer array's). A reset
    cuts it once half the input is in and a row is out, so that it lands in the middle of
    a tile with rows already delivered to check."""
    fields = fields_of(mac, tiles)
    want, first, last = expected(mac, tiles, golden_overrides)
    shown = (shown_of or _shown)(tiles, mac)
    n_in, n_out = len(fields["last"]), len(want)
    checks = [Check(want, shown),
              Check(np.stack([first, last], axis=1), {"tile": shown["tile"]},
                    fields=("first", "last"), key="compared_flags", note="(first, last) ")]
    return Phase({"i": fields}, {"o": Expect(n_out, checks)}, timeout_beats=n_in + n_out,
                 reset_after={"i": n_in // 2, "o": 1})


class TileTraffic(Traffic):
    """Tiles of chosen K (or a tiled GEMM, ``gemm`` in the config) through the MAC array.

    The summary adds ``tiles`` and ``macs`` of the checked stream, ``phase_cycles``, and
    for a GEMM its utilization.
    """

    #: ``expected(component, tiles, overrides)``: ``(data, first, last)`` per output row.
    expected = staticmethod(expected_rows)
    #: ``make_tiles(component, ks, rng, kinds)``: the tiles of the given K.
    make_tiles = staticmethod(make_tiles)
    #: ``input_fields(component, tiles)``: the input payload fields.
    input_fields = staticmethod(input_fields)
    #: ``shown(tiles, component)``: the inputs a mismatch report names per output row.
    shown = staticmethod(_shown)
    #: The stimulus kinds cycled over the tiles by default.
    kinds = KINDS
    #: ``ks_for(component, config)``: the K of every tile.
    ks_for = staticmethod(_ks_for)
    #: ``exhaustive_tiles(component)``: the tiles of the exhaustive check.
    exhaustive_tiles = staticmethod(exhaustive_tiles)

    def __init__(self, bench):
        super().__init__(bench)
        config, mac = bench.config, bench.params
        self.name = config["block"]
        self.boards = {"compared": self.name, "compared_flags": f"{self.name} o.first/last"}
        self.drain_extra = mac.rows
        bench.summary.update(macs=0, tiles=0)
        self.gemm = None
        if "gemm" in config:
            if config["block"] != "mac-array":
                raise ValueError("gemm: the tiled GEMM bench checks the bare MAC array")
            self.gemm = gemm_operands(mac, *config["gemm"], bench.rng)
            self.tiles = tile_gemm(mac, *self.gemm)
        else:
            self.ks = self.ks_for(mac, config)

    def interrupted(self):
        if self.gemm is not None:
            return self._phase(self.tiles[:max(1, len(self.tiles) // 4)])
        ks = self.ks[:max(2, len(self.ks) // 4)]
        return self._phase(self.make_tiles(self.bench.params, ks, self.bench.rng,
                                           self._kinds()))

    def checked(self):
        if self.gemm is not None:
            tiles = self.tiles
        else:
            tiles = self.make_tiles(self.bench.params, self.ks, self.bench.rng, self._kinds())
        phase = self._phase(tiles)
        phase.label = "gemm: " if self.gemm is not None else ""
        phase.on_done = lambda result: self._done(tiles, result)
        return phase

    def exhaustive(self):
        tiles = self.exhaustive_tiles(self.bench.params)
        phase = self._phase(tiles)
        phase.label = "exhaustive: "
        phase.on_done = lambda result: self._done(tiles, result)
        return phase

    def _kinds(self):
        return tuple(self.bench.config.get("kinds", self.kinds))

    def _phase(self, tiles):
        return tile_phase(self.bench.params, tiles, self.expected,
                          self.bench.config.get("golden"), fields_of=self.input_fields,
                          shown_of=self.shown)

    def _done(self, tiles, result):
        mac, summary = self.bench.params, self.bench.summary
        summary["phase_cycles"] = result.cycles
        summary["macs"] += sum(t["a"].shape[1] for t in tiles) * mac.rows * mac.cols
        summary["tiles"] += len(tiles)
        if self.gemm is not None:
            self._reassemble(result.got["o"]["data"])

    def _reassemble(self, data):
        """The tiles were scored one by one; the reassembled product must also be the
        golden GEMM of the whole matrices."""
        mac, summary = self.bench.params, self.bench.summary
        a, b, a_zero, b_zero = self.gemm
        (m, k), n = a.shape, b.shape[1]
        want = matmul_int(a, b, a_zero=a_zero, b_zero=b_zero, acc_width=mac.acc_width,
                          saturate=mac.saturate)
        self.bench.boards["compared"].compare(
            untile_gemm(mac, self.tiles, data, m, n), want,
            {"row": np.arange(m), "a_zero": a_zero, "b_zero": np.tile(b_zero, (m, 1))},
            phase="gemm reassembled: ")
        macs_per_cycle = mac.rows * mac.cols * summary["phase_cycles"]
        summary.update(gemm=[m, k, n], utilization=summary["macs"] / macs_per_cycle,
                       useful_macs=m * k * n, useful_utilization=m * k * n / macs_per_cycle)


@cocotb.test()
async def test_mac_array(dut):
    await run_stream_bench(dut, TileTraffic)
