"""cocotb-runner glue for the AXI4-Stream form of a block: export it with
``interface="axis"``, build it once per simulator (cached like :mod:`qdp.sim.runner`'s
builds, under ``$QDP_BUILD_DIR``), run :mod:`qdp.sim.axis_tb` on it.

The module is the simulation's top level itself (cocotbext-axi drives its ports by their
AXI names), so it needs neither the bulk harness of :mod:`qdp.sim.harness` nor its build;
the config, the summary and :class:`~qdp.sim.runner.BenchResult` are
:func:`qdp.sim.runner.run_bench`'s.
"""

import fcntl
import hashlib
import json
import tempfile
from pathlib import Path

import cocotb
from cocotb_tools.runner import get_results, get_runner

from ..blocks import generate
from .runner import TIMESCALE, BenchResult, _cache_root, _tool_version, crash_reason
from .toolchain import missing_tools, setup_verilator

__all__ = ["BENCH", "build_axis", "run_axis_bench"]

#: The cocotb test module of the AXI4-Stream form.
BENCH = "qdp.sim.axis_tb"
# Amaranth's Verilog is correct but not lint-clean; the top has no delays (no --timing).
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]


def build_axis(block, params, sim, *, waves=False, exported=None):
    """Export ``block`` with ``params`` as AXI4-Stream and build it for ``sim``; return
    ``(build_dir, manifest)``. ``exported``: :func:`qdp.blocks.generate`'s ``(verilog_text,
    manifest)`` with ``interface="axis"``, when the caller has it already."""
    missing = missing_tools(sim)
    if missing:
        raise RuntimeError(f"sim: {sim} needs {', '.join(missing)}, which is not installed")
    setup_verilator()
    text, manifest = exported or generate(block, params, interface="axis")
    if manifest.get("interface") != "axis":
        raise ValueError("exported: not an AXI4-Stream module (generate(..., "
                         "interface='axis'))")
    name = manifest["module"]
    key = hashlib.sha1("\n".join([text, "axis", _tool_version(sim), cocotb.__version__,
                                  str(waves)]).encode()).hexdigest()[:12]
    build_dir = _cache_root() / f"{name}-{sim}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    done = build_dir / "built.json"
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        (build_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2))
        if not done.exists():
            source = build_dir / f"{name}.v"
            source.write_text(text)
            get_runner(sim).build(sources=[source], hdl_toplevel=name, build_dir=build_dir,
                                  always=True, timescale=TIMESCALE, waves=waves,
                                  build_args=VERILATOR_ARGS if sim == "verilator" else [],
                                  log_file=build_dir / "build.log")
            done.write_text(json.dumps({"module": name, "sim": sim}))
    return build_dir, manifest


def run_axis_bench(block, params, sim, config, *, waves=False, workdir=None, exported=None):
    """Run the AXI4-Stream bench (:mod:`qdp.sim.axis_tb`) on ``block``'s AXI4-Stream form
    with ``config`` (as for :func:`qdp.sim.runner.run_bench`: ``vectors``, ``seed``,
    ``in_pause``, ``out_pause``, ``reset``, ``golden``, the block bench's own keys); return
    a :class:`~qdp.sim.runner.BenchResult`."""
    build_dir, manifest = build_axis(block, params, sim, waves=waves, exported=exported)
    name = manifest["module"]
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"qdp-{block}-axis-{sim}-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config_file, summary_file = workdir / "config.json", workdir / "summary.json"
    config_file.write_text(json.dumps({"block": block, "params": params,
                                       "manifest": manifest, **config}))
    summary_file.unlink(missing_ok=True)
    results_xml, log = workdir / "results.xml", workdir / "sim.log"
    plusargs = [f"+dumpfile_path={workdir / (name + '.fst')}"] if waves and sim == "icarus" \
        else []
    try:
        get_runner(sim).test(test_module=BENCH, hdl_toplevel=name, hdl_toplevel_lang="verilog",
                             build_dir=build_dir, test_dir=workdir,
                             results_xml=str(results_xml),
                             extra_env={"QDP_BENCH_CONFIG": str(config_file),
                                        "QDP_BENCH_SUMMARY": str(summary_file)},
                             waves=waves, plusargs=plusargs, timescale=TIMESCALE, log_file=log)
    except SystemExit:
        pass                    # a failing bench; the results and summary say why
    try:
        tests, failed = get_results(results_xml)
    except RuntimeError:
        tests, failed = 0, 1
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    if not summary:
        summary = {"error": crash_reason(log)}
    return BenchResult(passed=tests > 0 and failed == 0 and not summary.get("error"),
                       summary=summary, log=log)
