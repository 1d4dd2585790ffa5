"""BlockwiseAbsmax in Amaranth's simulator against the golden model, bit for bit."""

import numpy as np
import pytest
from amaranth import ClockDomain, Module, Value
from amaranth.sim import Simulator

from qdp.hdl.absmax import BlockwiseAbsmax
from qdp.sim.absmax_tb import KINDS, expected, make_block, make_packets


# -- bench ---------------------------------------------------------------------------------

def pack_input(dut, lanes_values, last):
    width = dut.element_width
    word = 0
    for lane, v in enumerate(lanes_values):
        word |= (int(v) & ((1 << width) - 1)) << (lane * width)
    return word | (int(last) << (dut.lanes * width))


def unpack_output(dut, word):
    ow, lanes = dut.out_width, dut.lanes
    values = []
    for lane in range(lanes):
        v = (word >> (lane * ow)) & ((1 << ow) - 1)
        values.append(v - (1 << ow) if v >> (ow - 1) else v)
    return tuple(values), bool(word >> (lanes * ow) & 1), bool(word >> (lanes * ow + 1) & 1)


class Bench:
    """One cycle-stepped testbench driving `i` and both output streams.

    Input beats go out with random gaps (probability `gap` of idling per cycle while no
    beat is offered; an offered beat is held until accepted); `o` and `scale` are ready
    with independent probabilities. Every handshake is recorded with its cycle number.
    """

    def __init__(self, dut, *, gap=0.0, o_ready=1.0, scale_ready=1.0, seed=0):
        self.dut = dut
        self.gap, self.o_ready, self.scale_ready = gap, o_ready, scale_ready
        self.rng = np.random.default_rng(seed)
        self.m = Module()
        self.m.domains.sync = self.cd = ClockDomain()
        self.m.submodules.dut = dut

    def words(self, packets):
        out = []
        for p in packets:
            rows = p.reshape(-1, self.dut.lanes)
            out += [pack_input(self.dut, row, k == len(rows) - 1)
                    for k, row in enumerate(rows)]
        return out

    def run(self, phases, *, max_cycles=200_000):
        """`phases`: list of (packets, reset_after) where reset_after is None or the number
        of cycles to run before pulsing reset (and starting the next phase). Returns the
        records of the last phase."""
        dut = self.dut
        result = {}

        async def testbench(ctx):
            cycle = 0
            for packets, reset_after in phases:
                words = self.words(packets)
                n_beats = len(words)
                n_blocks = sum(-(-p.size // dut.block_size) for p in packets)
                idx, offered = 0, False
                rec = dict(i=[], o=[], scale=[], i_ready_low=[])
                start = cycle
                while True:
                    if reset_after is None:
                        if len(rec["o"]) >= n_beats and len(rec["scale"]) >= n_blocks:
                            break
                    elif cycle - start >= reset_after:
                        break
                    assert cycle - start < max_cycles, "timeout: the unit stopped"
                    if not offered and idx < n_beats and self.rng.random() >= self.gap:
                        offered = True
                        ctx.set(dut.i.payload.as_value(), words[idx])
                    ctx.set(dut.i.valid, offered)
                    o_r = bool(self.rng.random() < self.o_ready)
                    s_r = bool(self.rng.random() < self.scale_ready)
                    ctx.set(dut.o.ready, o_r)
                    ctx.set(dut.scale.ready, s_r)
                    _, _, i_ready, o_valid, o_word, s_valid, s_word = await ctx.tick().sample(
                        dut.i.ready, dut.o.valid, dut.o.payload.as_value(),
                        dut.scale.valid, Value.cast(dut.scale.payload))
                    if offered and i_ready:
                        rec["i"].append(cycle - start)
                        idx, offered = idx + 1, False
                    if not i_ready:
                        rec["i_ready_low"].append(cycle - start)
                    if o_valid and o_r:
                        rec["o"].append((cycle - start, unpack_output(dut, o_word)))
                    if s_valid and s_r:
                        rec["scale"].append((cycle - start, s_word))
                    cycle += 1
                if reset_after is not None:
                    ctx.set(dut.i.valid, 0)
                    ctx.set(self.cd.rst, 1)
                    await ctx.tick()
                    ctx.set(self.cd.rst, 0)
                    cycle += 1
                result.update(rec)

        sim = Simulator(self.m)
        sim.add_clock(1e-8)
        sim.add_testbench(testbench)
        sim.run()
        return result


def check(dut, packets, rec):
    want = expected(dut, packets)
    beats = [(tuple(d), bool(f), bool(l))
             for d, f, l in zip(want["data"].tolist(), want["first"], want["last"])]
    got = [beat for _, beat in rec["o"]]
    assert len(got) == len(beats), f"{len(got)} output beats, expected {len(beats)}"
    for n, (g, e) in enumerate(zip(got, beats)):
        if g != e:
            lane = next((k for k in range(dut.lanes) if g[0][k] != e[0][k]), None)
            raise AssertionError(
                f"beat {n} lane {lane}: x={want['x'][n].tolist()} "
                f"absmax={want['absmax'][n]}: expected {e}, got {g} "
                f"(block_size={dut.block_size} lanes={dut.lanes} rounding={dut.rounding})")
    scales = want["scale"]
    if scales.ndim == 2:        # float32 model: absmax and c, packed as on the port
        scales = scales[:, 0] | scales[:, 1] << dut.element_width
    assert [s for _, s in rec["scale"]] == scales.tolist()


# -- conformance ---------------------------------------------------------------------------

CONFIGS = [
    # block_size, lanes, in_width, out_width, rounding
    (1, 1, 8, 8, "half_even"),
    (3, 1, 6, 5, "half_away"),
    (4, 4, 16, 8, "half_even"),
    (12, 4, 8, 8, "stochastic"),
    (64, 4, 32, 8, "half_up"),
    (64, 1, 12, 8, "trunc"),
    (16, 16, 8, 3, "half_zero"),
    (48, 16, 16, 8, "floor"),
    (8, 2, 2, 2, "half_down"),
    (6, 2, 5, 8, "stochastic"),
]


@pytest.mark.parametrize("block_size, lanes, in_width, out_width, rounding", CONFIGS)
def test_matches_golden_with_gaps_and_backpressure(block_size, lanes, in_width, out_width,
                                                   rounding):
    pipeline = CONFIGS.index((block_size, lanes, in_width, out_width, rounding)) % 4
    dut = BlockwiseAbsmax(block_size, lanes=lanes, in_width=in_width, out_width=out_width,
                          rounding=rounding, lfsr_seed=0xC0FFEE, pipeline=pipeline)
    rng = np.random.default_rng(block_size * 131 + lanes)
    blocks = max(6, min(40, 320 // (block_size // lanes)))
    packets = make_packets(dut, blocks, rng)
    rec = Bench(dut, gap=0.3, o_ready=0.6, scale_ready=0.5, seed=lanes).run([(packets, None)])
    check(dut, packets, rec)


@pytest.mark.parametrize("o_ready, scale_ready", [(1.0, 0.1), (0.1, 1.0), (0.9, 0.9)])
def test_independent_backpressure(o_ready, scale_ready):
    dut = BlockwiseAbsmax(8, lanes=2, in_width=10, rounding="half_even")
    rng = np.random.default_rng(7)
    packets = make_packets(dut, 30, rng, short_tails=False)
    rec = Bench(dut, gap=0.0, o_ready=o_ready, scale_ready=scale_ready, seed=3).run(
        [(packets, None)])
    check(dut, packets, rec)


@pytest.mark.parametrize("rounding", ("half_even", "stochastic"))
def test_reset_in_the_middle_of_a_block(rounding):
    dut = BlockwiseAbsmax(16, lanes=4, in_width=8, rounding=rounding, lfsr_seed=5)
    rng = np.random.default_rng(11)
    before = make_packets(dut, 6, rng)
    after = make_packets(dut, 6, rng)
    # 37 cycles: blocks complete, some draining, the next one half written.
    rec = Bench(dut, gap=0.2, o_ready=0.7, scale_ready=0.7, seed=2).run(
        [(before, 37), (after, None)])
    check(dut, after, rec)


# -- throughput and latency ----------------------------------------------------------------

@pytest.mark.parametrize("block_size, lanes, rounding, pipeline", [
    (1, 1, "half_even", 2), (1, 1, "floor", 0), (4, 4, "half_even", 1), (12, 4, "floor", 2),
    (64, 1, "half_even", 2), (64, 1, "half_away", 0), (64, 16, "stochastic", 2),
    (256, 4, "trunc", 1), (64, 4, "half_even", 3),
])
def test_steady_state_is_block_size_over_lanes(block_size, lanes, rounding, pipeline):
    dut = BlockwiseAbsmax(block_size, lanes=lanes, in_width=8, rounding=rounding,
                          pipeline=pipeline)
    rng = np.random.default_rng(1)
    blocks = max(8, 64 // dut.beats_per_block)
    x = np.concatenate([make_block(rng.choice(KINDS), block_size, 8, rng)
                        for _ in range(blocks)])
    packets = [x]
    rec = Bench(dut).run([(packets, None)])
    check(dut, packets, rec)
    # the input never waits and the output never pauses once it has started
    assert rec["i"] == list(range(len(rec["i"])))
    o_cycles = [c for c, _ in rec["o"]]
    assert o_cycles == list(range(o_cycles[0], o_cycles[0] + len(o_cycles)))
    firsts = [c for c, (_, first, _) in rec["o"] if first]
    assert set(np.diff(firsts).tolist()) <= {dut.beats_per_block}
    # latency: last input beat of block 0 -> its first output beat
    assert firsts[0] - rec["i"][dut.beats_per_block - 1] == dut.latency
    assert dut.throughput == 1


@pytest.mark.parametrize("pipeline", [0, 1, 2, 3])
def test_latency_of_a_lone_block(pipeline):
    for rounding, extra in (("floor", 0), ("half_even", 1), ("stochastic", 32)):
        dut = BlockwiseAbsmax(8, lanes=2, in_width=8, out_width=6, rounding=rounding,
                              pipeline=pipeline)
        assert dut.latency == 6 + extra + 5 + pipeline
        packets = [np.arange(-4, 4)]
        rec = Bench(dut).run([(packets, None)])
        check(dut, packets, rec)
        assert rec["o"][0][0] - rec["i"][-1] == dut.latency


def test_short_blocks_back_to_back():
    """A stream of short packets (each closed by `last`) loses nothing and stays exact."""
    dut = BlockwiseAbsmax(32, lanes=4, in_width=8, rounding="half_away")
    rng = np.random.default_rng(3)
    packets = [make_block(rng.choice(KINDS), 4 * int(rng.integers(1, 9)), 8, rng)
               for _ in range(20)]
    rec = Bench(dut, gap=0.1, o_ready=0.8, scale_ready=0.8, seed=9).run([(packets, None)])
    check(dut, packets, rec)


# -- parameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, exc, words", [
    ((6,), dict(lanes=4), ValueError,
     ("block_size", "6", "multiple of lanes=4", "4 to 65536")),
    ((0,), dict(), ValueError, ("block_size", "0")),
    ((65537,), dict(), ValueError, ("block_size", "65537", "65536")),
    ((2,), dict(lanes=4), ValueError, ("block_size", "2")),
    (("64",), dict(), TypeError, ("block_size", "'64'")),
    ((64,), dict(out_width=1), ValueError, ("out_width", "1", "2..8")),
    ((64,), dict(out_width=9), ValueError, ("out_width", "9", "2..8")),
    ((64,), dict(in_width=1), ValueError, ("in_width", "1", "2..32")),
    ((64,), dict(in_width=33), ValueError, ("in_width", "33", "2..32")),
    ((64,), dict(lanes=0), ValueError, ("lanes", "0", "1..16")),
    ((64,), dict(lanes=17), ValueError, ("lanes", "17", "1..16")),
    ((64,), dict(lanes=2.0), TypeError, ("lanes", "2.0")),
    ((64,), dict(lanes=True), TypeError, ("lanes", "True")),
    ((64,), dict(rounding="nearest"), ValueError, ("rounding", "'nearest'", "half_even")),
    ((64,), dict(rounding=3), ValueError, ("rounding", "3", "half_even")),
    ((64,), dict(lfsr_seed=-1), ValueError, ("lfsr_seed", "-1")),
    ((64,), dict(lfsr_seed=1 << 32), ValueError, ("lfsr_seed", str(1 << 32))),
    ((64,), dict(pipeline=4), ValueError, ("pipeline", "4", "0..3")),
    ((64,), dict(pipeline=-1), ValueError, ("pipeline", "-1", "0..3")),
    ((64,), dict(pipeline=None), TypeError, ("pipeline", "None")),
])
def test_bad_parameters(args, kwargs, exc, words):
    with pytest.raises(exc) as info:
        BlockwiseAbsmax(*args, **kwargs)
    message = str(info.value)
    assert message.startswith(words[0] + ":")
    for word in words[1:]:
        assert word in message


def test_attributes():
    dut = BlockwiseAbsmax(4096, lanes=16, in_width=16, out_width=8)
    dut._MustUse__silence = True        # only inspected, never elaborated
    assert dut.beats_per_block == 256
    assert dut.storage_bits == 4096 * 16
    assert (dut.latency, dut.throughput, dut.pipeline) == (16, 1, 2)
    assert dut.signature.members["scale"].signature.members["payload"].shape.width == 16


@pytest.mark.parametrize("x, absmax, r, q", [
    (1, 4, (1 << 30) - 1, 31), (1, 4, 1 << 30, 32),           # v = 31.75, dyadic fraction
    (1, 3, 2863311530, 42), (1, 3, 2863311531, 43),           # v = 42 + 1/3
    (-1, 3, 1431655765, -43), (-1, 3, 1431655766, -42),       # v = -42 - 1/3
])
def test_stochastic_carry_threshold(x, absmax, r, q):
    """floor(v + r / 2**32) exactly at the threshold: lane 0's first r is the seed."""
    dut = BlockwiseAbsmax(2, lanes=1, in_width=4, rounding="stochastic", lfsr_seed=r)
    packets = [np.array([x, absmax])]
    rec = Bench(dut).run([(packets, None)])
    check(dut, packets, rec)
    assert rec["o"][0][1][0] == (q,)


@pytest.mark.parametrize("pipeline", [0, 3])
@pytest.mark.parametrize("gap, o_ready", [(0.0, 1.0), (0.3, 0.7)])
def test_one_row_blocks(pipeline, gap, o_ready):
    """Blocks of one beat (a `last` on a block's first beat, or block_size = lanes) are
    read in the cycle their delayed write lands: exact with and without stalls."""
    rng = np.random.default_rng(11)
    dut = BlockwiseAbsmax(16, lanes=2, in_width=8, pipeline=pipeline)
    packets = [make_block(rng.choice(KINDS), 2 * int(rng.choice([1, 1, 2, 8])), 8, rng)
               for _ in range(60)]
    rec = Bench(dut, gap=gap, o_ready=o_ready, scale_ready=o_ready, seed=4).run(
        [(packets, None)])
    check(dut, packets, rec)
    dut = BlockwiseAbsmax(2, lanes=2, in_width=8, pipeline=pipeline)
    rec = Bench(dut, gap=gap, o_ready=o_ready, seed=5).run([(packets, None)])
    check(dut, packets, rec)


# -- float input ---------------------------------------------------------------------------

@pytest.mark.parametrize("in_format, block_size, lanes, out_width, rounding, pipeline, model", [
    ("fp32", 8, 2, 8, "half_even", 2, "exact"),
    ("bf16", 4, 4, 8, "floor", 0, "exact"),
    ("fp16", 6, 2, 5, "stochastic", 1, "exact"),
    ("e3m3", 3, 1, 4, "half_away", 3, "exact"),
    ("e4m3", 16, 4, 8, "trunc", 2, "exact"),
    ("fp32", 8, 2, 8, "half_even", 2, "float32"),
    ("bf16", 1, 1, 8, "half_even", 3, "float32"),
    ("fp16", 6, 3, 4, "half_even", 0, "float32"),
    ("e3m3", 4, 2, 8, "half_even", 2, "float32"),
])
def test_float_input_matches_golden(in_format, block_size, lanes, out_width, rounding,
                                    pipeline, model):
    dut = BlockwiseAbsmax(block_size, lanes=lanes, in_format=in_format, out_width=out_width,
                          rounding=rounding, lfsr_seed=0xBEEF, pipeline=pipeline,
                          model=model)
    rng = np.random.default_rng(block_size * 7 + lanes)
    packets = make_packets(dut, max(12, 200 // (block_size // lanes)), rng)
    rec = Bench(dut, gap=0.3, o_ready=0.6, scale_ready=0.5, seed=lanes).run([(packets, None)])
    check(dut, packets, rec)


@pytest.mark.parametrize("model, rounding", [("exact", "half_even"), ("exact", "floor"),
                                             ("float32", "half_even")])
def test_float_input_every_pair_of_a_small_format(model, rounding):
    """Every (x, absmax) pair of e3m3 into 4-bit integers, Inf and NaN included: blocks of
    two, the absmax pattern and an element of at most its magnitude, either sign."""
    dut = BlockwiseAbsmax(2, lanes=2, in_format="e3m3", out_width=4, rounding=rounding,
                          model=model, pipeline=0)
    sign = 1 << 6
    pairs = [(a | sa, x | sx) for a in range(sign) for x in range(a + 1)
             for sa in (0, sign) for sx in (0, sign)]
    packets = [np.array(pairs, dtype=np.uint64).reshape(-1)]
    rec = Bench(dut, gap=0.1, o_ready=0.9, seed=2).run([(packets, None)])
    check(dut, packets, rec)
    assert len(rec["o"]) == len(pairs) == 4 * 64 * 65 // 2
