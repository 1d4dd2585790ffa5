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

:class:`AbsmaxTraffic` configures the bench engine (:mod:`qdp.sim.bench`) with that
traffic and two output streams: ``o`` (``data`` and the ``first``/``last`` flags, one beat
per input beat) and ``scale`` (one beat per block). The summary adds ``blocks_out``,
``beats_per_block``, ``reset`` (where the reset landed) and ``steady``.

The stimulus and expectation functions are plain Python, shared with the Amaranth-
simulator tests: they take a BlockwiseAbsmax or the parameters of the module's manifest.
"""

import cocotb
import numpy as np

from ..golden.absmax import block_constant, blockwise_absmax, stochastic_random
from ..golden.floats import float_format, round_scaled
from .bench import run_stream_bench
from .traffic import Check, Expect, Phase, Traffic, block_marks

__all__ = ["KINDS", "FLOAT_KINDS", "MORE_FLOAT_KINDS", "make_block", "make_float_block", "make_packets",
           "exhaustive_elements", "exhaustive_packets", "input_fields", "packet_blocks",
           "expected", "AbsmaxTraffic", "test_absmax"]

KINDS = ("random", "outlier", "zeros", "equal", "most_negative", "ties")
#: Kinds of float blocks (bit patterns): any finite pattern, similar magnitudes, exact
#: ties (formats of 8+ significand bits), ±0 and subnormals with an Inf or NaN, all
#: zeros, all equal.
FLOAT_KINDS = ("random", "narrow", "ties", "specials", "zeros", "equal")
#: Float blocks the block-format benches add: one huge outlier among small values, all
#: subnormal, the largest exponents.
MORE_FLOAT_KINDS = ("outlier", "subnormal", "huge")
#: Widest input an exhaustive check takes: every (x, absmax) pair of a 10-bit input.
EXHAUSTIVE_MAX_IN_WIDTH = 10


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


def make_float_block(kind, size, fmt, rng):
    """``size`` uint64 bit patterns of ``fmt`` of one kind (see :data:`FLOAT_KINDS` and
    :data:`MORE_FLOAT_KINDS`)."""
    fmt = float_format(fmt)
    top, m = (1 << fmt.exp_bits) - 1, fmt.man_bits
    sign = rng.integers(0, 2, size=size).astype(np.int64) << (fmt.width - 1)
    mantissa = rng.integers(0, 1 << m, size=size)
    if kind == "random":
        field = rng.integers(0, top, size=size)
    elif kind in ("narrow", "specials"):
        base = int(rng.integers(0, top))
        field = rng.integers(max(0, base - 3), base + 1, size=size)
    elif kind == "ties" and fmt.precision >= 8:
        # absmax 254 * 2**e, x = k * 2**e: qmax * x / absmax = k / 2 (qmax = 127).
        e = int(rng.integers(fmt.emin - fmt.man_bits, fmt.emax - 8))
        k = rng.integers(-254, 255, size=size)
        k[rng.integers(size)] = 254
        return round_scaled(k < 0, np.abs(k), np.full(size, e), fmt).astype(np.uint64)
    elif kind == "zeros":
        return sign.astype(np.uint64)
    elif kind in ("equal", "ties"):
        field, mantissa = np.full(size, rng.integers(0, top)), np.full(size, mantissa[0])
    elif kind == "outlier":
        field = rng.integers(1, max(2, top // 3), size=size)
        field[rng.integers(size)] = rng.integers(top // 2, top)
    elif kind == "subnormal":
        field = np.zeros(size, dtype=np.int64)
    elif kind == "huge":
        field = rng.integers(max(1, top - 3), top, size=size)
    else:
        raise ValueError(f"kind: unknown float block kind {kind!r}; expected one of "
                         f"{', '.join(FLOAT_KINDS + MORE_FLOAT_KINDS)}")
    bits = sign | (field.astype(np.int64) << m) | mantissa
    if kind == "specials":
        spots = rng.permutation(size)[:4]
        extra = [sign[0], 1, fmt.inf_bits, fmt.nan_bits | int(rng.integers(0, 2)) << (
            fmt.width - 1)]
        keep = min(size, int(rng.integers(2, 5)))  # neither, an Inf block, a NaN block
        bits[spots[:keep]] = extra[:keep]
    return bits.astype(np.uint64)


def _make(kind, size, unit, rng):
    if unit.in_format == "int":
        return make_block(kind, size, unit.in_width, rng).astype(np.int64)
    return make_float_block(kind, size, unit.in_format, rng)


def make_packets(unit, blocks, rng, *, short_tails=True, kinds=None, make=None):
    """About ``blocks`` blocks of traffic for ``unit``, as tensors (packets) of 1..3 full
    blocks, half of them (when ``short_tails``) followed by a short block that ``last``
    closes. ``make(kind, size, rng)`` makes a block of a kind (default: this module's
    integer or float blocks). Returns a list of arrays, each a whole number of beats."""
    b, lanes = unit.block_size, unit.lanes
    kinds = kinds or (KINDS if unit.in_format == "int" else FLOAT_KINDS)
    make = make or (lambda kind, size, rng: _make(kind, size, unit, rng))
    packets, remaining = [], blocks
    while remaining > 0:
        full = int(rng.integers(1, 4))
        remaining -= full
        parts = [make(rng.choice(kinds), b, rng) for _ in range(full)]
        if short_tails and b > lanes and rng.random() < 0.5:
            tail = int(rng.integers(1, b // lanes)) * lanes
            parts.append(make(rng.choice(kinds), tail, rng))
        packets.append(np.concatenate(parts))
    return packets


def _exhaustive_blocks(in_width, block_size):
    """Per absmax value a (0 .. 2**(in_width-1)): how many blocks hold every x in
    [-a, a] (one element of each block is the +-a that sets its absmax)."""
    top = 1 << (in_width - 1)
    if block_size == 1:                 # a block is its own absmax: every x once
        return [1 if a in (0, top) else 2 for a in range(top + 1)]
    return [-(-(2 * min(a, top - 1) + 1 + (a == top)) // (block_size - 1))
            for a in range(top + 1)]


def exhaustive_elements(unit):
    """Elements of :func:`exhaustive_packets`: ``ValueError`` above
    :data:`EXHAUSTIVE_MAX_IN_WIDTH` input bits or for float input."""
    if unit.in_format != "int":
        raise ValueError(f"exhaustive: in_format {unit.in_format}: exhaustive checks take "
                         f"integer input (float pairs are exhaustive in the golden tests)")
    if unit.in_width > EXHAUSTIVE_MAX_IN_WIDTH:
        raise ValueError(f"exhaustive: in_width {unit.in_width} has 2**{2 * unit.in_width - 1} "
                         f"(x, absmax) pairs; exhaustive checks take in_width <= "
                         f"{EXHAUSTIVE_MAX_IN_WIDTH}")
    return sum(_exhaustive_blocks(unit.in_width, unit.block_size)) * unit.block_size


def exhaustive_packets(unit, rng):
    """Every pair (x, absmax) the unit can see: for each absmax a, blocks holding every x
    with |x| <= a that fits the input (``-2**(in_width-1)`` for the largest a) and, at a
    random place in each block, an element +-a that makes a the block's absmax. One
    tensor per a."""
    exhaustive_elements(unit)
    lo, hi = -(1 << (unit.in_width - 1)), (1 << (unit.in_width - 1)) - 1
    b = unit.block_size
    packets = []
    for a, count in enumerate(_exhaustive_blocks(unit.in_width, b)):
        values = np.arange(max(-a, lo), min(a, hi) + 1, dtype=np.int64)
        rails = np.array(sorted({v for v in (a, -a) if lo <= v <= hi}), dtype=np.int64)
        if b == 1:
            packets.append(rails)
            continue
        fill = np.resize(values, (count, b - 1))
        peak = rng.choice(rails, size=(count, 1))
        blocks = rng.permuted(np.concatenate([peak, fill], axis=1), axis=1)
        packets.append(blocks.reshape(-1))
    return packets


def input_fields(unit, packets):
    """The ``i`` payload fields: ``data`` (beats, lanes) and ``last`` (beats,)."""
    x = np.concatenate(packets).reshape(-1, unit.lanes)
    last = np.zeros(len(x), dtype=np.int64)
    last[np.cumsum([p.size // unit.lanes for p in packets]) - 1] = 1
    return {"data": x, "last": last}


def packet_blocks(size, block_size):
    """The sizes of a packet's blocks: whole blocks, then the short one ``last`` closes."""
    return [block_size] * (size // block_size) + ([size % block_size] if size % block_size
                                                  else [])


def expected(unit, packets, golden_overrides=None, *, start_beat=0):
    """What the unit must emit for ``packets``, sent ``start_beat`` beats after a reset
    (which places them in the LFSR sequence of ``stochastic`` rounding).

    Returns a dict: ``data`` (beats, lanes), ``first`` and ``last`` (beats,), ``scale``
    (blocks,: the absmax; float32 model ``(blocks, 2)``: absmax and ``c``), and for reports ``x`` (beats, lanes), ``absmax`` and ``block`` (beats,),
    ``r`` (beats, lanes, stochastic only).
    """
    lanes, b = unit.lanes, unit.block_size
    model = getattr(unit, "model", "exact")
    kwargs = dict(in_width=unit.in_width, out_width=unit.out_width, rounding=unit.rounding,
                  in_format=unit.in_format, model=model)
    kwargs.update(golden_overrides or {})
    total = sum(p.size for p in packets)
    r_all = (stochastic_random(start_beat * lanes + total, lanes,
                               seed=unit.lfsr_seed)[start_beat * lanes:]
             if kwargs["rounding"] == "stochastic" else None)
    q_parts, scales, sizes = [], [], []
    at = 0
    for p in packets:
        r = None if r_all is None else r_all[at:at + p.size]
        at += p.size
        q, absmax = blockwise_absmax(p, b, random=r, **kwargs)
        q_parts.append(q)
        scales += absmax.tolist()
        sizes += packet_blocks(p.size, b)
    first, last, block = block_marks(np.asarray(sizes, dtype=np.int64) // lanes)
    scales = np.array(scales, dtype=np.int64)
    out = {
        "data": np.concatenate(q_parts).reshape(-1, lanes) if q_parts
        else np.zeros((0, lanes), dtype=np.int64),
        "first": first, "last": last, "scale": scales,
        "x": np.concatenate(packets).reshape(-1, lanes) if packets
        else np.zeros((0, lanes), dtype=np.int64),
        "absmax": scales[block], "block": block,
    }
    if r_all is not None:
        out["r"] = r_all.reshape(-1, lanes)
    if kwargs["model"] == "float32":
        absmax = out["scale"].astype(np.uint64)
        c = block_constant(absmax, in_format=kwargs["in_format"],
                           out_width=kwargs["out_width"]).astype(np.int64)
        out["scale"] = np.stack([out["scale"], c], axis=1).reshape(-1, 2)
    return out


class AbsmaxTraffic(Traffic):
    """Tensors of blocks; a reset inside a block; a last stream at full rate that measures
    the steady state.

    The bench of any unit built on :class:`qdp.hdl.block_store.BlockStore`: a subclass
    sets ``expected`` (as :func:`expected`), :attr:`kinds` and :meth:`make` for its own
    blocks."""

    expected = staticmethod(expected)

    boards = {"compared": "absmax o.data", "compared_flags": "absmax o.first/last",
              "compared_scales": "absmax scale"}
    sinks = {"o": "out_pause", "scale": "scale_pause"}
    counts = {"beats_in": "i", "beats_out": "o", "blocks_out": "scale"}

    def __init__(self, bench):
        super().__init__(bench)
        bench.config.setdefault("scale_pause", bench.config["out_pause"])
        bench.config.setdefault("steady_blocks", 3)
        self.beats_per_block = bench.params.block_size // bench.params.lanes
        bench.summary.update(blocks_out=0, beats_per_block=self.beats_per_block)

    @property
    def kinds(self):
        return KINDS if self.bench.params.in_format == "int" else FLOAT_KINDS

    def make(self, kind, size, rng):
        """One block of ``size`` elements of a kind of :attr:`kinds`."""
        return _make(kind, size, self.bench.params, rng)

    def _packets(self, elements):
        blocks = max(2, -(-elements // self.bench.params.block_size))
        return make_packets(self.bench.params, blocks, self.bench.rng, kinds=self.kinds,
                            make=self.make)

    def interrupted(self):
        phase, want = self._phase(self._packets(self.bench.config["vectors"] // 4))
        # Reset halfway, inside a block: neither the cut nor the beat after it (which may
        # still be taken at the reset edge) starts a block, where blocks allow it.
        n = len(want["data"])
        starts = set(np.flatnonzero(want["first"]).tolist())
        cut = max(1, n // 2)
        while cut < n - 1 and (cut in starts or
                               (self.beats_per_block > 2 and cut + 1 in starts)):
            cut += 1
        phase.reset_after = {"i": cut}
        phase.on_done = lambda result: self.bench.summary.update(reset={
            "beats_in": result.accepted["i"], "beats_out": result.received["o"],
            "inside_block": result.accepted["i"] not in starts and result.accepted["i"] < n})
        return phase

    def checked(self):
        return self._phase(self._packets(self.bench.config["vectors"]))[0]

    def exhaustive(self):
        phase = self._phase(exhaustive_packets(self.bench.params, self.bench.rng))[0]
        phase.label = "exhaustive: "
        return phase

    def more(self):
        p, count = self.bench.params, self.bench.config["steady_blocks"]
        if not count:
            return
        blocks = [self.make(self.bench.rng.choice(self.kinds), p.block_size, self.bench.rng)
                  for _ in range(count)]
        phase, want = self._phase([np.concatenate(blocks)])
        phase.label, phase.full_rate, phase.input_stamps = "steady state: ", True, True
        phase.on_done = lambda result: self._steady(want, result.stamps)
        yield phase

    def _phase(self, packets):
        """The phase that sends ``packets``, and its expectation (see :func:`expected`)."""
        p = self.bench.params
        want = self.expected(p, packets, self.bench.config.get("golden"),
                             start_beat=self.bench.since_reset)
        n, blocks = len(want["data"]), len(want["scale"])
        shown = {k: want[k] for k in ("x", "absmax", "block", "r") if k in want}
        flags = Check(np.stack([want["first"], want["last"]], axis=1), {"block": want["block"]},
                      fields=("first", "last"), key="compared_flags", note="(first, last) ")
        scale = Check(want["scale"], {"block": np.arange(blocks)},
                      fields=("absmax", "c") if want["scale"].ndim == 2 else ("value",),
                      key="compared_scales")
        outputs = {"o": Expect(n, [Check(want["data"], shown), flags], per_input=True),
                   "scale": Expect(blocks, [scale])}
        return Phase({"i": input_fields(p, packets)}, outputs, timeout_beats=n), want

    def _steady(self, want, stamps):
        """Cycles per block, input stalls, output gaps and latency of the full-rate stream."""
        firsts = [c for c, f in zip(stamps["o"], want["first"]) if f]
        n = len(want["data"])
        self.bench.summary["steady"] = {
            "blocks": self.bench.config["steady_blocks"],
            "ideal_cycles_per_block": self.beats_per_block,
            "cycles_per_block": sorted(set(np.diff(firsts).tolist())),
            "input_stall_cycles": int(stamps["i"][-1] - stamps["i"][0] + 1 - len(stamps["i"])),
            "output_gap_cycles": int(stamps["o"][n - 1] - stamps["o"][0] + 1 - n),
            "latency_cycles": int(firsts[0] - stamps["i"][self.beats_per_block - 1]),
            "latency_stated": self.bench.latency,
        }


@cocotb.test()
async def test_absmax(dut):
    await run_stream_bench(dut, AbsmaxTraffic)
