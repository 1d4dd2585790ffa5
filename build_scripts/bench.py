"""The reference sweep: resources, Fmax and simulation speed of every block, in one table.

:data:`REFERENCE` is a named list of configurations of the sweep engine
(:mod:`qdp.build_scripts.sweep`, as ``qdp sweep`` runs it): each configuration is
synthesized, placed and routed on ECP5 (LFE5U-85F, speed 8, out of context) and on
iCE40 UP5K (inside the serializing harness) as one Dask task per target on a local
cluster (``--workers``, or ``--scheduler`` for a running one), its row stored in
``bench.sqlite`` in the output folder as the task finishes. Then, on this machine and one
at a time, so that nothing else runs beside the timed simulator, its golden-checked
cocotb bench runs on Verilator and on Icarus with continuous input and an always-ready
output. A configuration that does not fit a device is a row that says why; a synthesis
that fails is left out of the table, named on stderr, and the exit status is 1. Writes
``bench.json`` and ``bench.md``; each figure carries its date, seed and tool versions.

    python -m qdp.build_scripts.bench -o build/bench

``--only``, ``--label``, ``--targets`` and ``--sims`` measure part of the sweep; the figures of an
earlier ``bench.json`` in the output folder that this run does not measure are kept
(``--fresh`` drops them), so a sweep can be completed or refreshed piece by piece. Each
run synthesizes what it selects again, unless ``--resume``: then the rows already in
``bench.sqlite`` stand and only the missing ones run (an interrupted bench goes on).

Simulation speed is output elements checked per wall-clock second of the cocotb test as
cocotb times it, with the bulk driver and with the per-cycle driver on the same stimulus
(stimulus, golden scoring and checking included; Verilog build and simulator start-up
excluded).
"""

import argparse
import datetime
import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..sim.toolchain import SIMULATORS, missing_tools
from ._report import write_report
from .bench_sim import compare
from ..blocks import get_block
from .sweep import make_point, pending, run_sweep
from .sweep_cluster import dask_client
from .sweep_db import SweepDB
from .synth import TARGETS

__all__ = ["DB_NAME", "REFERENCE", "Reference", "main", "reference_points", "synth_figures"]

#: The sweep database in the output folder.
DB_NAME = "bench.sqlite"


@dataclass(frozen=True)
class Reference:
    block: str
    label: str
    params: dict = field(default_factory=dict)


REFERENCE = [
    Reference("quantizer", "in32 × M32 → int8, 1 lane", {"latency": 10}),
    Reference("quantizer", "in32 × M32 → int8, 8 lanes", {"lanes": 8, "latency": 11}),
    Reference("absmax", "in16 → int8, B = 64", {"block_size": 64, "in_width": 16}),
    Reference("absmax", "in16 → int8, B = 4096", {"block_size": 4096, "in_width": 16}),
    Reference("absmax", "fp32 → int8, B = 64", {"block_size": 64, "in_format": "fp32",
                                                 "pipeline": 3}),
    Reference("absmax", "fp32 → int8, B = 64, float32 model",
              {"block_size": 64, "in_format": "fp32", "pipeline": 3, "model": "float32"}),
    Reference("absmax-dequantize", "int8, fp32 absmax → fp32, exact", {}),
    Reference("absmax-dequantize", "int8, c → fp32, float32 model", {"model": "float32"}),
    Reference("mx-quantize", "fp32 → fp8_e4m3, B = 32, 4 lanes",
              {"element": "fp8_e4m3", "lanes": 4}),
    Reference("mx-quantize", "bf16 → fp4_e2m1, B = 32, 4 lanes",
              {"element": "fp4_e2m1", "in_format": "bf16", "lanes": 4}),
    Reference("mx-dequantize", "fp8_e4m3 → fp32, 4 lanes",
              {"element": "fp8_e4m3", "lanes": 4}),
    Reference("nf4-quantize", "fp32 → NF4, B = 64, 1 lane", {"read_register": True}),
    Reference("nf4-quantize", "bf16 → NF4, B = 64, 4 lanes", {"in_format": "bf16", "lanes": 4}),
    Reference("nf4-dequantize", "NF4, fp32 absmax → fp32, 1 lane", {}),
    Reference("group-dequantize", "GPTQ int4, fp32 scale + zero → fp32, 1 lane", {}),
    Reference("group-dequantize", "GPTQ int4 → fp32, 8 lanes (one uint32 word)",
              {"lanes": 8}),
    Reference("mx-mac-array", "4×4 fp8_e4m3, B = 32", {"rows": 4, "cols": 4,
                                                       "element": "fp8_e4m3"}),
    Reference("mac-array", "4×4 int8", {"rows": 4, "cols": 4}),
    Reference("mac-array", "8×8 int8", {"rows": 8, "cols": 8}),
    Reference("mac-array", "16×16 int8", {"rows": 16, "cols": 16}),
    Reference("qlinear", "8×8 int8 → int8", {"rows": 8, "cols": 8}),
    Reference("quantize-linear", "fp32 → int8, constant scale, onnx", {"scale": 0.037,
                                                                     "zero_point": 3}),
    Reference("quantize-linear", "bf16 → int8, run-time scale, exact",
              {"in_format": "bf16", "runtime_scale": True, "rounding_model": "exact"}),
    Reference("dequantize-linear", "int8 → fp32, constant scale",
              {"scale": 0.037, "zero_point": 3}),
    Reference("dequantize-linear", "int32 → bf16, run-time scale",
              {"in_width": 32, "out_format": "bf16", "runtime_scale": True}),
]


def reference_points(refs, targets, seed):
    """``[(ref, target, Point)]``: the sweep engine's points of ``refs``."""
    return [(ref, target, make_point(ref.block, ref.params, target, seed))
            for ref in refs for target in targets]


def synth_figures(row):
    """The ``bench.json`` synthesis entry of a sweep row that is ok or does not fit
    (without date, seed and tools): the figures, or the reason without the block's
    parameters and without the log."""
    if row["status"] == "does-not-fit":
        return {"fits": False, "reason": row["reason"]}
    return {"fits": True, **{k: row[k] for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz",
                                                 "freq_mhz")},
            "timing_met": bool(row["timing_met"]), "critical_path": row["critical_path"],
            "harness": row["harness"], "device": row["device"],
            "seconds": row["stage_seconds"]}


def _synthesize(refs, rows, args):
    """Synthesize ``refs`` on the sweep engine and put their figures into ``rows``; return
    one line per failed synthesis."""
    planned = reference_points(refs, args.targets, args.seed)
    points = [point for _, _, point in planned]
    if not points:
        return []
    with SweepDB(args.output / DB_NAME) as db:
        if not args.resume:
            db.forget([p.key for p in points])
        if pending(points, db):
            with dask_client(args.scheduler, args.workers) as client:
                run_sweep(points, db, client)
        stored = {(r["block"], r["params_hash"], r["target"], r["seed"]): r
                  for r in db.rows()}
    failures = []
    for ref, target, point in planned:
        row = stored[point.key]
        if row["status"] == "failed":
            failures.append(f"{ref.block} {ref.label} on {target}: {row['reason']}")
            continue
        rows[_key(ref.block, ref.params)]["synth"][target] = {
            **synth_figures(row), "date": row["finished_at"][:10], "seed": point.seed,
            "tools": row["tools"]}
    return failures


def sim_row(ref, sim, vectors, seed):
    """Checked elements and input beats per second of the cocotb bench of ``ref`` on
    ``sim``, with each driver on the same stimulus (:func:`qdp.build_scripts.bench_sim.compare`)."""
    drivers, speedup = compare(ref.block, ref.params, sim, vectors=vectors, seed=seed)
    return {**drivers, "speedup": speedup}


def _fmt_synth(row):
    if row is None:
        return "-"
    if not row["fits"]:
        return row["reason"]
    met = "" if row["timing_met"] else " (missed)"
    parts = [f"{row['fmax_mhz']:.0f} MHz{met}", f"{row['luts']} LUT", f"{row['ffs']} FF"]
    if row["dsps"]:
        parts.append(f"{row['dsps']} DSP")
    if row["brams"]:
        parts.append(f"{row['brams']} BRAM")
    return ", ".join(parts)


def _fmt_sim(row):
    if row is None:
        return "-"
    if "bulk" not in row:               # measured before the bulk driver
        return f"{row['beats_per_second']:,} beats/s (cycle)"
    return (f"{row['bulk']['elements_per_second']:,} / {row['cycle']['elements_per_second']:,}"
            f" elements/s ({row['speedup']}×)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS),
                        help="synthesis targets (default: all; none: skip synthesis)")
    parser.add_argument("--sims", nargs="*", default=list(SIMULATORS),
                        choices=list(SIMULATORS),
                        help="simulators to time (default: all; none: skip simulation)")
    parser.add_argument("--vectors", type=int, default=20_000,
                        help="elements per timed simulation (default 20000)")
    parser.add_argument("--only", nargs="*", metavar="BLOCK",
                        help="only these blocks (default: every reference configuration)")
    parser.add_argument("--label", metavar="TEXT",
                        help="only the configurations whose label contains TEXT")
    parser.add_argument("--seed", type=int, default=1, help="placement and stimulus seed")
    parser.add_argument("-o", "--output", type=Path, default=Path("build/bench"))
    parser.add_argument("--fresh", action="store_true",
                        help="forget the figures of an earlier bench.json in the output "
                             "folder (default: keep those this run does not measure)")
    parser.add_argument("--resume", action="store_true",
                        help=f"keep the synthesis rows already in {DB_NAME} in the output "
                             "folder and run only the missing ones (default: synthesize "
                             "again what this run selects)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="synthesis worker processes (default: one per CPU)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="synthesize on a running Dask scheduler (tcp://host:8786)")
    args = parser.parse_args(argv)
    refs = [r for r in REFERENCE if (not args.only or r.block in args.only)
            and (args.label is None or args.label in r.label)]
    sims = [sim for sim in args.sims if not missing_tools(sim)]
    rows = _rows(None if args.fresh else args.output / "bench.json")
    failures = _synthesize(refs, rows, args)
    # Timed one at a time on this machine, after the synthesis: a simulator's speed is
    # only worth reporting with nothing else running beside it.
    steps = [(ref, name) for ref in refs for name in sims]
    today = datetime.date.today().isoformat()
    with tqdm(steps, unit="step", dynamic_ncols=True) as progress:
        for ref, name in progress:
            progress.set_description(f"{ref.block} {ref.label}: sim {name}")
            result = sim_row(ref, name, args.vectors, args.seed)
            rows[_key(ref.block, ref.params)]["sim"][name] = {
                **result, "date": today, "seed": args.seed, "vectors": args.vectors}
            progress.write(f"{ref.block:9} {ref.label:28} {name:9} {_fmt_sim(result)}")
    report = {"python": platform.python_version(), "machine": platform.machine(),
              "rows": list(rows.values())}
    targets = [t for t in TARGETS if any(t in r["synth"] for r in rows.values())]
    simulators = [s for s in SIMULATORS if any(s in r["sim"] for r in rows.values())]
    header = ["block", "configuration", "latency (cycles)"]
    header += [{"ecp5": "ECP5-85F -8 (OOC)", "ice40": "iCE40 UP5K (harness)"}[t]
               for t in targets]
    header += [f"{sim.capitalize()} bulk / cycle driver" for sim in simulators]
    table = [[row["block"], row["config"], row["latency_cycles"]]
             + [_fmt_synth(row["synth"].get(t)) for t in targets]
             + [_fmt_sim(row["sim"].get(sim)) for sim in simulators]
             for row in rows.values()]
    write_report(args.output, "bench", report, header, table)
    for line in failures:
        print(f"bench: synthesis failed: {line}", file=sys.stderr)
    return 1 if failures else 0


def _key(block, params):
    return block, json.dumps(params, sort_keys=True)


def _rows(previous):
    """One row per reference configuration, with the figures of ``previous`` (an earlier
    bench.json) where it measured the same configuration."""
    old = {}
    if previous is not None and previous.exists():
        old = {_key(r["block"], r["params"]): r for r in json.loads(previous.read_text())["rows"]}
    rows = {}
    for ref in REFERENCE:
        key = _key(ref.block, ref.params)
        rows[key] = {"block": ref.block, "config": ref.label, "params": ref.params,
                     "latency_cycles": get_block(ref.block).check(**ref.params).latency,
                     "synth": dict(old.get(key, {}).get("synth", {})),
                     "sim": dict(old.get(key, {}).get("sim", {}))}
    return rows


if __name__ == "__main__":
    sys.exit(main())
