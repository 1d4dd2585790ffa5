"""``qdp sweep``: grids, the SQLite results, the report, and the Dask engine's faults.

The real sweeps synthesize the cheapest quantizer there is (2-bit input, 2-bit constant
multiplier: a few cells, about 3 s per point on ECP5) on a 2-worker LocalCluster: one
has a worker killed in mid-sweep, one is interrupted with SIGINT and resumed. The rest
replaces synthesis (on a cluster of threads in this process, which the replacement
reaches) or needs no cluster at all.
"""

import functools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import require, require_simulator
from qdp.build_scripts import cli, sweep, sweep_cluster
from qdp.build_scripts.sweep import grid_points, make_point, parse_grid, run_point, run_sweep
from qdp.build_scripts.sweep_db import USER_VERSION, SweepDB
from qdp.build_scripts.sweep_report import pareto_front, report_markdown
from qdp.build_scripts.synth import DoesNotFit, missing_tools
from qdp.sim.runner import BenchResult

TINY = {"in_width": 2, "mult_width": 2, "out_width": 2, "runtime_scale": False,
        "multiplier": 1, "shift": 0}
TINY_ARGS = ["--in-width", "2", "--mult-width", "2", "--out-width", "2",
             "--no-runtime-scale", "--multiplier", "1", "--shift", "0"]
FAKE = {"luts": 10, "ffs": 20, "dsps": 1, "brams": 0, "lutram": 0, "fmax_mhz": 300.0,
        "freq_mhz": 250.0, "timing_met": True, "latency_cycles": 2, "module": "m",
        "device": "LFE5U-85F", "package": "CABGA381", "critical_path": None,
        "utilization": {}, "cells": {}, "harness": None, "seconds": {"yosys": 0.1}}


def require_real_sweep():
    require("a real sweep", sweep_cluster.missing_dask() + missing_tools("ecp5"),
            ' (pip install "qdp[synth]")')


def one_line_error(capsys, argv):
    """Run the CLI and return its stderr, asserting exit 2 and one line."""
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qdp: error: "), err
    return err


@pytest.fixture
def no_cluster(monkeypatch):
    """The CLI may not start or reach any cluster in this test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a cluster was started")
    monkeypatch.setattr(cli, "dask_client", refuse)


@pytest.fixture
def fake_synthesis(monkeypatch):
    """Synthesis replaced by ``FAKE`` (``fail``: params -> an exception, or None), tool
    versions by a constant; returns the threads-cluster client factory."""
    monkeypatch.setattr(sweep, "tool_versions", lambda target: {"yosys": "test"})

    def install(fail=lambda params: None):
        def synthesize(block, params, *, target, seed, **kwargs):
            error = fail(params)
            if error is not None:
                raise error
            return {**FAKE, "fmax_mhz": 300.0 - params.get("latency", 0), "seconds": {}}
        monkeypatch.setattr(sweep, "synthesize", synthesize)
        return functools.partial(sweep_cluster.dask_client, workers=2, processes=False)
    return install


# -- grids and points ----------------------------------------------------------------

def test_grid_values_are_parsed_by_the_parameters_kind():
    assert parse_grid("quantizer", ["latency=2,6,0x0a", "in-signed=true,no",
                                    "rounding=floor,half_away", "tflite=none,double"]) == {
        "latency": [2, 6, 10], "in_signed": [True, False],
        "rounding": ["floor", "half_away"], "tflite": [None, "double"]}
    assert parse_grid("quantize-linear", ["scale=0.5,0.25"]) == {"scale": [0.5, 0.25]}


@pytest.mark.parametrize("texts,message", [
    (["lane=1,2"], r"^grid: lane is not a parameter of quantizer \(its parameters: lanes, "),
    (["latency"], r"^grid: 'latency' is not NAME=V1,V2,...$"),
    (["latency="], r"^grid: 'latency=' is not NAME=V1,V2,...$"),
    (["latency=2,x"], r"^grid: latency: expected an integer, got 'x'$"),
    (["per_lane=maybe"], r"^grid: per_lane: expected true or false, got 'maybe'$"),
    (["lanes=1", "lanes=2"], r"^grid: lanes is given twice$"),
])
def test_bad_grid_entries_are_named(texts, message):
    with pytest.raises(ValueError, match=message):
        parse_grid("quantizer", texts)


def test_grid_points_are_the_product_checked_and_without_repeats():
    points = grid_points("quantizer", TINY, {"latency": [1, 2], "lanes": [1, 2]},
                         seeds=[1, 2])
    assert [(p.params["latency"], p.params["lanes"], p.seed) for p in points] == [
        (1, 1, 1), (1, 1, 2), (1, 2, 1), (1, 2, 2), (2, 1, 1), (2, 1, 2), (2, 2, 1),
        (2, 2, 2)]
    assert len({p.key for p in points}) == 8
    # A default given explicitly is the same design, hence the same point.
    assert make_point("quantizer", {"lanes": 1}).key == make_point("quantizer", {}).key
    assert make_point("quantizer", {"lanes": 2}).key != make_point("quantizer", {}).key
    assert len(grid_points("quantizer", {}, {"lanes": [1, 1, 2]})) == 2
    # --random: the same draw for the same seed, so a rerun resumes the same sweep.
    grid = {"latency": [1, 2, 3], "lanes": [1, 2, 3, 4]}
    drawn = [p.key for p in grid_points("quantizer", TINY, grid, sample=5)]
    assert drawn == [p.key for p in grid_points("quantizer", TINY, grid, sample=5)]
    assert len(set(drawn)) == 5
    assert drawn != [p.key for p in grid_points("quantizer", TINY, grid, sample=5,
                                                sample_seed=1)]


def test_grid_points_refuse_what_the_component_refuses():
    with pytest.raises(ValueError, match=r"^latency: 99 is out of range \(allowed 1\.\.9\) "
                                         r"\(grid point latency=99, lanes=1\)$"):
        grid_points("quantizer", TINY, {"latency": [1, 99], "lanes": [1]})
    with pytest.raises(ValueError, match=r"^grid: lanes given both as a parameter and in"):
        grid_points("quantizer", {"lanes": 2}, {"lanes": [1]})
    with pytest.raises(ValueError, match=r"^random: 7 is out of range \(the grid has 2 "):
        grid_points("quantizer", {}, {"lanes": [1, 2]}, sample=7)
    with pytest.raises(ValueError, match=r"^seed: -1 is out of range"):
        make_point("quantizer", {}, seed=-1)


# -- the database --------------------------------------------------------------------

def _row(point, **columns):
    return {"block": point.block, "params_hash": point.params_hash, "target": point.target,
            "seed": point.seed, "params": point.params, "effective_params": point.effective,
            "status": "ok", **columns}


def test_the_database_is_wal_marked_and_keeps_each_point_once(tmp_path):
    path = tmp_path / "sub" / "s.sqlite"
    point = make_point("quantizer", {"lanes": 2})
    with SweepDB(path) as db:
        assert db.add(_row(point, luts=5, critical_path={"from": "a"}))
        assert not db.add(_row(point, luts=6))          # stored already: nothing changes
        assert db.done() == {point.key}
        (row,) = db.rows()
        assert row["luts"] == 5 and row["critical_path"] == {"from": "a"}
        assert row["params"] == {"lanes": 2}
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == USER_VERSION
    with pytest.raises(sqlite3.IntegrityError):        # the UNIQUE constraint itself
        conn.execute("INSERT INTO points (block, params_hash, target, seed, params, "
                     "effective_params, status) VALUES (?, ?, ?, ?, '{}', '{}', 'ok')",
                     point.key)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO points (block, params_hash, target, seed, params, "
                     "effective_params, status) VALUES ('b', 'h', 't', 1, '{}', '{}', 'fine')")
    conn.close()


def _not_a_sweep(tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database\n" * 100)
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE points (x)")
    conn.commit()
    conn.close()
    impostor = tmp_path / "impostor.sqlite"            # our mark, not our columns
    conn = sqlite3.connect(impostor)
    conn.execute("CREATE TABLE points (block)")
    conn.execute(f"PRAGMA user_version = {USER_VERSION}")
    conn.commit()
    conn.close()
    return [text, other, impostor]


def test_a_file_that_is_not_a_sweep_is_refused_untouched(tmp_path, capsys, no_cluster):
    for path in _not_a_sweep(tmp_path):
        before = path.read_bytes()
        for argv in (["sweep", "quantizer", "--grid", "lanes=1,2", "--db", str(path)],
                     ["sweep", "--report", str(path)]):
            err = one_line_error(capsys, argv)
            assert f"db: {path} is not a qdp sweep database (" in err
        assert path.read_bytes() == before
    err = one_line_error(capsys, ["sweep", "--report", str(tmp_path / "none.sqlite")])
    assert err == f"qdp: error: db: {tmp_path / 'none.sqlite'} does not exist\n"
    assert not (tmp_path / "none.sqlite").exists()


# -- bad input on the command line ----------------------------------------------------

@pytest.mark.parametrize("grid,message", [
    (["lane=1,2"], "grid: lane is not a parameter of quantizer (its parameters: lanes, "),
    (["latency=2,99"], "latency: 99 is out of range (allowed 1..11) (grid point latency=99)"),
    (["rounding=floor,nearest"], "rounding: unknown value 'nearest'; expected one of "),
])
def test_bad_grid_is_one_line_before_anything_runs(grid, message, tmp_path, capsys,
                                                   no_cluster):
    db = tmp_path / "s.sqlite"
    err = one_line_error(capsys, ["sweep", "quantizer", "--grid", *grid, "--db", str(db)])
    assert message in err
    assert not db.exists()


@pytest.mark.parametrize("argv,message", [
    (["--grid", "lanes=1", "--random", "0"], "random: must be >= 1, got 0"),
    (["--grid", "lanes=1", "--workers", "0"], "workers: must be >= 1, got 0"),
    (["--seeds", "1,-2"], "seed: -2 is out of range (allowed 0..2**32-1)"),
    (["--verify", "0"], "verify: must be >= 1 vectors, got 0"),
    (["--scheduler", "tcp://h:8786", "--workers", "2"],
     "argument --workers: not allowed with argument --scheduler"),
])
def test_bad_sweep_options_are_one_line(argv, message, tmp_path, capsys, no_cluster):
    err = one_line_error(capsys, ["sweep", "quantizer", *argv, "--db",
                                  str(tmp_path / "s.sqlite")])
    assert message in err


def test_sweep_without_block_or_report_is_one_line(capsys):
    assert "give a BLOCK and --grid to run, or --report FILE.sqlite" in \
        one_line_error(capsys, ["sweep"])


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys):
    require("a sweep", sweep_cluster.missing_dask(), ' (pip install "qdp[synth]")')
    with socket.socket() as s:                          # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "s.sqlite"
    start = time.monotonic()
    err = one_line_error(capsys, ["sweep", "quantizer", "--grid", "lanes=1,2", "--db",
                                  str(db), "--scheduler", f"tcp://127.0.0.1:{port}",
                                  "--connect-timeout", "1"])
    assert time.monotonic() - start < 30
    assert err.startswith(f"qdp: error: scheduler: cannot reach tcp://127.0.0.1:{port} "
                          f"within 1 s (")
    with SweepDB(db) as opened:
        assert opened.rows() == []


# -- the task and the engine's faults -------------------------------------------------

def test_a_point_that_fails_or_does_not_fit_is_a_row_with_its_reason(monkeypatch):
    monkeypatch.setattr(sweep, "tool_versions", lambda target: {"yosys": "test"})
    point = make_point("quantizer", TINY, "ice40", 3)

    def synthesize(block, params, **kwargs):
        error = RuntimeError("yosys failed on quantizer: ERROR: boom\nsecond line")
        error.add_note("logs: /tmp/qdp-synth-log-x")
        raise error
    monkeypatch.setattr(sweep, "synthesize", synthesize)
    row = run_point(point)
    assert (row["status"], row["reason"]) == (
        "failed", "synthesis: RuntimeError: yosys failed on quantizer: ERROR: boom second "
                  "line; logs: /tmp/qdp-synth-log-x")
    assert row["tools"] == {"yosys": "test"} and "luts" not in row
    assert row["started_at"] <= row["finished_at"] and row["seconds"] >= 0

    def synthesize(block, params, **kwargs):
        raise DoesNotFit("quantizer (...)", "iCE40UP5K", "needs 9 DSPs (ICESTORM_DSP), "
                         "device has 8", "/tmp/log")
    monkeypatch.setattr(sweep, "synthesize", synthesize)
    row = run_point(point)
    assert (row["status"], row["reason"]) == ("does-not-fit",
                                              "needs 9 DSPs (ICESTORM_DSP), device has 8")


def test_verification_is_recorded_and_a_mismatch_fails_the_point(monkeypatch, tmp_path):
    require_simulator("icarus")
    monkeypatch.setattr(sweep, "tool_versions", lambda target: {"yosys": "test"})
    monkeypatch.setattr(sweep, "synthesize", lambda *a, **k: dict(FAKE))
    point = make_point("quantizer", dict(TINY, latency=1), seed=5)
    row = run_point(point, {"sim": "icarus", "vectors": 100})        # a real bench run
    assert (row["status"], row["verified"]) == ("ok", "bit-exact")
    assert row["verify"]["sim"] == "icarus" and row["verify"]["mismatches"] == 0
    assert row["verify"]["compared"] >= 100 and row["luts"] == FAKE["luts"]

    def wrong(block, params, sim, config, **kwargs):
        return BenchResult(passed=False, summary={"compared": 100, "mismatches": 3},
                           log=tmp_path / "log")
    monkeypatch.setattr(sweep, "run_bench", wrong)
    row = run_point(point, {"sim": "icarus", "vectors": 100})
    assert (row["status"], row["verified"]) == ("failed", "mismatch")
    assert row["reason"] == "verification on icarus: mismatch: 3 mismatches in 100"


def test_a_crashing_point_is_stored_as_failed_and_the_sweep_goes_on(fake_synthesis,
                                                                    monkeypatch, tmp_path):
    client_of = fake_synthesis(lambda params: RuntimeError("nextpnr failed: ERROR: x")
                               if params["latency"] == 2 else None)
    points = grid_points("quantizer", TINY, {"latency": [1, 2, 3]})
    lost = make_point("quantizer", dict(TINY, latency=4))
    real = sweep.run_point

    def run_point_or_die(point, verify):    # a task that never returns a row at all
        if point.key == lost.key:
            raise OSError("worker vanished")
        return real(point, verify)
    monkeypatch.setattr(sweep, "run_point", run_point_or_die)
    with SweepDB(tmp_path / "s.sqlite") as db, client_of() as client:
        summary = run_sweep(points + [lost], db, client, progress=False, echo=False)
        rows = {r["params"]["latency"]: r for r in db.rows()}
    assert (summary.ok, summary.failed, summary.left) == (2, 2, 0)
    assert rows[1]["status"] == rows[3]["status"] == "ok"
    assert (rows[2]["status"], rows[2]["reason"]) == (
        "failed", "synthesis: RuntimeError: nextpnr failed: ERROR: x")
    assert (rows[4]["status"], rows[4]["reason"]) == ("failed",
                                                      "task: OSError: worker vanished")


def test_retry_failed_runs_the_failed_points_again(fake_synthesis, tmp_path, capsys):
    client_of = fake_synthesis(lambda params: RuntimeError("flaky")
                               if params["latency"] == 2 else None)
    argv = ["sweep", "quantizer", *TINY_ARGS, "--grid", "latency=1,2", "--db",
            str(tmp_path / "s.sqlite")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "dask_client", lambda *args, **kwargs: client_of())
        assert cli.main(argv) == cli.EXIT_MISMATCH           # a failed point: status 1
        out = capsys.readouterr().out
        assert "latency=2 ecp5 seed 1: failed: synthesis: RuntimeError: flaky" in out
        assert "1 ok, 0 does-not-fit, 1 failed (--retry-failed runs" in out
        fake_synthesis()                                        # no longer flaky
        assert cli.main(argv) == cli.EXIT_MISMATCH              # skipped, still failed
        assert "2 points, 2 already in" in capsys.readouterr().out
        assert cli.main(argv + ["--retry-failed"]) == cli.EXIT_OK
        assert "2 points, 1 already in" in capsys.readouterr().out
    with SweepDB(tmp_path / "s.sqlite") as db:
        assert sorted(r["status"] for r in db.rows()) == ["ok", "ok"]


# -- the acceptance sweeps: real synthesis on a 2-worker LocalCluster --------------------

def test_a_worker_killed_mid_sweep_has_its_task_rerun(tmp_path, capsys, no_cluster):
    """6 points, 2 worker processes; after the first row one busy worker is SIGKILLed.
    Every point ends up stored once, ok, and the killed worker's task ran again on
    another process. A rerun stores nothing and starts no cluster (``no_cluster``
    covers the CLI); the report tables the 6 rows and writes the plot."""
    require_real_sweep()
    db_path = tmp_path / "s.sqlite"
    points = grid_points("quantizer", TINY, {"latency": [1, 2, 3], "lanes": [1, 2]})
    assert len(points) == 6
    killed = {}

    with SweepDB(db_path) as db, sweep_cluster.dask_client(workers=2) as client:
        def kill_a_busy_worker(point, row):
            if killed:
                return
            busy = {w: keys for w, keys in client.processing().items() if keys}
            address = next(iter(busy))
            (pid,) = client.run(os.getpid, workers=[address]).values()
            os.kill(pid, signal.SIGKILL)
            killed.update(pid=pid, keys=set(busy[address]))
        summary = run_sweep(points, db, client, progress=False, echo=False,
                            on_row=kill_a_busy_worker)
        rows = db.rows()
    assert killed, "no worker was killed"
    assert (summary.ok, summary.failed, summary.does_not_fit) == (6, 0, 0)
    assert len(rows) == 6 and {r["status"] for r in rows} == {"ok"}
    assert sorted((r["params"]["latency"], r["params"]["lanes"]) for r in rows) == \
        [(latency, lanes) for latency in (1, 2, 3) for lanes in (1, 2)]
    assert all(r["luts"] > 0 and 0 < r["fmax_mhz"] < 2000 for r in rows)
    assert all(r["tools"]["yosys"].startswith("Yosys") for r in rows)
    by_task = {sweep.task_key(p): p.key for p in points}
    by_key = {(r["block"], r["params_hash"], r["target"], r["seed"]): r for r in rows}
    rerun = [by_key[by_task[key]]["worker"] for key in killed["keys"]]
    assert any(not worker.endswith(f":{killed['pid']}") for worker in rerun), rerun

    argv = ["sweep", "quantizer", *TINY_ARGS, "--grid", "latency=1,2,3", "lanes=1,2",
            "--target", "ecp5", "--db", str(db_path), "--workers", "2"]
    assert cli.main(argv) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("quantizer: 6 points, 6 already in ") and "6 ok, 0 does-not-fit" \
        in out
    with SweepDB(db_path) as db:
        assert [r["finished_at"] for r in db.rows()] == [r["finished_at"] for r in rows]

    assert cli.main(["sweep", "--report", str(db_path)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "6 rows (6 ok, 0 does-not-fit, 0 failed)" in out
    assert sum(line.startswith("| quantizer | ") for line in out.splitlines()) == 6
    png = tmp_path / "s-pareto.png"
    assert out.endswith(f"plot: {png}\n") and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _stored(path):
    try:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT count(*) FROM points").fetchone()[0]
    except sqlite3.OperationalError:        # not created yet
        return 0


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, capsys):
    """SIGINT after the first row: exit 130, the stored rows stay; the same command then
    runs only the rest, and every point is stored once."""
    require_real_sweep()
    db = tmp_path / "s.sqlite"
    argv = ["sweep", "quantizer", *TINY_ARGS, "--grid", "latency=1,2,3", "--db", str(db),
            "--workers", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "qdp.build_scripts.cli", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while _stored(db) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == cli.EXIT_INTERRUPTED, (out, err)
    first = _stored(db)
    assert 1 <= first < 3
    assert err.splitlines()[-1] == (f"qdp: interrupted: {first} of 3 points stored in {db}; "
                                    f"the same command runs the rest")
    assert "done 1, failed 0, left 2" in err                 # the progress bar
    assert cli.main(argv) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"quantizer: 3 points, {first} already in {db}, {3 - first} to run")
    with SweepDB(db) as opened:
        rows = opened.rows()
    assert sorted(r["params"]["latency"] for r in rows) == [1, 2, 3]
    assert {r["status"] for r in rows} == {"ok"}


# -- the report ---------------------------------------------------------------------

def test_report_marks_the_pareto_fronts_and_writes_the_plot(tmp_path, capsys):
    figures = {(1, "ecp5"): (10, 0, 100.0), (2, "ecp5"): (20, 1, 200.0),
               (3, "ecp5"): (30, 0, 150.0), (4, "ecp5"): (20, 1, 200.0),
               (5, "ice40"): (40, 2, 50.0)}
    with SweepDB(tmp_path / "r.sqlite") as db:
        for (lanes, target), (luts, dsps, fmax) in figures.items():
            point = make_point("quantizer", {"lanes": lanes, "latency": 3}, target)
            db.add(_row(point, luts=luts, ffs=1, dsps=dsps, brams=0, fmax_mhz=fmax,
                        timing_met=fmax >= 250))
        db.add(_row(make_point("quantizer", {"lanes": 9, "latency": 3}, "ice40"),
                    status="does-not-fit", reason="needs 9 DSPs (ICESTORM_DSP), device has 8"))
        rows = db.rows()
    lanes = {id(r): r["params"]["lanes"] for r in rows}
    assert sorted(lanes[i] for i in pareto_front(rows, "luts")) == [1, 2, 4, 5]
    # lanes=3 beats lanes=1 at the same DSP count; lanes=5 is alone on iCE40.
    assert sorted(lanes[i] for i in pareto_front(rows, "dsps")) == [2, 3, 4, 5]
    markdown = report_markdown(rows)
    assert "- quantizer, every row: latency=3" in markdown
    plot = tmp_path / "plot.png"
    assert cli.main(["sweep", "--report", str(tmp_path / "r.sqlite"), "--plot",
                     str(plot)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    lines = {line.split(" | ")[1]: line for line in out.splitlines()
             if line.startswith("| quantizer | ")}
    assert lines["lanes=1"] == ("| quantizer | lanes=1 | ecp5 | 1 | ok | 10 | 1 | 0 | 0 "
                                "| 100.0 (missed) | LUT | - | - |")
    assert "| 150.0 (missed) | DSP | - | - |" in lines["lanes=3"]
    assert "| 200.0 (missed) | LUT, DSP | - | - |" in lines["lanes=2"]
    assert lines["lanes=9"].endswith("| does-not-fit | - | - | - | - | - | - | - "
                                     "| needs 9 DSPs (ICESTORM_DSP), device has 8 |")
    assert "Sweep" in out and "6 rows (5 ok, 1 does-not-fit, 0 failed)" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


# -- Slurm ----------------------------------------------------------------------------

def test_slurm_cluster_submits_single_threaded_workers(tmp_path):
    require("SLURMCluster", sweep_cluster.missing_dask(slurm=True),
            ' (pip install "qdp[synth]")')
    with sweep_cluster.slurm_cluster(queue="fpga", account="qdp", cores=4, memory="16GB",
                                     walltime="01:30:00",
                                     prologue=["source /opt/qdp/.venv/bin/activate"],
                                     log_directory=str(tmp_path / "logs"),
                                     # its HTTP server off 8787, where a neighbour's may be
                                     scheduler_options={"dashboard_address": ":0"}) as cluster:
        script = cluster.job_script()
        address = cluster.scheduler_address
    lines = script.splitlines()
    for directive in ("#SBATCH -J qdp-sweep", "#SBATCH -p fpga", "#SBATCH -A qdp",
                      "#SBATCH -n 1", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=15G",
                      "#SBATCH -t 01:30:00", "source /opt/qdp/.venv/bin/activate"):
        assert directive in lines, script
    (worker,) = [line for line in lines if "distributed.cli.dask_worker" in line]
    assert worker.startswith(f"{sys.executable} -m distributed.cli.dask_worker {address} ")
    assert "--nthreads 1" in worker and "--nworkers 4" in worker and "--nanny" in worker
    assert lines.index("source /opt/qdp/.venv/bin/activate") < lines.index(worker)
