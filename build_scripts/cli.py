"""The ``qdp`` command: list, generate, verify, synthesize and prove blocks; run the demo.

Every configuration error -- a bad parameter, an unknown block, a missing simulator -- is
one line on stderr and exit status 2; a mismatch against the golden model is exit 1.
"""

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .blocks import BLOCKS, get_block

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _option(name):
    return "--" + name.replace("_", "-")


def _parse_ints(text):
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p, 0) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or a comma list, got {text!r}")
    return values[0] if len(values) == 1 else values


def _parse_choice(text):
    return None if text.lower() == "none" else text


def _int(text):
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


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
        else:
            group.add_argument(_option(name), type=_parse_choice, metavar="NAME", **kwargs)


def _block_params(args):
    return {key[len("param_"):]: value for key, value in vars(args).items()
            if key.startswith("param_")}


def _make_parser():
    parser = _Parser(prog="qdp", description="Bit-exact quantized FPGA datapaths.")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    verbs.add_parser("list", help="blocks and their parameters")
    demo = verbs.add_parser("demo", help="a digits MLP quantized to int8, run bit-exact "
                                         "through the generated hardware")
    demo.add_argument("--sim", choices=("verilator", "icarus", "both"), default="verilator",
                      help="simulator (default verilator)")
    demo.add_argument("--plot", type=Path, metavar="FILE",
                      help="also write the weight-outlier quantization plot (PNG)")
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
            if verb == "generate":
                p.add_argument("-o", "--output", type=Path, default=Path("."),
                               help="output directory (default: .)")
                p.add_argument("--name", help="Verilog module name (default: encodes the "
                                              "configuration)")
                p.add_argument("--target", choices=("ecp5", "ice40"),
                               help="device family: ecp5 uses MULT18X18D primitives with "
                                    "their registers; default portable Verilog")
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
                p.add_argument("--waves", action="store_true",
                               help="record waveforms (Verilator: dump.vcd, Icarus: <module>.fst)")
                p.add_argument("--workdir", type=Path,
                               help="keep the simulation log and summary here")
    return parser


def _list():
    for block in BLOCKS.values():
        print(f"{block.name}: {block.summary}")
        defaults = block.defaults()
        for name, param in block.params.items():
            default = defaults[name]
            allowed = (f"{_option(name)} / --no-{_option(name)[2:]}" if param.kind == "bool"
                       else param.allowed)
            shown = "-" if default is None else str(default).lower() if isinstance(default, bool) \
                else repr(default)
            print(f"  {_option(name):18} default {shown:12} {param.help}; {allowed}")


def _generate(args):
    from .export import generate
    if args.name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.name):
        raise ValueError(f"name: {args.name!r} is not a plain Verilog identifier "
                         f"(letters, digits and _, not starting with a digit)")
    text, manifest = generate(args.block, _block_params(args), name=args.name,
                              target=args.target)
    verilog_path = args.output / f"{manifest['module']}.v"
    manifest_path = args.output / f"{manifest['module']}.json"
    try:
        args.output.mkdir(parents=True, exist_ok=True)
        verilog_path.write_text(text)
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    except OSError as error:
        raise ValueError(f"output: cannot write to {args.output}: "
                         f"{error.strerror or error}") from None
    print(f"{verilog_path}\n{manifest_path}")
    return 0


def _synth(args):
    from .synth import report_markdown, synthesize, write_report

    if args.workdir is not None and args.workdir.exists() and not args.workdir.is_dir():
        raise ValueError(f"workdir: {args.workdir} exists and is not a directory")
    report = synthesize(args.block, _block_params(args), target=args.target,
                        device=args.device, freq_mhz=args.freq, seed=args.seed,
                        workdir=args.workdir)
    try:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        json_path, markdown_path = write_report(report, args.json)
    except OSError as error:
        raise ValueError(f"json: cannot write {args.json}: {error.strerror or error}") from None
    print(report_markdown(report), end="")
    print(f"{json_path}\n{markdown_path}")
    return 0


def _prove(args):
    from ..formal.runner import block_proofs, missing_tools, prove

    if args.depth is not None and args.depth < 1:
        raise ValueError(f"depth: must be a positive integer, got {args.depth}")
    if args.workdir is not None and args.workdir.exists() and not args.workdir.is_dir():
        raise ValueError(f"workdir: {args.workdir} exists and is not a directory")
    missing = missing_tools()
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


def _verify(args):
    from ..sim.runner import run_bench
    from ..sim.toolchain import missing_tools

    params = _block_params(args)
    get_block(args.block).check(**params)          # bad parameters fail before any build
    if not 0 <= args.in_pause < 1 or not 0 <= args.out_pause < 1:
        raise ValueError("in_pause/out_pause: probabilities must lie in [0, 1)")
    if args.vectors < 1:
        raise ValueError(f"vectors: must be >= 1, got {args.vectors}")
    if args.workdir is not None and args.workdir.exists() and not args.workdir.is_dir():
        raise ValueError(f"workdir: {args.workdir} exists and is not a directory")
    sims = ("verilator", "icarus") if args.sim == "both" else (args.sim,)
    for sim in sims:
        missing = missing_tools(sim)
        if missing:
            raise RuntimeError(f"{sim} needs {', '.join(missing)}, which is not installed")
    status = 0
    for sim in sims:
        start = time.monotonic()
        keep = args.workdir is not None or args.waves
        workdir = args.workdir / sim if args.workdir else \
            Path(tempfile.mkdtemp(prefix=f"qdp-{args.block}-{sim}-"))
        result = run_bench(args.block, params, sim,
                           {"vectors": args.vectors, "seed": args.seed,
                            "in_pause": args.in_pause, "out_pause": args.out_pause,
                            "reset": not args.no_reset},
                           waves=args.waves, workdir=workdir)
        seconds = time.monotonic() - start
        s = result.summary
        if "error" in s:
            print(f"{args.block} on {sim}: bench error: {s['error']} (log: {result.log})")
            status = 1
            continue
        verdict = "bit-exact" if result.passed else "MISMATCH"
        print(f"{args.block} on {sim}: {s['compared']} vectors compared, "
              f"{s['mismatches']} mismatches ({verdict}); {s['beats_in']} beats in, "
              f"{s['beats_out']} out, {s['cycles']} cycles, {seconds:.1f} s")
        for line in s.get("reports", []):
            print(f"  {line}")
        if args.waves:
            print(f"  waves and log in {workdir}")
        if not result.passed:
            print(f"  log: {result.log}")
            status = 1
        elif not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


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
        if args.verb == "demo":
            from .demo import run_demo
            return run_demo(("verilator", "icarus") if args.sim == "both" else (args.sim,),
                            args.plot)
        return _verify(args)
    except (_UsageError, ValueError, TypeError, RuntimeError, OSError) as error:
        print(f"qdp: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
