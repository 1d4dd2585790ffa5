"""Simulation benchmark: the bulk and the per-cycle driver side by side, per block and
simulator, on the same stimulus with the same gap and backpressure probabilities.

For every configuration of :data:`REFERENCE` and every simulator this builds the Verilog
(not timed), then runs the golden-checked bench with each driver, with no valid gaps and
no backpressure and with 30 % of each. Speed is elements checked (and input beats) per
second of the cocotb test as cocotb times it: stimulus, golden model, scoring and the
bulk driver's memory files included; the Verilog build and the simulator's start-up
excluded. Writes ``bench_sim.json`` and ``bench_sim.md``.

    python -m qdp.build_scripts.bench_sim --vectors 200000 -o build/bench
"""

import argparse
import datetime
import platform
import tempfile
from pathlib import Path
from xml.etree import ElementTree

from ._report import write_report
from ..sim.bench import DRIVERS
from ..sim.runner import build, run_bench, throughput_builds
from ..sim.toolchain import SIMULATORS, missing_tools

__all__ = ["REFERENCE", "measure", "main"]

REFERENCE = [
    ("quantizer", "in32 × M32 → int8, 1 lane", {"latency": 10}),
    ("absmax", "in16 → int8, B = 64", {"block_size": 64, "in_width": 16}),
    ("mac-array", "8×8 int8", {"rows": 8, "cols": 8}),
]


def measure(block, params, sim, *, vectors, seed=1, pause=0.0, driver="bulk"):
    """One timed bench run, on a model built for speed (:func:`throughput_builds`);
    ``RuntimeError`` if it does not pass."""
    with throughput_builds(), tempfile.TemporaryDirectory(prefix="qdp-bench-") as workdir:
        build(block, params, sim)
        result = run_bench(block, params, sim,
                           {"vectors": vectors, "seed": seed, "in_pause": pause,
                            "out_pause": pause, "reset": False, "driver": driver},
                           workdir=workdir)
        if not result.passed:
            raise RuntimeError(f"{block} {params} failed on {sim} ({driver}): {result.summary}")
        testcase = ElementTree.parse(Path(workdir) / "results.xml").find(".//testcase")
        seconds = float(testcase.get("time"))
    s = result.summary
    row = {"driver": driver, "elements": result.compared, "beats_in": s["beats_in"],
           "cycles": s["cycles"], "seconds": round(seconds, 3),
           "beats_per_second": round(s["beats_in"] / seconds),
           "elements_per_second": round(result.compared / seconds),
           "cycles_per_second": round(s["cycles"] / seconds)}
    for key in ("seconds_simulating", "seconds_loading"):
        if key in s:
            row[key] = s[key]
    return row


def compare(block, params, sim, *, vectors, seed=1, pause=0.0):
    """Both drivers on the same stimulus: ``{driver: row}`` and the speed-up of bulk."""
    rows = {d: measure(block, params, sim, vectors=vectors, seed=seed, pause=pause, driver=d)
            for d in DRIVERS}
    speedup = rows["bulk"]["elements_per_second"] / rows["cycle"]["elements_per_second"]
    return rows, round(speedup, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=200_000)
    parser.add_argument("--sims", nargs="*", default=list(SIMULATORS), choices=list(SIMULATORS))
    parser.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = parser.parse_args(argv)
    sims = [sim for sim in args.sims if not missing_tools(sim)]
    rows = []
    for block, label, params in REFERENCE:
        for sim in sims:
            for pause in (0.0, 0.3):
                drivers, speedup = compare(block, params, sim, vectors=args.vectors,
                                           pause=pause)
                rows.append({"block": block, "config": label, "params": params, "sim": sim,
                             "gaps_and_backpressure": pause, "speedup": speedup, **drivers})
                print(f"{block:10} {label:28} {sim:9} pause {pause:.1f}: bulk "
                      f"{drivers['bulk']['elements_per_second']:>9,} elements/s, cycle "
                      f"{drivers['cycle']['elements_per_second']:>7,}: {speedup}x", flush=True)
    report = {"date": datetime.date.today().isoformat(), "vectors": args.vectors,
              "python": platform.python_version(), "machine": platform.machine(),
              "rows": rows}
    write_report(args.output, "bench_sim", report,
                 ["block", "configuration", "simulator", "gaps/backpressure",
                  "bulk elements/s", "cycle elements/s", "bulk / cycle"],
                 [[r["block"], r["config"], r["sim"], f"{r['gaps_and_backpressure']:.0%}",
                   f"{r['bulk']['elements_per_second']:,}",
                   f"{r['cycle']['elements_per_second']:,}", f"{r['speedup']}×"]
                  for r in rows])


if __name__ == "__main__":
    main()
