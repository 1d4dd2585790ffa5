"""cocotb bench of the blockwise absmax unit: the generated Verilog against
:func:`qdp.golden.absmax.blockwise_absmax`, every element, flag and scale compared exactly.

Traffic: tensors (packets closed by ``last``) made of blocks of random data, outlier-heavy
data (one huge value per block), all-zero blocks, all-equal blocks, blocks holding the most
negative value and tie-makers, some tensors ending in a short block. ``i`` gets random
valid gaps; ``o`` and ``scale`` get independent random backpressure. A first stream is cut
by a reset in the middle of a block (what came out before must be exact, and everything
after must be exact from the first block on, with the LFSRs restarted). A last stream of
full blocks runs with no gaps and no backpressure and measures the steady state: cycles
per block (ideal ``block_size / lanes``), input stalls, and the latency from a block's last
input beat to its first output beat.

Config (JSON, from :func:`qdp.sim.runner.run_bench`): ``block``, ``params``, ``vectors``
(elements, main stream), ``seed``, ``in_pause``, ``out_pause``, ``scale_pause``
(probabilities; ``scale_pause`` defaults to ``out_pause``), ``reset`` (bool),
``steady_blocks`` (blocks of the measuring stream, 0 to skip), ``golden`` (overrides for
the golden call: used to prove that a wrong golden fails).

The stimulus and expectation functions are plain Python, shared with the Amaranth-
simulator tests.
"""

import numpy as np

from ..golden.absmax import blockwise_absmax, stochastic_random
from .bench import bench_config, write_summary

__all__ = ["KINDS", "make_block", "make_packets", "input_fields", "expected", "test_absmax"]

KINDS = ("random", "outlier", "zeros", "equal", "most_negative", "ties")


def make_block(kind, size, in_width, rng):
    """``size`` int64 elements of one kind of block (see :data:`KINDS`)."""
    lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    if kind == "random":
        return rng.integers(lo, hi + 1, size=size)
    if kind == "outlier":
        small = max(1, 1 << (in_width // 4))
        x = rng.integers(-small, small + 1, size=size)
        x[rng.integers(size)] = rng.choice([lo, hi])
        return x
    if kind == "zeros":
        return np.zeros(size, dtype=np.int64)
    if kind == "equal":
        return np.full(size, rng.integers(lo, hi + 1))
    if kind == "most_negative":
        x = rng.integers(lo, hi + 1, size=size)
        x[rng.integers(size)] = lo
        return x
    if kind == "ties":
        # absmax 2 and |x| <= 2: qmax * x / 2 is a half-integer for every odd x.
        x = rng.integers(-2, 3, size=size)
        x[rng.integers(size)] = 2 * rng.choice([-1, 1])
        return np.clip(x, lo, hi)
    raise ValueError(f"kind: unknown block kind {kind!r}; expected one of {', '.join(KINDS)}")


def make_packets(unit, blocks, rng, *, short_tails=True, kinds=KINDS):
    """About ``blocks`` blocks of traffic for ``unit``, as tensors (packets) of 1..3 full
    blocks, half of them (when ``short_tails``) followed by a short block that ``last``
    closes. Returns a list of int64 arrays, each a whole number of beats."""
    b, lanes = unit.block_size, unit.lanes
    packets, remaining = [], blocks
    while remaining > 0:
        full = int(rng.integers(1, 4))
        remaining -= full
        parts = [make_block(rng.choice(kinds), b, unit.in_width, rng) for _ in range(full)]
        if short_tails and b > lanes and rng.random() < 0.5:
            tail = int(rng.integers(1, b // lanes)) * lanes
            parts.append(make_block(rng.choice(kinds), tail, unit.in_width, rng))
        packets.append(np.concatenate(parts).astype(np.int64))
    return packets


def input_fields(unit, packets):
    """The ``i`` payload fields: ``data`` (beats, lanes) and ``last`` (beats,)."""
    x = np.concatenate(packets).reshape(-1, unit.lanes)
    last = np.zeros(len(x), dtype=np.int64)
    last[np.cumsum([p.size // unit.lanes for p in packets]) - 1] = 1
    return {"data": x, "last": last}


def expected(unit, packets, golden_overrides=None, *, start_beat=0):
    """What the unit must emit for ``packets``, sent ``start_beat`` beats after a reset
    (which places them in the LFSR sequence of ``stochastic`` rounding).

    Returns a dict: ``data`` (beats, lanes), ``first`` and ``last`` (beats,), ``scale``
    (blocks,), and for reports ``x`` (beats, lanes), ``absmax`` and ``block`` (beats,),
    ``r`` (beats, lanes, stochastic only).
    """
    lanes, b = unit.lanes, unit.block_size
    kwargs = dict(in_width=unit.in_width, out_width=unit.out_width, rounding=unit.rounding)
    kwargs.update(golden_overrides or {})
    total = sum(p.size for p in packets)
    r_all = (stochastic_random(start_beat * lanes + total, lanes,
                               seed=unit.lfsr_seed)[start_beat * lanes:]
             if kwargs["rounding"] == "stochastic" else None)
    q_parts, scales, first, last, absmax_beat, block_beat = [], [], [], [], [], []
    at = 0
    for p in packets:
        r = None if r_all is None else r_all[at:at + p.size]
        at += p.size
        q, absmax = blockwise_absmax(p, b, random=r, **kwargs)
        q_parts.append(q)
        for k, a in enumerate(absmax.tolist()):
            n = min(b, p.size - k * b) // lanes
            first += [1] + [0] * (n - 1)
            last += [0] * (n - 1) + [1]
            absmax_beat += [a] * n
            block_beat += [len(scales)] * n
            scales.append(a)
    out = {
        "data": np.concatenate(q_parts).reshape(-1, lanes) if q_parts
        else np.zeros((0, lanes), dtype=np.int64),
        "first": np.array(first, dtype=np.int64),
        "last": np.array(last, dtype=np.int64),
        "scale": np.array(scales, dtype=np.int64),
        "x": np.concatenate(packets).reshape(-1, lanes) if packets
        else np.zeros((0, lanes), dtype=np.int64),
        "absmax": np.array(absmax_beat, dtype=np.int64),
        "block": np.array(block_beat, dtype=np.int64),
    }
    if r_all is not None:
        out["r"] = r_all.reshape(-1, lanes)
    return out


def _report_inputs(want, beats=None):
    keys = ("x", "absmax", "block", "r")
    return {k: want[k][:beats] for k in keys if k in want}


async def run_absmax_bench(dut, config):

    from ..hdl.absmax import BlockwiseAbsmax
    from .payload import pack, unpack
    from .scoreboard import Scoreboard
    from .stream import ClockedBench, pause_generator

    config.setdefault("scale_pause", config["out_pause"])
    config.setdefault("steady_blocks", 3)
    unit = BlockwiseAbsmax(**config["params"])
    unit._MustUse__silence = True       # the Verilog under test is its elaboration
    members = unit.signature.members
    in_layout = members["i"].signature.members["payload"].shape
    out_layout = members["o"].signature.members["payload"].shape
    lanes, beats_per_block = unit.lanes, unit.beats_per_block
    rng = np.random.default_rng(config["seed"])
    seed = config["seed"]

    bench, streams = await ClockedBench.start(
        dut, seed=seed, sources={"i": config["in_pause"]},
        sinks={"o": config["out_pause"], "scale": config["scale_pause"]})
    source, o_sink, s_sink = streams["i"], streams["o"], streams["scale"]
    data_board = Scoreboard("absmax o.data")
    frame_board = Scoreboard("absmax o.first/last")
    scale_board = Scoreboard("absmax scale")
    stamps = {"i": [], "o": [], "scale": []}
    summary = {"beats_in": 0, "beats_out": 0, "blocks_out": 0, "cycles": 0, "lanes": lanes,
               "beats_per_block": beats_per_block}

    async def step():
        counts = (source.accepted, o_sink.received, s_sink.received)
        await bench.step()
        for key, before, now in zip(("i", "o", "scale"), counts,
                                    (source.accepted, o_sink.received, s_sink.received)):
            if now > before:
                stamps[key].append(bench.cycles)

    async def run_until(done, limit):
        start = bench.cycles
        while not done():
            if bench.cycles - start > limit:
                raise TimeoutError(f"stream stalled: no completion after {limit} cycles "
                                   f"(in {source.accepted}, o {o_sink.received}, "
                                   f"scale {s_sink.received})")
            await step()

    def timeout(n_beats):
        stretch = 1 / max(1e-3, 1 - config["in_pause"]) / max(
            1e-3, 1 - max(config["out_pause"], config["scale_pause"]))
        return int(n_beats * stretch * 4) + 4 * unit.latency + 200

    def score(want, got_words, got_scales, label, beats=None, blocks=None):
        beats = len(want["data"]) if beats is None else beats
        blocks = len(want["scale"]) if blocks is None else blocks
        got = unpack(out_layout, got_words) if len(got_words) else None
        shown = _report_inputs(want, beats)
        if got is not None:
            data_board.compare(got["data"].reshape(-1, lanes), want["data"][:beats], shown,
                               phase=label)
            frame = np.stack([got["first"], got["last"]], axis=1)
            want_frame = np.stack([want["first"][:beats], want["last"][:beats]], axis=1)
            frame_board.compare(frame, want_frame, {"block": want["block"][:beats]},
                                phase=label + "(first, last) ")
        if len(got_scales):
            scale_board.compare(np.asarray(got_scales, dtype=object).astype(np.int64),
                                want["scale"][:blocks],
                                {"block": np.arange(blocks)}, phase=label)

    since_reset = [0]        # beats accepted since the last reset: the LFSR position

    async def phase(packets, *, label, interrupt=False):
        want = expected(unit, packets, config.get("golden"), start_beat=since_reset[0])
        fields = input_fields(unit, packets)
        n, n_blocks = len(fields["data"]), len(want["scale"])
        first_in, first_out, first_scale = source.accepted, o_sink.received, s_sink.received
        source.send(pack(in_layout, fields))
        if interrupt:
            # Reset halfway, inside a block: neither the cut nor the beat after it (which
            # may still be taken at the reset edge) starts a block, where blocks allow it.
            starts = set(np.flatnonzero(want["first"]).tolist())
            cut = max(1, n // 2)
            while cut < n - 1 and (cut in starts or
                                   (beats_per_block > 2 and cut + 1 in starts)):
                cut += 1
            await run_until(lambda: source.accepted - first_in >= cut, timeout(n))
            await bench.reset(dut.rst)
            got_words = o_sink.words[first_out:]
            got_scales = s_sink.words[first_scale:]
            accepted = source.accepted - first_in
            if len(got_words) > accepted:
                raise AssertionError(f"{label}{len(got_words)} beats out but only "
                                     f"{accepted} in")
            # Beats in flight at the reset are flushed; those that came out must be exact.
            score(want, got_words, got_scales, label, len(got_words), len(got_scales))
            summary["reset"] = {"beats_in": accepted, "beats_out": len(got_words),
                                "inside_block": accepted not in starts and accepted < n}
            since_reset[0] = 0
            return want
        await run_until(lambda: o_sink.received - first_out >= n and
                        s_sink.received - first_scale >= n_blocks, timeout(n))
        # Keep taking beats for a while: a duplicated beat or scale would show up here.
        o_sink.pause = pause_generator(0, 0)
        s_sink.pause = pause_generator(0, 0)
        for _ in range(2 * unit.latency + 8):
            await step()
        got_words = o_sink.words[first_out:]
        got_scales = s_sink.words[first_scale:]
        if (source.accepted - first_in, len(got_words), len(got_scales)) != (n, n, n_blocks):
            raise AssertionError(
                f"{label}{source.accepted - first_in} beats in, {len(got_words)} beats out, "
                f"{len(got_scales)} scales out; expected {n}, {n}, {n_blocks}")
        score(want, got_words, got_scales, label)
        since_reset[0] += n
        return want

    def blocks_for(elements):
        return max(2, -(-elements // unit.block_size))

    try:
        if config["reset"]:
            packets = make_packets(unit, blocks_for(config["vectors"] // 4), rng)
            await phase(packets, label="before reset: ", interrupt=True)
        packets = make_packets(unit, blocks_for(config["vectors"]), rng)
        await phase(packets, label="")
        if config["steady_blocks"]:
            source.pause = pause_generator(0, 0)
            o_sink.pause = pause_generator(0, 0)
            s_sink.pause = pause_generator(0, 0)
            for key in stamps:
                stamps[key].clear()
            blocks = [make_block(rng.choice(KINDS), unit.block_size, unit.in_width, rng)
                      for _ in range(config["steady_blocks"])]
            want = await phase([np.concatenate(blocks)], label="steady state: ")
            firsts = [c for c, f in zip(stamps["o"], want["first"]) if f]
            summary["steady"] = {
                "blocks": config["steady_blocks"],
                "ideal_cycles_per_block": beats_per_block,
                "cycles_per_block": sorted(set(np.diff(firsts).tolist())),
                "input_stall_cycles": int(stamps["i"][-1] - stamps["i"][0] + 1
                                          - len(stamps["i"])),
                "output_gap_cycles": int(stamps["o"][len(want["data"]) - 1] - stamps["o"][0]
                                         + 1 - len(want["data"])),
                "latency_cycles": int(firsts[0] - stamps["i"][beats_per_block - 1]),
                "latency_stated": unit.latency,
            }
    except Exception as error:
        write_summary({**summary, **_summary(data_board, frame_board, scale_board),
                       "error": f"{error!r}"})
        raise
    summary.update(_summary(data_board, frame_board, scale_board),
                   beats_in=source.accepted, beats_out=o_sink.received,
                   blocks_out=s_sink.received, cycles=bench.cycles)
    write_summary(summary)
    boards = (data_board, frame_board, scale_board)
    assert all(b.mismatches == 0 for b in boards), "\n".join(
        [f"{b.name}: {b.mismatches} of {b.compared} differ" for b in boards]
        + [r for b in boards for r in b.reports])


def _summary(data_board, frame_board, scale_board):
    boards = (data_board, frame_board, scale_board)
    return {
        "compared": data_board.compared,          # quantized elements
        "compared_flags": frame_board.compared,
        "compared_scales": scale_board.compared,
        "mismatches": sum(b.mismatches for b in boards),
        "reports": [r for b in boards for r in b.reports],
    }


try:
    import cocotb
except ImportError:         # plain-Python users of make_packets()/expected()
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def test_absmax(dut):
        await run_absmax_bench(dut, bench_config())
