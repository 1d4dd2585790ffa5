"""Every block as AXI4-Stream IP (:class:`qdp.hdl.axis.AxiStreamWrapper`): the port names
the Vivado IP packager infers interfaces from, the TDATA layout the manifest records, the
refusal of a TDATA over 4096 bits, and the bench (cocotbext-axi sources and sinks with
random pauses on both sides, ``aresetn`` low mid-stream, every beat counted and compared
with the golden model) on both simulators.
"""

import importlib.util
import json
import re

import pytest
from amaranth.back import verilog

from qdp.blocks import BLOCKS, generate, get_block
from qdp.build_scripts.cli import main
from qdp.hdl import AxiStreamWrapper, BlockwiseAbsmax, Quantizer
from qdp.hdl.axis import MAX_TDATA_WIDTH, axis_streams
from qdp.sim.runner import run_bench

from conftest import assert_bit_exact, require, require_simulator

STREAM = ("tdata", "tvalid", "tready", "tlast")

#: Per block: its AXI4-Stream ports beyond aclk/aresetn, {port: direction}.
PORTS = {
    "quantizer": {**{f"s_axis_i_{s}": "input" for s in STREAM}, "s_axis_i_tready": "output",
                  **{f"m_axis_o_{s}": "output" for s in STREAM}, "m_axis_o_tready": "input"},
    "absmax": {**{f"s_axis_i_{s}": "input" for s in STREAM}, "s_axis_i_tready": "output",
               **{f"m_axis_o_{s}": "output" for s in STREAM + ("tuser",)},
               "m_axis_o_tready": "input",
               **{f"m_axis_scale_{s}": "output" for s in STREAM},
               "m_axis_scale_tready": "input"},
    "mac-array": {**{f"s_axis_i_{s}": "input" for s in STREAM}, "s_axis_i_tready": "output",
                  **{f"m_axis_o_{s}": "output" for s in STREAM + ("tuser",)},
                  "m_axis_o_tready": "input"},
}
PORTS["qlinear"] = PORTS["mac-array"]


def _unused(*components):
    """Components built only to read their signatures: no "never elaborated" warning."""
    for component in components:
        component._MustUse__silence = True
    return components[-1]


def _verilog_ports(text, module):
    """``{port: direction}`` of ``module`` in Verilog ``text``."""
    body = re.search(rf"^module {module}\(.*?^endmodule", text, re.S | re.M).group(0)
    return {name: direction for direction, name in
            re.findall(r"^\s*(input|output)\s+(?:\[\d+:0\]\s+)?(\w+);", body, re.M)}


@pytest.mark.parametrize("block", sorted(PORTS))
def test_port_names_are_the_axi4_stream_ones(block):
    text, manifest = generate(block, {}, interface="axis")
    want = {"aclk": "input", "aresetn": "input", **PORTS[block]}
    assert _verilog_ports(text, manifest["module"]) == want
    assert {p["name"]: p["direction"] for p in manifest["ports"]} == want
    assert manifest["module"].endswith("_axis") and manifest["interface"] == "axis"
    block_component = get_block(block).build()
    component = _unused(block_component, AxiStreamWrapper(block_component))
    assert {name: ("input" if m.flow.name == "In" else "output")
            for name, m in component.signature.members.items()} == want


def test_every_block_has_an_axis_form():
    """Nothing per block: the wrapper takes every registered block at its defaults."""
    for block in BLOCKS:
        text, manifest = generate(block, {}, interface="axis")
        names = {p["name"] for p in manifest["ports"]}
        assert {"aclk", "aresetn"} <= names and not {"clk", "rst"} & names, block
        assert set(_verilog_ports(text, manifest["module"])) == names, block


def test_the_default_interface_stays_amaranth():
    text, manifest = generate("quantizer", {})
    assert manifest["interface"] == "amaranth" and "axis" not in manifest
    assert {"clk", "rst", "i__payload", "o__ready"} <= set(_verilog_ports(text,
                                                                         manifest["module"]))
    assert not manifest["module"].endswith("_axis")
    with pytest.raises(ValueError, match=r"interface: 'axi' is not one of amaranth, axis"):
        generate("quantizer", {}, interface="axi")


def test_tdata_layout_and_flags_in_the_manifest():
    """Flags leave TDATA for TLAST/TUSER; the other fields close up in payload order, lane
    0 lowest, padded to bytes."""
    _, manifest = generate("quantizer", {"lanes": 2, "in_width": 12}, interface="axis")
    i = manifest["axis"]["streams"]["i"]
    assert [(f["field"], f["offset"], f["width"]) for f in i["tdata"]] == [
        ("data.0", 0, 12), ("data.1", 12, 12), ("multiplier", 24, 32), ("shift", 56, 6),
        ("zero_point", 62, 8)]
    assert (i["tdata_width"], i["tdata_bits_used"]) == (72, 70)
    assert i["tlast"]["field"] is None and i["tuser"] is None
    assert manifest["axis"]["reset"] == {"port": "aresetn", "active": "low",
                                         "synchronous": True, "effect": manifest["axis"][
                                             "reset"]["effect"]}
    _, manifest = generate("absmax", {"block_size": 8, "lanes": 2, "in_width": 8},
                           interface="axis")
    streams = manifest["axis"]["streams"]
    o, scale = streams["o"], streams["scale"]
    assert [(f["field"], f["offset"], f["payload_offset"]) for f in o["tdata"]] == [
        ("data.0", 0, 0), ("data.1", 8, 8)]
    assert o["tlast"]["field"] == "last" and o["tlast"]["payload_offset"] == 17
    assert o["tuser"]["bits"][0]["field"] == "first" and o["tuser"]["width"] == 1
    assert scale["tlast"]["field"] is None and "every beat" in scale["tlast"]["meaning"]
    assert streams["i"]["interface"] == "s_axis_i" and o["interface"] == "m_axis_o"
    tdata = next(p for p in manifest["ports"] if p["name"] == "m_axis_o_tdata")
    assert tdata["width"] == 16 and [f["field"] for f in tdata["fields"]] == ["data.0",
                                                                            "data.1"]


def test_a_tdata_over_4096_bits_is_refused_in_one_line():
    with pytest.raises(ValueError) as error:
        AxiStreamWrapper(Quantizer(lanes=64, per_lane=True))
    message = str(error.value)
    assert "\n" not in message and MAX_TDATA_WIDTH == 4096
    assert message.startswith("s_axis_i_tdata: stream i needs 4992 bits of TDATA")
    assert "at most 4096 bits" in message
    with pytest.raises(ValueError, match="s_axis_i_tdata"):
        generate("quantizer", {"lanes": 64, "per_lane": True}, interface="axis")
    # Exactly 4096 is taken: 64 lanes of 64 bits, constant scale.
    streams = axis_streams(_unused(Quantizer(lanes=64, in_width=64, runtime_scale=False,
                                             multiplier=1, shift=0)))
    assert streams["i"]["tdata_width"] == 4096


def test_the_wrapper_is_a_component_to_embed():
    """Python API: Verilog straight from the wrapper, the block's figures kept."""
    block = BlockwiseAbsmax(block_size=8, lanes=2, in_width=8)
    wrapper = AxiStreamWrapper(block)
    assert wrapper.latency == block.latency and wrapper.throughput == block.throughput
    text = verilog.convert(wrapper, name="absmax_axis", emit_src=False)
    assert set(_verilog_ports(text, "absmax_axis")) == {
        "aclk", "aresetn", *PORTS["absmax"]}
    with pytest.raises(TypeError, match="not an amaranth.lib.wiring.Component"):
        AxiStreamWrapper(object())


def _require_axi():
    missing = [] if importlib.util.find_spec("cocotbext.axi") else ["cocotbext-axi"]
    require("the AXI4-Stream bench", missing, " (pip install -e .[dev])")


BENCHES = [("quantizer", {"lanes": 2, "in_width": 12}),
           ("absmax", {"block_size": 8, "lanes": 2, "in_width": 8}),
           ("mac-array", {"rows": 2, "cols": 3}),
           ("qlinear", {"rows": 2, "cols": 2})]


@pytest.mark.parametrize("block,params", BENCHES, ids=[b for b, _ in BENCHES])
def test_axis_bench_bit_exact(block, params, simulator, tmp_path):
    _require_axi()
    result = run_bench(block, params, simulator,
                       {"vectors": 160, "seed": 5, "in_pause": 0.3, "out_pause": 0.4,
                        "reset": True}, workdir=tmp_path, interface="axis")
    assert_bit_exact(result)
    summary = result.summary
    assert summary["driver"] == "axis" and summary["compared"] >= 160
    # The sinks' frames were checked against the bus: every beat but those of a frame
    # that the reset cut.
    assert summary["framed_o"] >= summary["beats_out"] - 8, summary
    if block == "absmax":           # aresetn fell inside a block, both outputs scored
        assert summary["reset"]["inside_block"] and summary["compared_scales"] > 0
        assert summary["compared_flags"] == summary["compared"]


OTHERS = sorted(set(BLOCKS) - {block for block, _ in BENCHES})


@pytest.mark.parametrize("block", OTHERS)
def test_every_other_block_bit_exact_in_its_axis_form(block, tmp_path):
    """Every other block at its defaults, on Icarus (the four above run on both)."""
    _require_axi()
    require_simulator("icarus")
    result = run_bench(block, {}, "icarus",
                       {"vectors": 64, "seed": 3, "in_pause": 0.3, "out_pause": 0.3,
                        "reset": True}, workdir=tmp_path, interface="axis")
    assert_bit_exact(result)
    assert result.summary["driver"] == "axis" and result.summary["compared"] >= 64


def test_axis_bench_catches_a_wrong_golden(tmp_path):
    """The same bench with the golden told to round another way must fail."""
    _require_axi()
    require_simulator("icarus")
    result = run_bench("quantizer", {"lanes": 2, "in_width": 12}, "icarus",
                       {"vectors": 160, "seed": 5, "golden": {"rounding": "floor"}},
                       workdir=tmp_path, interface="axis")
    assert not result.passed and result.mismatches > 0
    assert "quantizer: " in result.summary["reports"][0]


def test_cli_generate_and_verify_take_interface_axis(tmp_path, capsys):
    """``qdp generate --interface axis`` writes the AXI module and its mapping; ``qdp
    verify --interface axis`` runs the cocotbext-axi bench (Icarus); ``--driver`` with it,
    an unknown interface and a TDATA over 4096 bits are one line, exit 2."""
    require_simulator("icarus")
    assert main(["generate", "quantizer", "--interface", "axis", "-o", str(tmp_path)]) == 0
    verilog_path, manifest_path = capsys.readouterr().out.split()[:2]
    manifest = json.loads(open(manifest_path).read())
    assert manifest["interface"] == "axis" and manifest["module"].endswith("_axis")
    assert "input aresetn;" in open(verilog_path).read()
    assert main(["verify", "quantizer", "--interface", "axis", "--sim", "icarus",
                 "--vectors", "500"]) == 0
    assert re.match(r"quantizer on icarus: \d+ vectors compared, 0 mismatches \(bit-exact\)",
                    capsys.readouterr().out)
    for argv, message in (
            (["verify", "quantizer", "--interface", "axis", "--driver", "cycle"],
             "driver: --interface axis runs the cocotbext-axi bench"),
            (["generate", "quantizer", "--interface", "axi"], "invalid choice: 'axi'"),
            (["generate", "quantizer", "--interface", "axis", "--lanes", "64",
              "--in-width", "64", "-o", str(tmp_path)], "s_axis_i_tdata: stream i needs")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
