"""The reference sweep: its rows, its "does not fit" reasons and its report files."""

import json

import pytest
from qdp.build_scripts import bench
from qdp.build_scripts.synth import DoesNotFit


def test_reference_sweep_has_the_reference_configurations():
    got = {(r.block, tuple(sorted(r.params.items()))) for r in bench.REFERENCE}
    assert ("quantizer", (("latency", 10),)) in got
    assert ("quantizer", (("lanes", 8), ("latency", 11))) in got
    for size in (64, 4096):
        assert ("absmax", (("block_size", size), ("in_width", 16))) in got
    for n in (4, 8, 16):
        assert ("mac-array", (("cols", n), ("rows", n))) in got
    assert ("qlinear", (("cols", 8), ("rows", 8))) in got
    assert {"quantize-linear", "dequantize-linear"} <= {r.block for r in bench.REFERENCE}


def test_a_configuration_that_does_not_fit_is_a_row_with_its_reason(monkeypatch, tmp_path):
    """synth_row keeps the reason (without the parameters and the removed log), and the
    sweep's table shows it in the configuration's cell."""
    def synthesize(block, params, **kwargs):
        raise DoesNotFit("mac-array (rows=16, cols=16)", "iCE40UP5K",
                         "needs 256 DSPs (ICESTORM_DSP), device has 8",
                         "/tmp/qdp-synth-log-x/nextpnr.log")
    monkeypatch.setattr(bench, "synthesize", synthesize)
    monkeypatch.setattr(bench, "tool_versions", lambda target: {"yosys": "test"})
    reason = "needs 256 DSPs (ICESTORM_DSP), device has 8"
    row = bench.synth_row(next(r for r in bench.REFERENCE if r.label == "16×16 int8"),
                          "ice40", seed=1)
    assert row == {"fits": False, "reason": reason}
    bench.main(["--only", "mac-array", "--targets", "ice40", "--sims", "-o", str(tmp_path)])
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [r["synth"]["ice40"]["reason"] for r in rows if r["block"] == "mac-array"] == \
        [reason] * 3
    cells = [line.split(" | ") for line in (tmp_path / "bench.md").read_text().splitlines()
             if line.startswith("| mac-array | ")]
    assert [cell[-1] for cell in cells] == [reason + " |"] * 3


def test_other_synthesis_errors_are_not_hidden(monkeypatch):
    def synthesize(block, params, **kwargs):
        raise ValueError("lanes: 0 is out of range")
    monkeypatch.setattr(bench, "synthesize", synthesize)
    with pytest.raises(ValueError, match="lanes"):
        bench.synth_row(bench.REFERENCE[0], "ecp5", seed=1)


def test_sweep_writes_json_and_markdown_and_keeps_earlier_figures(tmp_path, monkeypatch):
    """A real (short) timed simulation, with synthesis replaced by fixed figures; a second
    run over other blocks keeps the first run's figures, ``--fresh`` drops them."""
    figures = {"fits": True, "luts": 10, "ffs": 20, "dsps": 4, "brams": 0, "fmax_mhz": 300.4,
               "freq_mhz": 250.0, "timing_met": True}
    monkeypatch.setattr(bench, "synth_row", lambda ref, target, seed: figures)
    monkeypatch.setattr(bench, "tool_versions", lambda target: {"yosys": "test"})
    bench.main(["--only", "quantizer", "--sims", "verilator", "--vectors", "400",
                "-o", str(tmp_path)])
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [r["config"] for r in report["rows"]] == [r.label for r in bench.REFERENCE]
    measured = [r for r in report["rows"] if r["block"] == "quantizer"]
    for row in measured:
        assert set(row["synth"]) == {"ecp5", "ice40"}
        speed = row["sim"]["verilator"]
        for driver in ("bulk", "cycle"):
            assert speed[driver]["elements"] >= 400 and speed[driver]["beats_per_second"] > 0
        # the same stimulus through both drivers
        assert speed["bulk"]["elements"] == speed["cycle"]["elements"]
        assert speed["speedup"] > 0
    assert all(not r["synth"] and not r["sim"] for r in report["rows"] if r not in measured)
    markdown = (tmp_path / "bench.md").read_text()
    assert markdown.count("300 MHz, 10 LUT, 20 FF, 4 DSP") == 4
    assert "| absmax | in16 → int8, B = 64 | " in markdown

    absmax_rows = sum(r.block == "absmax" for r in bench.REFERENCE)
    bench.main(["--only", "absmax", "--targets", "ecp5", "--sims", "-o", str(tmp_path)])
    markdown = (tmp_path / "bench.md").read_text()
    assert markdown.count("300 MHz, 10 LUT, 20 FF, 4 DSP") == 4 + absmax_rows
    bench.main(["--only", "absmax", "--targets", "ecp5", "--sims", "--fresh",
                "-o", str(tmp_path)])
    markdown = (tmp_path / "bench.md").read_text()
    assert markdown.count("300 MHz, 10 LUT, 20 FF, 4 DSP") == absmax_rows
    assert "Verilator" not in markdown
