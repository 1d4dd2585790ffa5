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
"""

import numpy as np

from .. import golden
from ..golden.mac_array import matmul_int
from .bench import bench_config, finish_bench, summary_on_error

__all__ = ["KINDS", "make_tiles", "input_fields", "input_beats", "expected_rows",
           "gemm_operands", "tile_gemm", "untile_gemm", "run_mac_bench", "test_mac_array"]

#: Stimulus kinds: uniform random, every operand at its minimum, every operand at its
#: maximum, minimum times maximum (mixed signs), and random with large zero points.
KINDS = ("random", "min", "max", "mixed", "zeros")


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
        "kind_index": np.repeat([KINDS.index(t["kind"]) for t in tiles], rows),
    }


def _timeout(beats, config):
    stretch = 1 / max(1e-3, 1 - config["in_pause"]) / max(1e-3, 1 - config["out_pause"])
    return int(beats * stretch * 4) + 200


async def run_mac_bench(dut, config, expected=None):
    """Drive tiles through the MAC array (or a block built on it) and score every output
    element.

    :func:`qdp.sim.bench.run_stream_bench` assumes one output beat per input beat; here
    ``K`` input beats make ``rows`` output beats, so this loop does the same job with the
    same endpoints, reset phase and scoreboard. ``expected(component, tiles, overrides)``
    gives ``(data, first, last)`` per output row (default :func:`expected_rows`); a
    component with an ``array`` attribute (the QLinear) takes its tiles from that array.
    """

    from ..blocks import get_block
    from .payload import pack, unpack
    from .scoreboard import Scoreboard
    from .stream import ClockedBench, pause_generator

    block = get_block(config["block"])
    component = block.build(**config["params"])
    mac = getattr(component, "array", component)
    expected = expected or expected_rows
    in_layout = component.signature.members["i"].signature.members["payload"].shape
    out_layout = component.signature.members["o"].signature.members["payload"].shape
    rng = np.random.default_rng(config["seed"])
    kinds = tuple(config.get("kinds", KINDS))

    bench, streams = await ClockedBench.start(dut, seed=config["seed"],
                                              sources={"i": config["in_pause"]},
                                              sinks={"o": config["out_pause"]})
    source, sink = streams["i"], streams["o"]
    scoreboard = Scoreboard(block.name)
    summary = {"beats_in": 0, "beats_out": 0, "cycles": 0, "lanes": component.lanes, "macs": 0,
               "tiles": 0}

    async def phase(tiles, *, interrupt, label):
        fields = input_fields(mac, tiles)
        want, first, last = expected(component, tiles, config.get("golden"))
        shown = _shown(tiles, mac)
        n_in, n_out = len(fields["last"]), len(want)
        first_in, first_out = source.accepted, sink.received
        start_cycle = bench.cycles
        source.send(pack(in_layout, fields))

        def score(words):
            if not words:
                return
            got = unpack(out_layout, words)
            data = got["data"].reshape(len(words), mac.cols)
            scoreboard.compare(data, want[:len(words)],
                               {k: v[:len(words)] for k, v in shown.items()},
                               phase=f"{label} ")
            flags = np.stack([got["first"], got["last"]], axis=1)
            want_flags = np.stack([first, last], axis=1)[:len(words)]
            bad = np.argwhere(flags != want_flags)
            if len(bad):
                beat, which = bad[0]
                raise AssertionError(f"{label} beat {beat}: {('first', 'last')[which]} flag "
                                     f"expected {want_flags[beat, which]} got "
                                     f"{flags[beat, which]}")

        if interrupt:
            # Half the input in and at least one row out, so the reset lands in the
            # middle of a tile with rows already delivered to check.
            await bench.run_until(lambda: source.accepted - first_in >= n_in // 2
                                  and sink.received > first_out,
                                  timeout=_timeout(n_in + n_out, config))
            await bench.reset(dut.rst)
            words = sink.words[first_out:]
            # Rows out before the reset are a prefix of the expected rows and exact; the
            # tile being accumulated and rows waiting in the shadow are dropped.
            if len(words) > n_out:
                raise AssertionError(f"{label} {len(words)} rows out, at most {n_out} due")
            score(words)
            return
        await bench.run_until(lambda: sink.received - first_out >= n_out,
                              timeout=_timeout(n_in + n_out, config))
        # From the first input beat offered to the last output beat taken.
        summary["phase_cycles"] = bench.cycles - start_cycle
        # Keep taking beats for a while: a duplicated row would show up here.
        sink.pause = pause_generator(0, 0)
        for _ in range(2 * component.latency + mac.rows + 8):
            await bench.step()
        words = sink.words[first_out:]
        if source.accepted - first_in != n_in or len(words) != n_out:
            raise AssertionError(f"{label} {source.accepted - first_in} beats in (of {n_in}), "
                                 f"{len(words)} rows out, {n_out} expected")
        score(words)
        summary["macs"] += sum(t["a"].shape[1] for t in tiles) * mac.rows * mac.cols
        summary["tiles"] += len(tiles)
        return unpack(out_layout, words)["data"].reshape(len(words), mac.cols)

    with summary_on_error(summary, scoreboard):
        if "gemm" in config:
            if component is not mac:
                raise ValueError("gemm: the tiled GEMM bench checks the bare MAC array")
            m, k, n = config["gemm"]
            a, b, a_zero, b_zero = gemm_operands(mac, m, k, n, rng)
            tiles = tile_gemm(mac, a, b, a_zero, b_zero)
            if config["reset"]:
                await phase(tiles[:max(1, len(tiles) // 4)], interrupt=True,
                            label="before reset:")
            data = await phase(tiles, interrupt=False, label="gemm:")
            # The tiles were scored one by one; the reassembled product must also be the
            # golden GEMM of the whole matrices.
            c = untile_gemm(mac, tiles, data, m, n)
            want = matmul_int(a, b, a_zero=a_zero, b_zero=b_zero, acc_width=mac.acc_width,
                              saturate=mac.saturate)
            scoreboard.compare(c, want, {"row": np.arange(m), "a_zero": a_zero,
                                         "b_zero": np.tile(b_zero, (m, 1))},
                               phase="gemm reassembled: ")
            summary["gemm"] = [m, k, n]
            summary["utilization"] = summary["macs"] / (mac.rows * mac.cols *
                                                        summary["phase_cycles"])
            summary["useful_macs"] = m * k * n
            summary["useful_utilization"] = m * k * n / (mac.rows * mac.cols *
                                                         summary["phase_cycles"])
        else:
            ks = _ks_for(mac, config)
            if config["reset"]:
                await phase(make_tiles(mac, ks[:max(2, len(ks) // 4)], rng, kinds),
                            interrupt=True, label="before reset:")
            await phase(make_tiles(mac, ks, rng, kinds), interrupt=False, label="")
    finish_bench(summary, scoreboard, source, sink, bench)


try:
    import cocotb
except ImportError:         # plain-Python users of make_tiles()/expected_rows()
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def test_mac_array(dut):
        await run_mac_bench(dut, bench_config())
