"""The ``qdp`` command: list, generate, verify, synthesize, prove and sweep blocks; compile
a quantized ONNX model; run the demo.

Exit status: 0 success (bit-exact, proved); 1 a mismatch against the golden model, a
failed proof or a sweep with failed points; 2 a configuration error -- a bad parameter,
an unknown block, a missing simulator, an unreachable scheduler -- as one line on stderr;
3 a bench that crashed (one line with the reason); 130 a sweep interrupted (its stored
rows stay, the same command runs the rest).
``verify`` and ``demo`` leave no files behind unless ``--workdir`` is given.
"""

import argparse
import contextlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..blocks import BLOCKS, generate
from ..blocks.export import INTERFACES
from ..formal.runner import block_proofs, prove
from ..formal.runner import missing_tools as missing_proof_tools
from ..sim.axis import beat_manifest
from ..sim.ecp5 import write_models
from ..sim.bench import DRIVERS, exhaustive_elements
from ..sim.module import Module
from ..sim.runner import run_bench
from ..sim.toolchain import missing_tools as missing_sim_tools
from . import compile_model
from .demo import run_demo
from .fusesoc import core_file
from .sweep import grid_points, parse_grid, pending, run_sweep
from .sweep_cluster import CONNECT_TIMEOUT, dask_client, missing_dask
from .sweep_db import SweepDB
from .sweep_report import write_report as write_sweep_report
from .synth import missing_tools as missing_synth_tools
from .synth import report_markdown, synthesize, write_report

__all__ = ["main", "EXIT_OK", "EXIT_MISMATCH", "EXIT_USAGE", "EXIT_CRASH",
           "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_CRASH = 0, 1, 2, 3
EXIT_INTERRUPTED = 130                  # the shell's status for a SIGINT
SEED_RANGE = (0, (1 << 32) - 1)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _option(name):
    return "--" + name.replace("_", "-")


def _parse_ints(text):
    if text.strip().lower() == "none":
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p, 0) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or a comma list, got {text!r}")
    return values[0] if len(values) == 1 else values


def _choice_parser(param):
    """Text as given, except ``none`` where the parameter has that value (``--tflite``)."""
    def parse(text):
        return None if text.lower() == "none" and "none" in param.choices else text
    return parse


def _parse_floats(text):
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma list, got {text!r}")
    return values[0] if len(values) == 1 else values


def _int(text):
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _seeds(text):
    try:
        return list(dict.fromkeys(int(p, 0) for p in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}") \
            from None


def _add_block_params(parser, block):
    group = parser.add_argument_group(f"{block.name} parameters")
    for name, param in block.params.items():
        kwargs = {"dest": f"param_{name}", "default": argparse.SUPPRESS,
                  "help": f"{param.help} ({param.allowed})"}
        if param.kind == "bool":
            group.add_argument(_option(name), action=argparse.BooleanOptionalAction, **kwargs)
        elif param.kind == "int":
            group.add_argument(_option(name), type=_int, metavar="N", **kwargs)
        elif param.kind == "ints":
            group.add_argument(_option(name), type=_parse_ints, metavar="N[,N...]", **kwargs)
        elif param.kind == "floats":
            group.add_argument(_option(name), type=_parse_floats, metavar="X[,X...]",
                               **kwargs)
        else:
            group.add_argument(_option(name), type=_choice_parser(param), metavar="NAME",
                               **kwargs)


def _block_params(args):
    return {key[len("param_"):]: value for key, value in vars(args).items()
            if key.startswith("param_")}


def _make_parser():
    parser = _Parser(prog="qdp", description="Bit-exact quantized FPGA datapaths.")
    parser.add_argument("--version", action="version",
                        version=f"qdp {importlib.metadata.version('qdp')}")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    verbs.add_parser("list", help="blocks and their parameters")
    demo = verbs.add_parser("demo", help="a digits MLP quantized to int8, run bit-exact "
                                         "through the generated hardware")
    demo.add_argument("--sim", choices=("verilator", "icarus", "both"), default="verilator",
                      help="simulator (default verilator)")
    demo.add_argument("--plot", type=Path, metavar="FILE",
                      help="also write the weight-outlier quantization plot (PNG)")
    demo.add_argument("--workdir", type=Path,
                      help="keep the simulation logs and summaries here")
    for verb, text in (("generate", "write Verilog and its JSON manifest"),
                       ("verify", "simulate the Verilog against the golden model"),
                       ("synth", ("synthesize, place and route on open tools: LUTs, FFs, "
                                  "DSPs, block RAMs, Fmax")),
                       ("prove", "prove the block's formal properties with SymbiYosys")):
        sub = verbs.add_parser(verb, help=text)
        blocks = sub.add_subparsers(dest="block", required=True, parser_class=_Parser,
                                    metavar="BLOCK")
        for block in BLOCKS.values():
            p = blocks.add_parser(block.name, help=block.summary)
            _add_block_params(p, block)
            if verb in ("generate", "verify", "synth"):
                p.add_argument("--interface", choices=INTERFACES, default="amaranth",
                               help="port names: amaranth (clk, rst, <s>__valid/ready/"
                                    "payload; default) or axis (AXI4-Stream: aclk, aresetn, "
                                    "s_axis_<role>_t*, m_axis_<role>_t*)")
            if verb == "generate":
                p.add_argument("-o", "--output", type=Path, default=Path("."),
                               help="output directory (default: .)")
                p.add_argument("--name", help="Verilog module name (default: encodes the "
                                              "configuration)")
                p.add_argument("--target", choices=("ecp5", "ice40"),
                               help="device family: ecp5 uses MULT18X18D primitives with "
                                    "their registers; default portable Verilog")
                p.add_argument("--fusesoc", action="store_true",
                               help="also write <module>.core, its FuseSoC CAPI2 core "
                                    "(VLNV qdp:<block>:<module>:<version>; targets sim, "
                                    "lint, synth)")
            elif verb == "prove":
                p.add_argument("--depth", type=_int, metavar="N",
                               help="induction k or BMC bound in cycles (default: per proof)")
                p.add_argument("--workdir", type=Path,
                               help="keep the SymbiYosys jobs here")
            elif verb == "synth":
                p.add_argument("--target", choices=("ecp5", "ice40"), default="ecp5",
                               help="ecp5 (out of context) or ice40 (in a serializing "
                                    "harness); default ecp5")
                p.add_argument("--device", help="default LFE5U-85F (speed 8, CABGA381) or "
                                                "iCE40UP5K")
                p.add_argument("--freq", type=float, metavar="MHZ",
                               help="clock constraint (default 250 on ecp5, 50 on ice40)")
                p.add_argument("--seed", type=_int, default=1,
                               help="nextpnr placement seed (default 1)")
                p.add_argument("--json", type=Path, required=True, metavar="FILE",
                               help="write the report here, and as Markdown next to it (.md)")
                p.add_argument("--workdir", type=Path,
                               help="keep the Verilog, netlist, logs and nextpnr report here")
            else:
                p.add_argument("--sim", choices=("verilator", "icarus", "both"),
                               default="verilator", help="simulator (default verilator)")
                p.add_argument("--vectors", type=_int, default=100_000,
                               help="elements in the checked stream (default 100000); an "
                                    "interrupted stream before the mid-stream reset adds "
                                    "up to an eighth more")
                p.add_argument("--seed", type=_int, default=1, help="stimulus seed (default 1)")
                p.add_argument("--in-pause", type=float, default=0.3,
                               help="probability of an input valid gap per cycle (default 0.3)")
                p.add_argument("--out-pause", type=float, default=0.3,
                               help="probability of output backpressure per cycle (default 0.3)")
                p.add_argument("--no-reset", action="store_true",
                               help="skip the mid-stream reset phase")
                p.add_argument("--driver", choices=DRIVERS,
                               help="bulk (default): a Verilog harness plays and captures the "
                                    "streams, Python acts once per memory load; cycle: "
                                    "Python drives every clock edge (--interface axis has "
                                    "its own bench: cocotbext-axi, per cycle)")
                p.add_argument("--exhaustive", action="store_true",
                               help="check every input the block's exhaustive check covers "
                                    "(e.g. every value of a <= 16-bit quantizer input) "
                                    "instead of --vectors random ones")
                p.add_argument("--waves", action="store_true",
                               help="record waveforms (Verilator: dump.vcd, Icarus: <module>.fst)")
                p.add_argument("--workdir", type=Path,
                               help="keep the simulation log and summary here")
    _add_sweep_parser(verbs)
    _add_compile_parser(verbs)
    return parser


def _add_compile_parser(verbs):
    p = verbs.add_parser(
        "compile", help="a quantized ONNX MLP to one QLinear per layer (Verilog + manifest), "
                        "optionally verified layer by layer",
        description="Import a quantized ONNX MLP (quantize_static QDQ, QLinearMatMul, QGemm) "
                    "into the golden integer graph and write one QLinear per layer (per 32 "
                    "output channels of a wider layer). The "
                    "hardware computes --requant integer only: with --requant float32 only "
                    "the golden manifest is written (the float32 requantization hardware "
                    "is not built yet) and --verify is refused. A layer the hardware "
                    "cannot compute yet (a requantized Relu/Clip kept as a table, an "
                    "output clip no integer type's saturation expresses) is refused naming "
                    "it. The Verilog is portable (no device "
                    "primitives).")
    p.add_argument("model", type=Path, metavar="MODEL.onnx")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                   help="write manifest.json and each layer's Verilog, module manifest and "
                        "weights here")
    p.add_argument("--requant", choices=("integer", "float32"), default="integer",
                   help="requantization model: integer (M, S) fixed point, the hardware's "
                        "(default), or float32, onnxruntime's (golden manifest only)")
    p.add_argument("--rows", type=_int, default=4,
                   help="inputs per tile: each QLinear is a ROWS x out_features array "
                        "(default 4)")
    p.add_argument("--verify", type=_int, metavar="N",
                   help="run N inputs through every layer's RTL chained, each layer compared "
                        "with the golden graph, then the golden with onnxruntime per layer")
    p.add_argument("--sim", choices=("verilator", "icarus", "both"), default="verilator",
                   help="simulator for --verify (default verilator)")
    p.add_argument("--inputs", type=Path, metavar="FILE.npy",
                   help="--verify's inputs: an array (count, features), float for a float "
                        "model input, codes for a code input (default: uniform over the "
                        "input quantization's range, seeded)")
    p.add_argument("--seed", type=_int, default=1,
                   help="seed of the drawn inputs and of the benches' gaps (default 1)")
    p.add_argument("--workdir", type=Path,
                   help="keep the simulations' logs here (default: removed)")


def _add_sweep_parser(verbs):
    sweep = verbs.add_parser("sweep", help="synthesize (and verify) a grid of configurations, "
                                           "one Dask task each; results in SQLite")
    sweep.add_argument("--report", type=Path, metavar="FILE.sqlite",
                       help="print a sweep's results as a Markdown table and write its Pareto "
                            "plot (instead of BLOCK ...)")
    sweep.add_argument("--plot", type=Path, metavar="FILE.png",
                       help="with --report: the plot's file (default FILE-pareto.png)")
    blocks = sweep.add_subparsers(dest="block", required=False, parser_class=_Parser,
                                  metavar="BLOCK")
    for block in BLOCKS.values():
        p = blocks.add_parser(block.name, help=block.summary)
        _add_block_params(p, block)
        p.add_argument("--grid", nargs="+", action="extend", default=[],
                       metavar="NAME=V1,V2", help="swept parameters; the points are the "
                       "product of their values (other parameters: as given, or defaults)")
        p.add_argument("--random", type=_int, metavar="N",
                       help="only N configurations of the grid, drawn at random")
        p.add_argument("--random-seed", type=_int, default=0, metavar="N",
                       help="seed of --random's draw (default 0: a rerun draws the same)")
        p.add_argument("--target", choices=("ecp5", "ice40"), default="ecp5",
                       help="ecp5 (out of context, default) or ice40 (in the harness)")
        p.add_argument("--seeds", type=_seeds, default=[1], metavar="S1,S2",
                       help="nextpnr placement (and stimulus) seeds, a run each (default 1)")
        p.add_argument("--verify", type=_int, metavar="VECTORS",
                       help="also run the golden-checked bench on VECTORS elements per point")
        p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                       help="simulator for --verify (default verilator)")
        p.add_argument("--db", type=Path, required=True, metavar="FILE.sqlite",
                       help="the results: one row per point and seed; points stored there "
                            "already are skipped")
        where = p.add_mutually_exclusive_group()
        where.add_argument("--scheduler", metavar="ADDRESS",
                           help="a running Dask scheduler (tcp://host:8786) instead of a "
                                "local cluster")
        where.add_argument("--workers", type=_int, metavar="N",
                           help="worker processes of the local cluster (default: one per "
                                "CPU)")
        p.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT, metavar="S",
                       help=f"seconds to wait for --scheduler (default {CONNECT_TIMEOUT:g})")
        p.add_argument("--retry-failed", action="store_true",
                       help="run the points stored as failed again")


def _shown(value):
    """A default as the CLI spells it."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _list():
    """Every block's parameters, each with the value the component resolves by default."""
    for block in BLOCKS.values():
        print(f"{block.name}: {block.summary}")
        defaults = block.effective_params(block.check())
        for name, param in block.params.items():
            allowed = (f"{_option(name)} / --no-{_option(name)[2:]}" if param.kind == "bool"
                       else param.allowed)
            print(f"  {_option(name):18} default {_shown(defaults[name]):12} {param.help}; "
                  f"{allowed}")


def _generate(args):
    """The module and its manifest, and beside them the simulation model of every
    primitive the module instantiates (MULT18X18D on ECP5) and, with ``--fusesoc``, the
    module's FuseSoC core."""
    text, manifest = generate(args.block, _block_params(args), name=args.name,
                              target=args.target, interface=args.interface)
    verilog_path = args.output / f"{manifest['module']}.v"
    manifest_path = args.output / f"{manifest['module']}.json"
    try:
        args.output.mkdir(parents=True, exist_ok=True)
        verilog_path.write_text(text)
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        models = write_models(args.output, [m["primitive"] for m in
                                            manifest.get("simulation_models", [])])
        if args.fusesoc:
            core_path = args.output / f"{manifest['module']}.core"
            core_path.write_text(core_file(manifest, verilog_path.name))
            models.append(core_path)
    except OSError as error:
        raise ValueError(f"output: cannot write to {args.output}: "
                         f"{error.strerror or error}") from None
    print("\n".join(map(str, [verilog_path, manifest_path, *models])))
    return EXIT_OK


def _synth(args):
    _check_seed(args.seed)
    _check_workdir(args.workdir)
    report = synthesize(args.block, _block_params(args), target=args.target,
                        device=args.device, freq_mhz=args.freq, seed=args.seed,
                        workdir=args.workdir, interface=args.interface)
    try:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        json_path, markdown_path = write_report(report, args.json)
    except OSError as error:
        raise ValueError(f"json: cannot write {args.json}: {error.strerror or error}") from None
    print(report_markdown(report), end="")
    print(f"{json_path}\n{markdown_path}")
    return 0


def _prove(args):
    if args.depth is not None and args.depth < 1:
        raise ValueError(f"depth: must be a positive integer, got {args.depth}")
    _check_workdir(args.workdir)
    missing = missing_proof_tools()
    if missing:
        raise RuntimeError(f"proofs need {', '.join(missing)}, which is not installed "
                           f"(pip install 'qdp[formal]')")
    status = 0
    for n, proof in enumerate(block_proofs(args.block, _block_params(args))):
        workdir = args.workdir / f"proof{n}" if args.workdir else \
            Path(tempfile.mkdtemp(prefix=f"qdp-prove-{args.block}-"))
        depth = proof.depth if args.depth is None else args.depth
        result = prove(proof.harness(), mode=proof.mode, depth=depth, workdir=workdir)
        how = "k-induction" if proof.mode == "prove" else "BMC"
        print(f"{args.block}: {proof.name}: {result.status} ({how}, depth {depth}, "
              f"{result.seconds:.1f} s)")
        if result.note:
            print(f"  {result.note}")
        if not result.passed:
            print(f"  trace: {result.trace or 'none'} (job: {workdir})")
            status = 1
        elif args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


def _simulators(choice, *, check=True):
    """The simulators ``--sim`` names (``both``: Verilator and Icarus); with ``check``, a
    missing one's tools are one clear error."""
    sims = ("verilator", "icarus") if choice == "both" else (choice,)
    for sim in sims if check else ():
        missing = missing_sim_tools(sim)
        if missing:
            raise RuntimeError(f"{sim} needs {', '.join(missing)}, which is not installed")
    return sims


def _check_seed(seed):
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise ValueError(f"seed: {seed} is out of range (allowed {SEED_RANGE[0]}..2**32-1)")


def _check_workdir(workdir):
    if workdir is not None and workdir.exists() and not workdir.is_dir():
        raise ValueError(f"workdir: {workdir} exists and is not a directory")


@contextlib.contextmanager
def _workdir(base, name, prefix):
    """``(folder, kept)``: ``base/name`` when there is a ``base``, else a temporary folder
    removed on exit, whatever happened."""
    if base is not None:
        yield base / name, True
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as temp:
        yield Path(temp), False


def _where(kept, log):
    return f"log: {log}" if kept else "rerun with --workdir DIR to keep its log"


def _verify_one(args, params, exported, sim, workdir, kept):
    """One simulator's run; returns its exit status."""
    start = time.monotonic()
    result = run_bench(args.block, params, sim,
                       {"vectors": args.vectors, "seed": args.seed,
                        "in_pause": args.in_pause, "out_pause": args.out_pause,
                        "reset": not args.no_reset, "driver": args.driver,
                        "exhaustive": args.exhaustive},
                       waves=args.waves, workdir=workdir, exported=exported,
                       interface=args.interface)
    seconds = time.monotonic() - start
    s = result.summary
    if "error" in s:
        print(f"qdp: error: {args.block} on {sim}: the bench crashed: {s['error']} "
              f"({_where(kept, result.log)})", file=sys.stderr)
        return EXIT_CRASH
    verdict = "bit-exact" if result.passed else "MISMATCH"
    if "exhaustive" in s:
        verdict += f"; {s['exhaustive']} of them cover every input"
    print(f"{args.block} on {sim}: {s['compared']} vectors compared, "
          f"{s['mismatches']} mismatches ({verdict}); {s['beats_in']} beats in, "
          f"{s['beats_out']} out, {s['cycles']} cycles, {seconds:.1f} s")
    for line in s.get("reports", []):
        print(f"  {line}")
    if args.waves:
        print(f"  waves and log in {workdir}")
    if not result.passed:
        print(f"  {_where(kept, result.log)}")
        return EXIT_MISMATCH
    return EXIT_OK


def _verify(args):
    params = _block_params(args)
    # The component is built once: bad parameters fail here, before any simulator runs,
    # and every simulator gets this Verilog.
    exported = generate(args.block, params, interface=args.interface)
    if args.interface == "axis" and args.driver is not None:
        raise ValueError("driver: --interface axis runs the cocotbext-axi bench (Python on "
                         "every cycle); --driver does not apply")
    args.driver = args.driver or "bulk"
    if not 0 <= args.in_pause < 1 or not 0 <= args.out_pause < 1:
        raise ValueError("in_pause/out_pause: probabilities must lie in [0, 1)")
    if args.vectors < 1:
        raise ValueError(f"vectors: must be >= 1, got {args.vectors}")
    _check_seed(args.seed)
    _check_workdir(args.workdir)
    if args.exhaustive:
        manifest = exported[1]
        exhaustive_elements(args.block, Module(beat_manifest(manifest) if
                                               args.interface == "axis" else manifest).params)
    sims = _simulators(args.sim)
    # Waves are asked-for output: a run with --waves and no --workdir keeps one folder.
    base = args.workdir if args.workdir is not None or not args.waves else \
        Path(tempfile.mkdtemp(prefix=f"qdp-{args.block}-waves-"))
    status = EXIT_OK
    for sim in sims:
        with _workdir(base, sim, f"qdp-{args.block}-{sim}-") as (workdir, kept):
            status = max(status, _verify_one(args, params, exported, sim, workdir, kept))
    return status


def _compile(args):
    _check_seed(args.seed)
    _check_workdir(args.workdir)
    if args.verify is not None:
        if args.verify < 1:
            raise ValueError(f"verify: must be >= 1 inputs, got {args.verify}")
        if args.requant != "integer":
            raise ValueError(f"verify: {compile_model.FLOAT32_NOT_BUILT}; verify with "
                             f"--requant integer")
    elif args.inputs is not None:
        raise ValueError("inputs: --inputs gives --verify's inputs; add --verify N")
    sims = _simulators(args.sim, check=args.verify is not None)
    model, graph = compile_model.load_model(args.model)
    x = None
    if args.verify is not None:
        loaded = None
        if args.inputs is not None:
            try:
                loaded = np.load(args.inputs, allow_pickle=False)
            except (OSError, ValueError) as error:
                raise ValueError(f"inputs: cannot read {args.inputs} as .npy: {error}") \
                    from None
        x = compile_model.model_inputs(graph, args.verify, inputs=loaded, seed=args.seed)
    hardware = compile_model.hardware_layers(graph, rows=args.rows) \
        if args.requant == "integer" else None
    paths = compile_model.write_outputs(args.output, args.model, graph, hardware,
                                        rows=args.rows, requant=args.requant)
    print("\n".join(map(str, paths)))
    if hardware is None:
        print(f"no Verilog: {compile_model.FLOAT32_NOT_BUILT} (the manifest holds the "
              f"golden layers)")
    if x is None:
        return EXIT_OK
    with _workdir(args.workdir, "compile", "qdp-compile-") as (workdir, kept):
        status, rows = compile_model.verify(
            model, graph, hardware, x, sims, seed=args.seed, workdir=workdir,
            progress=lambda text: print(f"  ... {text}", file=sys.stderr, flush=True))
        if kept:
            print(f"simulation logs in {workdir}")
    print(compile_model.format_verify_table(rows, sims))
    source = f"{args.inputs}" if args.inputs is not None else f"drawn with seed {args.seed}"
    exact = all(v == 0 for row in rows for v in row["rtl"].values())
    within = all(row["bound"] == "within" for row in rows)
    print(f"{len(x)} inputs ({source}); RTL: " + (
        "every layer bit-exact with the golden graph" if exact else
        "a bench crashed" if status == EXIT_CRASH else "MISMATCH")
        + ("; golden vs onnxruntime: within the bound" if within else
           "; golden vs onnxruntime: OUTSIDE the bound"))
    return status


def _sweep_points(args):
    """The sweep's points and verification, every check done before any task starts."""
    if args.random is not None and args.random < 1:
        raise ValueError(f"random: must be >= 1, got {args.random}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"workers: must be >= 1, got {args.workers}")
    grid = parse_grid(args.block, args.grid)
    points = grid_points(args.block, _block_params(args), grid, targets=(args.target,),
                         seeds=args.seeds, sample=args.random, sample_seed=args.random_seed)
    verify = None
    if args.verify is not None:
        if args.verify < 1:
            raise ValueError(f"verify: must be >= 1 vectors, got {args.verify}")
        verify = {"sim": args.sim, "vectors": args.verify}
    # On a remote cluster the tools are the workers' business; here they must be present.
    missing = missing_dask() + ([] if args.scheduler else missing_synth_tools(args.target)
                                + (missing_sim_tools(args.sim) if verify else []))
    if missing:
        raise RuntimeError(f"sweep needs {', '.join(missing)}, which is not installed "
                           f"(pip install 'qdp[synth]')")
    return points, verify


def _sweep(args):
    if args.block is None:
        if args.report is None:
            raise ValueError("sweep: give a BLOCK and --grid to run, or --report FILE.sqlite")
        markdown, plot = write_sweep_report(args.report, args.plot)
        print(markdown, end="")
        print(f"plot: {plot}")
        return EXIT_OK
    if args.report is not None or args.plot is not None:
        raise ValueError("sweep: --report and --plot read a sweep; give them without BLOCK")
    points, verify = _sweep_points(args)
    with SweepDB(args.db) as db:
        todo = pending(points, db, retry_failed=args.retry_failed)
        where = args.scheduler or f"{args.workers or os.cpu_count()} local workers"
        print(f"{args.block}: {len(points)} points, {len(points) - len(todo)} already in "
              f"{args.db}, {len(todo)} to run" + (f" on {where}" if todo else ""), flush=True)
        if todo:
            try:
                with dask_client(args.scheduler, args.workers,
                                 connect_timeout=args.connect_timeout) as client:
                    run_sweep(points, db, client, verify=verify)
            except KeyboardInterrupt:
                stored = len(db.done() & {p.key for p in points})
                print(f"qdp: interrupted: {stored} of {len(points)} points stored in "
                      f"{args.db}; the same command runs the rest", file=sys.stderr)
                return EXIT_INTERRUPTED
        keys = {p.key for p in points}
        mine = [r for r in db.rows() if (r["block"], r["params_hash"], r["target"], r["seed"])
                in keys]
    counts = {s: sum(r["status"] == s for r in mine) for s in ("ok", "does-not-fit", "failed")}
    print(f"{args.db}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + (" (--retry-failed runs the failed ones again)" if counts["failed"] else ""))
    return EXIT_MISMATCH if counts["failed"] else EXIT_OK


def main(argv=None):
    try:
        args = _make_parser().parse_args(argv)
        if args.verb == "list":
            _list()
            return 0
        if args.verb == "generate":
            return _generate(args)
        if args.verb == "synth":
            return _synth(args)
        if args.verb == "prove":
            return _prove(args)
        if args.verb == "sweep":
            return _sweep(args)
        if args.verb == "compile":
            return _compile(args)
        if args.verb == "demo":
            _check_workdir(args.workdir)
            return run_demo(_simulators(args.sim, check=False),
                            args.plot, workdir=args.workdir)
        return _verify(args)
    except (_UsageError, ValueError, TypeError, RuntimeError, OSError) as error:
        print(f"qdp: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
