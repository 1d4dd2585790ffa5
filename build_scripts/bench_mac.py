"""MAC-array benchmark: utilization of long tiled GEMMs in simulation.

Each reference array runs a random GEMM with K = 8 * max(rows, cols), larger than the
array and cut into tiles by the bench's host-side tiler, with continuously valid input and
an always-ready output, checked against :func:`qdp.golden.matmul_int`. Utilization is
useful MACs / (rows * cols * cycles), fill and final drain included. Writes
``bench_mac.json`` and ``bench_mac.md``.

    python -m qdp.build_scripts.bench_mac -o build/bench
"""

import argparse
import datetime
from pathlib import Path

from ._report import write_report
from ..sim.runner import run_bench

__all__ = ["REFERENCE", "main"]

# (rows, cols, GEMM M x K x N)
REFERENCE = [(4, 4, (16, 32, 16)), (8, 8, (64, 64, 64)), (16, 16, (64, 128, 64))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = parser.parse_args(argv)
    rows_out = []
    for rows, cols, gemm in REFERENCE:
        for dataflow in ("broadcast", "systolic"):
            params = dict(rows=rows, cols=cols, dataflow=dataflow)
            result = run_bench("mac-array", params, args.sim,
                               {"gemm": list(gemm), "seed": 1, "in_pause": 0, "out_pause": 0,
                                "reset": False})
            if not result.passed:
                raise SystemExit(f"mac-array {params} failed: {result.summary}")
            s = result.summary
            row = {"rows": rows, "cols": cols, "dataflow": dataflow, "gemm": list(gemm),
                   "macs": s["macs"], "cycles": s["phase_cycles"],
                   "utilization": round(s["utilization"], 4),
                   "useful_utilization": round(s["useful_utilization"], 4),
                   "elements_compared": result.compared}
            rows_out.append(row)
            print(f"{rows}x{cols} {dataflow:9} GEMM {gemm}: {row['macs']} MACs in "
                  f"{row['cycles']} cycles, utilization {100 * row['utilization']:.2f} %",
                  flush=True)
    report = {"date": datetime.date.today().isoformat(), "sim": args.sim, "rows": rows_out}
    write_report(args.output, "bench_mac", report,
                 ["array", "dataflow", "GEMM M×K×N", "MACs", "cycles", "utilization",
                  "useful (no padding)"],
                 [[f"{r['rows']}×{r['cols']}", r["dataflow"], "×".join(map(str, r["gemm"])),
                   r["macs"], r["cycles"], f"{100 * r['utilization']:.2f} %",
                   f"{100 * r['useful_utilization']:.2f} %"] for r in rows_out])


if __name__ == "__main__":
    main()
