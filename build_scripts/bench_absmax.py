"""Blockwise absmax benchmark: steady-state cycles per block against the ideal B / lanes,
latency to the first output, and block storage against B * in_width.

Each reference configuration runs its golden-checked cocotb bench (Verilator), whose last
phase streams back-to-back blocks with no gaps and no backpressure and stamps every beat.
Writes ``bench_absmax.json`` and ``bench_absmax.md``.

    python -m qdp.build_scripts.bench_absmax -o build/bench
"""

import argparse
import datetime
from pathlib import Path

from ..hdl import BlockwiseAbsmax
from ._report import write_report
from ..sim.runner import run_bench

__all__ = ["REFERENCE", "main"]

REFERENCE = [
    dict(block_size=64, lanes=1, in_width=16, out_width=8),
    dict(block_size=4096, lanes=1, in_width=16, out_width=8),
    dict(block_size=256, lanes=4, in_width=16, out_width=8),
    dict(block_size=64, lanes=16, in_width=16, out_width=8),
    dict(block_size=64, lanes=4, in_width=16, out_width=8, rounding="stochastic"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    args = parser.parse_args(argv)
    rows = []
    for params in REFERENCE:
        unit = BlockwiseAbsmax(**params)
        unit._MustUse__silence = True           # only its figures are read here
        beats_per_block = unit.beats_per_block
        blocks = 2 if beats_per_block >= 1024 else 8
        result = run_bench("absmax", params, args.sim,
                           {"vectors": 2 * params["block_size"], "seed": 1,
                            "steady_blocks": blocks})
        if not result.passed:
            raise SystemExit(f"absmax {params} failed: {result.summary}")
        steady = result.summary["steady"]
        row = {**params, "rounding": unit.rounding, "pipeline": unit.pipeline,
               "ideal_cycles_per_block": beats_per_block,
               "cycles_per_block": steady["cycles_per_block"],
               "input_stall_cycles": steady["input_stall_cycles"],
               "latency_cycles": steady["latency_cycles"],
               "storage_bits": unit.storage_bits,
               "block_bits": params["block_size"] * params["in_width"],
               "elements_compared": result.compared}
        rows.append(row)
        print(f"B={row['block_size']:5} lanes={row['lanes']:2} {row['rounding']:10} "
              f"pipeline={row['pipeline']}: "
              f"{row['cycles_per_block']} cycles/block (ideal {beats_per_block}), "
              f"latency {row['latency_cycles']}, storage {row['storage_bits']} bits "
              f"(B*in_width = {row['block_bits']})", flush=True)
    report = {"date": datetime.date.today().isoformat(), "sim": args.sim, "rows": rows}
    write_report(args.output, "bench_absmax", report,
                 ["B", "lanes", "in → out", "rounding", "pipeline", "cycles/block",
                  "ideal B/lanes",
                  "input stalls", "latency (cycles)", "storage bits", "B·in_width"],
                 [[r["block_size"], r["lanes"], f"{r['in_width']} → {r['out_width']}",
                   r["rounding"], r["pipeline"], ", ".join(map(str, r["cycles_per_block"])),
                   r["ideal_cycles_per_block"], r["input_stall_cycles"], r["latency_cycles"],
                   r["storage_bits"], r["block_bits"]] for r in rows])


if __name__ == "__main__":
    main()
