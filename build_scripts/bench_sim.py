"""Simulation benchmark: throughput and simulation speed of each block's cocotb bench.

For every reference configuration and simulator this builds the Verilog (not timed),
then runs the golden-checked bench twice: with no valid gaps and no backpressure, to
measure the hardware's sustained beats per cycle, and with the default 30 % gaps and
backpressure, to report what the CI benches see. Writes ``bench_sim.json`` and
``bench_sim.md``.

    python -m qdp.build_scripts.bench_sim --vectors 100000 -o build/bench
"""

import argparse
import datetime
import platform
import time
from pathlib import Path

from ._report import write_report
from ..sim.runner import build, run_bench
from ..sim.toolchain import SIMULATORS, missing_tools

__all__ = ["REFERENCE", "main"]

REFERENCE = [
    ("quantizer", "in32 x M32 -> int8, run-time scale, 1 lane", {}),
    ("quantizer", "in32 x M32 -> int8, constant scale, 8 lanes",
     {"lanes": 8, "runtime_scale": False, "multiplier": 1518500250, "shift": 38}),
]


def measure(block, params, sim, vectors, pause):
    build(block, params, sim)
    start = time.monotonic()
    result = run_bench(block, params, sim, {"vectors": vectors, "seed": 1, "reset": False,
                                            "in_pause": pause, "out_pause": pause})
    seconds = time.monotonic() - start
    s = result.summary
    if not result.passed:
        raise RuntimeError(f"{block} on {sim} failed: {s}")
    return {"elements": s["compared"], "beats": s["beats_out"], "cycles": s["cycles"],
            "beats_per_cycle": round(s["beats_out"] / s["cycles"], 4),
            "seconds": round(seconds, 2),
            "elements_per_second": round(s["compared"] / seconds),
            "cycles_per_second": round(s["cycles"] / seconds)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = parser.parse_args(argv)
    sims = [sim for sim in SIMULATORS if not missing_tools(sim)]
    rows = []
    for block, label, params in REFERENCE:
        for sim in sims:
            for pause in (0.0, 0.3):
                row = {"block": block, "config": label, "params": params, "sim": sim,
                       "gaps_and_backpressure": pause,
                       **measure(block, params, sim, args.vectors, pause)}
                rows.append(row)
                print(f"{block:10} {label:44} {sim:9} pause {pause:.1f}: "
                      f"{row['beats_per_cycle']:.3f} beats/cycle, "
                      f"{row['elements_per_second']:>7} elements/s", flush=True)
    report = {"date": datetime.date.today().isoformat(), "vectors": args.vectors,
              "python": platform.python_version(), "machine": platform.machine(),
              "rows": rows}
    write_report(args.output, "bench_sim", report,
                 ["block", "configuration", "simulator", "gaps/backpressure", "beats/cycle",
                  "elements", "wall s", "elements/s"],
                 [[r["block"], r["config"], r["sim"], f"{r['gaps_and_backpressure']:.0%}",
                   f"{r['beats_per_cycle']:.3f}", r["elements"], r["seconds"],
                   r["elements_per_second"]] for r in rows])


if __name__ == "__main__":
    main()
