"""The reference sweep: its rows, its "does not fit" reasons and its report files, run on
the sweep engine (with synthesis replaced, on a cluster of threads in this process so
that the replacement reaches the tasks)."""

import functools
import json

import pytest
from qdp.build_scripts import bench, sweep, sweep_cluster
from qdp.build_scripts.sweep_db import SweepDB
from qdp.build_scripts.synth import DoesNotFit


@pytest.fixture
def engine(monkeypatch):
    """The bench's cluster as worker threads of this process; returns a function that
    replaces synthesis in the tasks (a report of ``figures``, or an exception)."""
    monkeypatch.setattr(bench, "dask_client",
                        functools.partial(sweep_cluster.dask_client, processes=False))
    monkeypatch.setattr(sweep, "tool_versions", lambda target: {"yosys": "test"})

    def replace(outcome):
        def synthesize(block, params, *, target, seed, **kwargs):
            if isinstance(outcome, Exception):
                raise outcome
            return {**outcome, "critical_path": None, "harness": None, "device": target,
                    "seconds": {"yosys": 0.1}}
        monkeypatch.setattr(sweep, "synthesize", synthesize)
    return replace


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


def test_a_configuration_that_does_not_fit_is_a_row_with_its_reason(engine, tmp_path):
    """The engine's row keeps the reason (without the parameters and the removed log), and
    the sweep's table shows it in the configuration's cell."""
    reason = "needs 256 DSPs (ICESTORM_DSP), device has 8"
    engine(DoesNotFit("mac-array (rows=16, cols=16)", "iCE40UP5K", reason,
                      "/tmp/qdp-synth-log-x/nextpnr.log"))
    ref = next(r for r in bench.REFERENCE if r.label == "16×16 int8")
    (_, _, point), = bench.reference_points([ref], ["ice40"], 1)
    row = sweep.run_point(point)
    assert (row["status"], row["reason"]) == ("does-not-fit", reason)
    assert bench.synth_figures(row) == {"fits": False, "reason": reason}
    assert bench.main(["--only", "mac-array", "--targets", "ice40", "--sims",
                       "-o", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [r["synth"]["ice40"]["reason"] for r in rows if r["block"] == "mac-array"] == \
        [reason] * 3
    assert all(r["synth"]["ice40"]["tools"] == {"yosys": "test"} for r in rows
               if r["block"] == "mac-array")
    cells = [line.split(" | ") for line in (tmp_path / "bench.md").read_text().splitlines()
             if line.startswith("| mac-array | ")]
    assert [cell[-1] for cell in cells] == [reason + " |"] * 3


def test_other_synthesis_errors_are_not_hidden(engine, tmp_path, capsys):
    """A synthesis that fails is named on stderr with its reason, has no figure in the
    table, and makes the exit status 1."""
    engine(RuntimeError("nextpnr failed on quantizer: ERROR: boom"))
    assert bench.main(["--only", "quantizer", "--targets", "ecp5", "--sims",
                       "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("bench: synthesis failed: quantizer ") == 2
    assert "synthesis: RuntimeError: nextpnr failed on quantizer: ERROR: boom" in err
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert all(not r["synth"] for r in rows)


def test_sweep_writes_json_and_markdown_and_keeps_earlier_figures(tmp_path, engine):
    """A real (short) timed simulation, with synthesis replaced by fixed figures; a second
    run over other blocks keeps the first run's figures, ``--fresh`` drops them; the
    synthesis rows are in the output folder's sweep database."""
    engine({"luts": 10, "ffs": 20, "dsps": 4, "brams": 0, "fmax_mhz": 300.4,
            "freq_mhz": 250.0, "timing_met": True})
    bench.main(["--only", "quantizer", "--sims", "verilator", "--vectors", "400",
                "-o", str(tmp_path)])
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [r["config"] for r in report["rows"]] == [r.label for r in bench.REFERENCE]
    measured = [r for r in report["rows"] if r["block"] == "quantizer"]
    for row in measured:
        assert set(row["synth"]) == {"ecp5", "ice40"}
        assert row["synth"]["ecp5"] == {
            "fits": True, "luts": 10, "ffs": 20, "dsps": 4, "brams": 0, "fmax_mhz": 300.4,
            "freq_mhz": 250.0, "timing_met": True, "critical_path": None, "harness": None,
            "device": "ecp5", "seconds": {"yosys": 0.1}, "date": row["synth"]["ecp5"]["date"],
            "seed": 1, "tools": {"yosys": "test"}}
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
    with SweepDB(tmp_path / bench.DB_NAME) as db:
        stored = db.rows()
    assert sorted((r["block"], r["target"]) for r in stored) == sorted(
        [("quantizer", t) for t in ("ecp5", "ice40") for _ in range(2)]
        + [("absmax", "ecp5")] * absmax_rows)
