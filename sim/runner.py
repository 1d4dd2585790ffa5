"""cocotb-runner glue: export a block, build it once per simulator, run a bench on it.

Builds are cached under ``$QDP_BUILD_DIR`` (default ``~/.cache/qdp/build``) in a folder
named after the module and a hash of its Verilog text, the tool versions and the build
flags (:data:`VERILATOR_ARGS`, the make variables), so tests of
the same configuration share one Verilator build, also across pytest-xdist workers (a
file lock serializes the first build).
"""

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import cocotb
import amaranth
from cocotb_tools.runner import Verilator, get_results, get_runner

from ..blocks import generate, get_block
from .harness import DEPTH, bench_top, harness
from .toolchain import missing_tools, setup_verilator, verilator

__all__ = ["BenchResult", "build", "run_bench", "throughput_builds"]

TIMESCALE = ("1ns", "1ps")
#: The cocotb test module of a block's AXI4-Stream form.
AXIS_BENCH = "qdp.sim.axis_tb"
# Amaranth's Verilog is correct but not lint-clean (operand widths differ on purpose).
# The harness's clock is a delay loop, which Verilator runs with --timing (C++20
# coroutines: GCC needs -fcoroutines spelled out).
# Verilator's MergeCond pass is quadratic on the float-model netlists: it took 36 s of the
# 39 s verilation of absmax_dequantize fp16 -> bf16 (model=float32), 3.5 s without it; the
# C++ it leaves unmerged costs g++ about 2 s more there and nothing measurable elsewhere.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--timing", "-CFLAGS", "-fcoroutines",
                  "-fno-merge-cond"]
# The model's eval code (OPT_FAST) is compiled at -O0, overriding the -O1 that
# :func:`qdp.sim.toolchain.setup_verilator` puts in MAKEFLAGS: the suite's benches simulate
# for seconds after a build of up to a minute. Cold builds (no ccache) + runs of five
# benches (small quantizer, nf4 bf16 B=4096 x16, absmax_dequantize fp16 model=float32,
# 16x16 MAC array 1M MACs, exhaustive 2x2 MAC array), CPU seconds:
#   -O1:                   builds 127.9, runs 10.0
#   -O1, -fno-merge-cond:  builds 113.0, runs 10.9
#   -O0, -fno-merge-cond:  builds  65.9, runs 10.9
# -O0 simulates 2-5x slower (bench_sim's 8x8 MAC array, 200,000 elements: 0.22 s of
# simulation at -O1, 1.09 s at -O0, 0.35 s at -Og), so throughput measurements should set
# QDP_VERILATOR_OPT_FAST=-O1 (the flags are part of the build cache key).
OPT_FAST_DEFAULT = "-O0"


@dataclasses.dataclass
class BenchResult:
    passed: bool
    summary: dict
    log: Path

    @property
    def compared(self):
        return self.summary.get("compared", 0)

    @property
    def mismatches(self):
        return self.summary.get("mismatches", 0)


class _Verilator(Verilator):
    """cocotb's Verilator runner without ``--public-flat-rw`` (unless ``public``): the
    bench top marks its own ports public (:mod:`qdp.sim.harness`), and a model whose every
    signal is public runs at a fraction of the speed. An AXI4-Stream top has no harness,
    so cocotbext-axi needs it public."""

    def __init__(self, public=False):
        super().__init__()
        self.public = public

    def _build_command(self):
        commands = super()._build_command()
        if not self.public:
            commands[0] = [arg for arg in commands[0] if arg != "--public-flat-rw"]
        commands[1] = commands[1] + _make_args()    # make's own arguments beat MAKEFLAGS
        return commands


#: The model's optimization for simulation-speed measurements.
OPT_FAST_THROUGHPUT = "-O1"


@contextlib.contextmanager
def throughput_builds():
    """Within the block, Verilator models are built (and cached apart) at
    :data:`OPT_FAST_THROUGHPUT` unless ``QDP_VERILATOR_OPT_FAST`` says otherwise: what a
    simulation-speed figure is measured on."""
    saved = os.environ.get("QDP_VERILATOR_OPT_FAST")
    os.environ["QDP_VERILATOR_OPT_FAST"] = saved or OPT_FAST_THROUGHPUT
    try:
        yield
    finally:
        if saved is None:
            del os.environ["QDP_VERILATOR_OPT_FAST"]


def _make_args():
    """The make variables every Verilator build gets (see :data:`OPT_FAST_DEFAULT`)."""
    return [f"OPT_FAST={os.environ.get('QDP_VERILATOR_OPT_FAST') or OPT_FAST_DEFAULT}"]


def _runner(sim, public=False):
    return _Verilator(public) if sim == "verilator" else get_runner(sim)


def _cache_root():
    # An empty QDP_BUILD_DIR means the default, not the current directory.
    return Path(os.environ.get("QDP_BUILD_DIR") or Path.home() / ".cache" / "qdp" / "build")


def _tool_version(sim):
    if sim == "verilator":
        return f"verilator-{getattr(verilator, '__version__', 'from PATH')}"
    return "icarus"


def _build_flags(sim):
    """What, besides the sources and tool versions, decides what a build compiles: the
    Verilator and make arguments and the compiler optimisation levels in MAKEFLAGS."""
    if sim != "verilator":
        return ""
    setup_verilator()
    opt = [word for word in os.environ.get("MAKEFLAGS", "").split() if word.startswith("OPT_")]
    return " ".join(VERILATOR_ARGS + opt + _make_args())


def _cache_key(text, bench_text, sim, waves):
    parts = [text, bench_text, _tool_version(sim), cocotb.__version__, str(waves)]
    flags = _build_flags(sim)
    if flags:           # icarus keys stay as they were
        parts.append(flags + ("" if bench_text else " --public-flat-rw"))
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=None)
def _source_fingerprint():
    """What the exported Verilog of given parameters depends on besides them: the
    package's place and the sources of its hdl, blocks and golden layers, and Amaranth."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1(f"{root}\n{amaranth.__version__}\n".encode())
    for path in sorted(p for layer in ("hdl", "blocks", "golden")
                       for p in (root / layer).glob("*.py")):
        digest.update(f"{path.relative_to(root)}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _exported(block, params, interface="amaranth"):
    """:func:`qdp.blocks.generate`'s ``(verilog_text, manifest)`` of the portable module,
    kept under the build cache: elaborating and converting a block costs about half a
    second of CPU, which every bench launch would pay again for the same configuration.
    The key covers the parameters and :func:`_source_fingerprint`; the manifest is the
    JSON one on a miss too, so both paths give the same."""
    spec = json.dumps([block, params, interface], sort_keys=True, default=str)
    key = hashlib.sha1(f"{spec}\n{_source_fingerprint()}".encode()).hexdigest()[:16]
    path = _cache_root() / "verilog" / f"{block}-{key}.json"
    try:
        cached = json.loads(path.read_text())
        return cached["verilog"], cached["manifest"]
    except (OSError, ValueError, KeyError):
        pass
    text, manifest = generate(block, params, interface=interface)
    manifest = json.loads(json.dumps(manifest))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                     suffix=".tmp") as f:
        json.dump({"verilog": text, "manifest": manifest}, f)
    os.replace(f.name, path)            # whole or absent, whatever runs beside it
    return text, manifest


def build(block, params, sim, *, waves=False, exported=None, interface="amaranth"):
    """Export and build ``block`` for ``sim``; return ``(build_dir, module_name)``.
    ``exported`` is :func:`qdp.blocks.generate`'s ``(verilog_text, manifest)`` of these
    parameters when the caller has it already (the component is then not built again).
    ``interface="axis"`` builds the AXI4-Stream form as the simulation's top level (its
    bench drives the AXI ports; there is no bulk harness around it)."""
    build_dir, manifest = _build(block, params, sim, waves, exported, interface)
    return build_dir, manifest["module"]


def _toplevel(manifest):
    """The simulation's top level: the bulk harness around the module, or the AXI4-Stream
    module itself."""
    return manifest["module"] if manifest.get("interface") == "axis" else bench_top(manifest)


def _build(block, params, sim, waves, exported=None, interface="amaranth"):
    """:func:`build`, returning ``(build_dir, manifest)``; the manifest is also written as
    ``<build_dir>/<module>.json`` (rewritten when it changed, since the cache key covers
    the Verilog text only)."""
    missing = missing_tools(sim)
    if missing:
        raise RuntimeError(f"sim: {sim} needs {', '.join(missing)}, which is not installed")
    setup_verilator()
    text, manifest = exported or _exported(block, params, interface)
    if manifest.get("interface", "amaranth") != interface:
        raise ValueError(f"exported: a module with the {manifest.get('interface')} interface, "
                         f"not {interface}")
    name = manifest["module"]
    bench_text = "" if interface == "axis" else harness(manifest, DEPTH)
    key = _cache_key(text, bench_text, sim, waves)
    build_dir = _cache_root() / f"{name}-{sim}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    done = build_dir / "built.json"
    manifest_file, manifest_text = build_dir / f"{name}.json", json.dumps(manifest, indent=2)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not manifest_file.exists() or manifest_file.read_text() != manifest_text:
            manifest_file.write_text(manifest_text)
        if not done.exists():
            source, bench_source = build_dir / f"{name}.v", build_dir / f"{name}_bench.v"
            source.write_text(text)
            bench_source.write_text(bench_text)
            runner = _runner(sim, public=not bench_text)
            runner.build(sources=[source, bench_source] if bench_text else [source],
                         hdl_toplevel=_toplevel(manifest),
                         build_dir=build_dir,
                         always=True, timescale=TIMESCALE, waves=waves,
                         build_args=VERILATOR_ARGS if sim == "verilator" else [],
                         log_file=build_dir / "build.log")
            done.write_text(json.dumps({"module": name, "sim": sim}))
    return build_dir, manifest


# The exception line that ends a Python traceback, as cocotb logs it (indented).
_EXCEPTION = re.compile(r"^\s*((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|"
                        r"Interrupt|Failure)(?::.*)?)$")


def crash_reason(log):
    """Why a bench wrote no summary: the last exception its log names, in one line."""
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return "the bench wrote no summary and no log"
    for line in reversed(lines):
        match = _EXCEPTION.match(line)
        if match:
            return match.group(1).strip()
    return "the bench wrote no summary (no exception in its log)"


def run_bench(block, params, sim, config, *, waves=False, workdir=None, bench=None,
              exported=None, interface="amaranth"):
    """Run the block's cocotb bench (or the cocotb test module ``bench``) with ``config``
    (a JSON-able dict); ``exported`` and ``interface`` as for :func:`build` (with
    ``"axis"`` the bench is :data:`AXIS_BENCH`, the block's traffic on its AXI4-Stream
    form).

    The bench gets the module's manifest in its config (``manifest``), so it never
    rebuilds the component. It writes its summary (elements compared, mismatches,
    mismatch reports, beat counts, cycles) to a JSON file that this returns as
    :class:`BenchResult`.
    """
    build_dir, manifest = _build(block, params, sim, waves, exported, interface)
    name = manifest["module"]
    if interface == "axis":
        bench = bench or AXIS_BENCH
    # The simulator runs inside workdir, so every path handed to it must be absolute.
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"qdp-{block}-{sim}-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "config.json"
    summary_file = workdir / "summary.json"
    config_file.write_text(json.dumps({"block": block, "params": params, "manifest": manifest,
                                       **config, "depth": DEPTH}))
    summary_file.unlink(missing_ok=True)
    results_xml = workdir / "results.xml"
    log = workdir / "sim.log"
    runner = _runner(sim)
    # Icarus dumps into the shared build folder unless told otherwise; Verilator writes
    # dump.vcd into the test folder.
    plusargs = [f"+dumpfile_path={workdir / (name + '.fst')}"] if waves and sim == "icarus" \
        else []
    try:
        runner.test(test_module=bench or get_block(block).bench,
                    hdl_toplevel=_toplevel(manifest),
                    hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=workdir, results_xml=str(results_xml),
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
