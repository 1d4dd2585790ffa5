"""The bulk driver (a Verilog harness plays and captures the streams) against the per-cycle
driver, and against blocks broken on purpose: both must catch what the other catches."""

import pytest
from amaranth.back import verilog
from hypothesis import given, settings, strategies as st

from qdp.blocks import get_block, manifest
from qdp.hdl import Quantizer
from qdp.sim.harness import harness
from qdp.sim.quantizer_tb import exhaustive_elements, exhaustive_stimulus, expected
from qdp.sim.memfile import read_words, write_words
from qdp.sim.payload import limbs_to_ints, ints_to_limbs
from qdp.sim.runner import run_bench

from _mutants import Mutant, drops_beat, payload_moves_while_stalled

SMALL = dict(in_width=12, mult_width=10, out_width=6)


def _mutant(block, params, fault, name):
    component = Mutant(get_block(block).build(**params), fault)
    return verilog.convert(component, name=name, emit_src=False), \
        manifest(block, component, name)


@pytest.mark.parametrize("driver", ["bulk", "cycle"])
def test_both_drivers_check_every_element_alike(simulator, driver, tmp_path):
    result = run_bench("quantizer", SMALL, simulator,
                       {"vectors": 3000, "seed": 3, "driver": driver}, workdir=tmp_path)
    assert result.passed, result.summary
    s = result.summary
    assert s["driver"] == driver
    # 3000 checked, and the stream that the reset cuts: some of its 750 in, fewer out.
    assert 3000 < s["beats_in"] < 3750
    assert 3000 < s["compared"] == s["beats_out"] < s["beats_in"]


# One configuration per block, as its own cocotb tests build it (the builds are shared).
PARITY = [
    ("absmax", dict(block_size=24, in_width=8), {"vectors": 3000}),
    ("mac-array", dict(rows=3, cols=5, acc_width=16, saturate=True),
     {"ks": [1, 2, 3, 100], "tiles": 3}),
    ("qlinear", dict(rows=1, cols=8, acc_width=16, saturate=True, bias=-20000, multiplier=255,
                     shift=16, zero_point=0, mult_width=8, rounding="floor",
                     saturation="sat_sym", quant_latency=2), {"ks": [1, 2, 1, 100], "tiles": 2}),
]


@pytest.mark.parametrize("block, params, config", PARITY, ids=[p[0] for p in PARITY])
def test_every_block_checks_the_same_beats_on_both_drivers(simulator, block, params, config,
                                                          tmp_path):
    """Same stimulus, no reset: every count but the cycles (each driver has its own gaps)
    is the same."""
    summaries = {}
    for driver in ("bulk", "cycle"):
        result = run_bench(block, params, simulator,
                           {**config, "seed": 4, "driver": driver, "reset": False},
                           workdir=tmp_path / driver)
        assert result.passed, (driver, result.summary)
        summaries[driver] = result.summary
    counts = [k for k in summaries["cycle"]
              if k.startswith(("compared", "beats_", "blocks_")) or k in ("macs", "tiles")]
    assert "compared" in counts and "beats_in" in counts
    assert {k: summaries["bulk"][k] for k in counts} == {k: summaries["cycle"][k] for k in counts}


@pytest.mark.parametrize("driver", ["bulk", "cycle"])
def test_a_payload_that_moves_while_stalled_is_caught(simulator, driver, tmp_path):
    exported = _mutant("quantizer", SMALL, payload_moves_while_stalled("o"), "stall_mutant")
    result = run_bench("quantizer", SMALL, simulator, {"vectors": 500, "driver": driver},
                       workdir=tmp_path, exported=exported)
    assert not result.passed
    assert "payload changed while stalled" in result.summary["error"], result.summary


@pytest.mark.parametrize("driver", ["bulk", "cycle"])
def test_a_dropped_beat_is_caught(simulator, driver, tmp_path):
    exported = _mutant("quantizer", SMALL, drops_beat("o", 700), "drop_mutant")
    result = run_bench("quantizer", SMALL, simulator,
                       {"vectors": 1000, "driver": driver, "reset": False},
                       workdir=tmp_path, exported=exported)
    assert not result.passed
    assert "stream stalled" in result.summary["error"], result.summary
    assert "(beats so far: i 1000, o 999)" in result.summary["error"]
    assert (result.summary["beats_in"], result.summary["beats_out"]) == (1000, 999)


def test_memory_depth_does_not_cut_the_stream(simulator, tmp_path):
    """Streams many times the harness memories (refills and dumps in the middle of a
    block, with backpressure) arrive whole: the absmax unit's blocks straddle them."""
    result = run_bench("absmax", dict(block_size=24, in_width=8), simulator,
                       {"vectors": 50_000, "seed": 9}, workdir=tmp_path)
    assert result.passed, result.summary
    assert result.summary["compared"] >= 50_000


def test_the_harness_refuses_a_depth_that_is_not_a_power_of_two():
    _, m = _mutant("quantizer", SMALL, drops_beat("o", 1), "depth_check")
    with pytest.raises(ValueError, match="depth: 1000 is not a power of two"):
        harness(m, 1000)


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 200), data=st.data())
def test_memory_files_round_trip(tmp_path_factory, width, data):
    words = data.draw(st.lists(st.integers(0, (1 << width) - 1), min_size=1, max_size=40))
    limbs = ints_to_limbs(words, -(-width // 64))
    path = tmp_path_factory.mktemp("mem") / "w.hex"
    write_words(path, limbs, width)
    text = path.read_text().split()
    assert text == [f"{w:0{-(-width // 4)}x}" for w in words]      # what $readmemh reads
    assert list(limbs_to_ints(read_words(path, width))) == words


def test_icarus_address_comments_are_skipped_and_unknown_bits_refused(tmp_path):
    path = tmp_path / "w.hex"
    path.write_text("// 0x00000000\n0a\nff\n// 0x00000002\n10\n")
    assert list(limbs_to_ints(read_words(path, 8))) == [10, 255, 16]
    path.write_text("0a\nx1\n")
    with pytest.raises(ValueError, match="word 1 is 'x1'"):
        read_words(path, 8)


def test_exhaustive_quantizer_checks_every_input(simulator, tmp_path):
    """Every 12-bit input, for each of the four run-time scales."""
    result = run_bench("quantizer", SMALL, simulator,
                       {"exhaustive": True, "reset": False}, workdir=tmp_path)
    assert result.passed, result.summary
    assert result.summary["compared"] == 4 * 4096


def test_exhaustive_absmax_checks_every_pair(simulator, tmp_path):
    """Every (x, absmax) pair of an 8-bit input, blocks of 24."""
    result = run_bench("absmax", dict(block_size=24, in_width=8), simulator,
                       {"exhaustive": True, "reset": False}, workdir=tmp_path)
    assert result.passed, result.summary
    assert result.summary["exhaustive"] == 18_864


def test_exhaustive_mac_array_checks_every_operand_pair(simulator, tmp_path):
    """Every (a, b) pair of int8 operands, one product per output element of a 2x2 array."""
    result = run_bench("mac-array", dict(rows=2, cols=2), simulator,
                       {"exhaustive": True, "reset": False}, workdir=tmp_path)
    assert result.passed, result.summary
    assert result.summary["exhaustive"] == result.summary["compared"] == 65_536


@pytest.mark.parametrize("driver", ["bulk", "cycle"])
def test_a_reset_before_any_output_leaves_nothing_to_score(simulator, driver, tmp_path):
    """Ten vectors: the reset cuts the first stream before its first output (latency 10)."""
    result = run_bench("quantizer", {"latency": 10}, simulator,
                       {"vectors": 10, "driver": driver}, workdir=tmp_path)
    assert result.passed, result.summary
    assert result.summary["compared"] >= 10


@pytest.mark.parametrize("params", [
    dict(in_width=8, lanes=3, per_lane=True, runtime_scale=False, multiplier=[3, 5, 7],
         shift=[2, 3, 4], zero_point=[0, 1, -1]),
    dict(in_width=8, lanes=3, runtime_scale=False, multiplier=3, shift=2),
    dict(in_width=6, lanes=2, per_lane=True),
    dict(in_width=10, tflite="double"),
])
def test_exhaustive_quantizer_stimulus_covers_every_input_per_lane(params):
    q = Quantizer(**params)
    q._MustUse__silence = True
    fields, scale = exhaustive_stimulus(q)
    want = expected(q, fields, scale)
    assert want.size == exhaustive_elements(q)
    sets = len(fields["data"]) >> q.in_width
    for lane in range(q.lanes):
        column = fields["data"][:, lane].reshape(sets, -1)
        assert all(len(set(row.tolist())) == 1 << q.in_width for row in column)
