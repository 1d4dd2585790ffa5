"""Design-space sweeps on Dask: one task per configuration and seed, results in SQLite.

A sweep is a list of :class:`Point`\\ s -- a block, its parameters, a target and a seed --
usually the product of a grid (:func:`grid_points`). :func:`run_sweep` submits one Dask
task per point that is not stored yet (:func:`run_point`: synthesis, and verification if
asked), and the client writes each result to the :class:`~.sweep_db.SweepDB` as soon as
its task finishes (``distributed.as_completed``), one transaction per row. Killing the
sweep therefore loses at most the tasks that were running, and running the same sweep
again runs only what is missing.

Faults: a task whose worker dies is rerun by the Dask scheduler on another worker (its
``allowed-failures``, 3 by default); a synthesis that raises is a ``failed`` row with the
reason, and the sweep goes on; a design that does not fit the device is a
``does-not-fit`` row with what it lacks.

    from qdp.build_scripts.sweep import grid_points, run_sweep
    from qdp.build_scripts.sweep_cluster import dask_client
    from qdp.build_scripts.sweep_db import SweepDB
    points = grid_points("quantizer", {}, {"latency": [2, 6, 10], "lanes": [1, 2]})
    with SweepDB("s.sqlite") as db, dask_client(workers=2) as client:
        run_sweep(points, db, client)
"""

import dataclasses
import datetime
import hashlib
import importlib.metadata
import itertools
import json
import os
import random
import socket
import sys
import tempfile
import time

from ..blocks import get_block
from ..sim.runner import run_bench
from .synth import TARGETS, DoesNotFit, synthesize, tool_versions

__all__ = ["Point", "SweepSummary", "grid_points", "make_point", "params_hash",
           "parse_grid", "pending", "run_point", "run_sweep", "task_key"]

#: The synthesis report's figures that get a column of their own.
_FIGURES = ("luts", "ffs", "dsps", "brams", "lutram", "fmax_mhz", "freq_mhz", "timing_met",
            "latency_cycles", "module", "device", "package", "critical_path", "utilization",
            "cells", "harness")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclasses.dataclass(frozen=True)
class Point:
    """One configuration on one target with one seed: one task, one row.

    Members
    -------
    block : str
        A name of :data:`qdp.blocks.BLOCKS`.
    params : dict
        The parameters as given (the rest take their defaults).
    target : str
        ``"ecp5"`` or ``"ice40"``.
    seed : int
        nextpnr's placement seed, and the verification's stimulus seed.
    effective : dict
        Every parameter as the component resolves it.
    params_hash : str
        :func:`params_hash` of ``effective``: ``{"lanes": 1}`` and ``{}`` are one point.
    """

    block: str
    params: dict
    target: str
    seed: int
    effective: dict
    params_hash: str

    @property
    def key(self):
        """``(block, params_hash, target, seed)``: what the database keeps unique."""
        return self.block, self.params_hash, self.target, self.seed

    def describe(self, names=None):
        """``"quantizer latency=2 lanes=1 ecp5 seed 1"``: the parameters ``names`` (default
        all that are given)."""
        params = " ".join(f"{k}={_text(v)}" for k, v in self.params.items()
                          if names is None or k in names) or "defaults"
        return f"{self.block} {params} {self.target} seed {self.seed}"


def _text(value):
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def params_hash(effective):
    """16 hex digits of the SHA-256 of ``effective`` as canonical JSON."""
    text = json.dumps(effective, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_point(block, params, target="ecp5", seed=1):
    """A validated :class:`Point`.

    Raises
    ------
    ValueError, TypeError
        As the component's constructor raises them (naming the parameter, the value and
        what is allowed), an unknown block, target, or a seed outside 0..2**32-1.
    """
    if target not in TARGETS:
        raise ValueError(f"target: unknown target {target!r}; expected one of "
                         f"{', '.join(TARGETS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 32:
        raise ValueError(f"seed: {seed!r} is out of range (allowed 0..2**32-1)")
    description = get_block(block)
    effective = description.effective_params(description.check(**params))
    return Point(block, dict(params), target, seed, effective, params_hash(effective))


def parse_grid(block, texts):
    """``["latency=2,6,10", "lanes=1,2"]`` as ``{"latency": [2, 6, 10], "lanes": [1, 2]}``.

    Names may be spelled with dashes (``in-width``). Each value is parsed by the
    parameter's kind (an integer, ``true``/``false``, a name, one number); a per-lane list
    cannot be swept (give it as a fixed parameter). Ranges are the component's to check:
    :func:`grid_points` builds every point.

    Raises
    ------
    ValueError
        ``"grid: ..."`` naming the entry: no ``=``, an unknown parameter (with the block's
        parameters), a value of the wrong kind, or a name given twice.
    """
    params = get_block(block).params
    grid = {}
    for text in texts:
        name, sep, values = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            raise ValueError(f"grid: {text!r} is not NAME=V1,V2,...")
        if name not in params:
            raise ValueError(f"grid: {name} is not a parameter of {block} (its parameters: "
                             f"{', '.join(params)})")
        if name in grid:
            raise ValueError(f"grid: {name} is given twice")
        grid[name] = [_grid_value(name, params[name], v.strip()) for v in values.split(",")]
    return grid


def _grid_value(name, param, text):
    """One grid value of parameter ``name`` (a :class:`qdp.blocks.Param`) from text."""
    try:
        if param.kind in ("int", "ints"):
            return int(text, 0)
        if param.kind == "floats":
            return float(text)
    except ValueError:
        kind = "an integer" if param.kind in ("int", "ints") else "a number"
        raise ValueError(f"grid: {name}: expected {kind}, got {text!r}") from None
    if param.kind == "bool":
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError(f"grid: {name}: expected true or false, got {text!r}")
        return text.lower() in _TRUE
    return None if text.lower() == "none" and "none" in param.choices else text


def grid_points(block, fixed, grid, *, targets=("ecp5",), seeds=(1,), sample=None,
                sample_seed=0):
    """Every point of a grid, validated before any task runs.

    Parameters
    ----------
    block : str
        The block.
    fixed : dict
        Parameters every point shares.
    grid : dict of str to list
        Each swept parameter's values (:func:`parse_grid`); the points are their product,
        the first name varying slowest.
    targets, seeds : sequence
        Each configuration runs on every target with every seed.
    sample : int or None
        Only this many configurations, drawn at random from the product (the same ones
        for the same ``sample_seed``, so that a rerun resumes the same sweep).

    Returns
    -------
    list of Point
        In order, without repeats.

    Raises
    ------
    ValueError, TypeError
        A parameter both fixed and swept, a sample larger than the grid, or a point the
        component refuses: its message (parameter, value, what is allowed) and the point.
    """
    both = sorted(set(fixed) & set(grid))
    if both:
        raise ValueError(f"grid: {', '.join(both)} given both as a parameter and in --grid")
    names = list(grid)
    configs = list(itertools.product(*(grid[n] for n in names)))
    if sample is not None:
        if not 1 <= sample <= len(configs):
            raise ValueError(f"random: {sample} is out of range (the grid has "
                             f"{len(configs)} points)")
        picked = sorted(random.Random(sample_seed).sample(range(len(configs)), sample))
        configs = [configs[i] for i in picked]
    points, seen = [], set()
    for values in configs:
        params = {**fixed, **dict(zip(names, values))}
        for target in targets:
            for seed in seeds:
                try:
                    point = make_point(block, params, target, seed)
                except (ValueError, TypeError) as error:
                    where = ", ".join(f"{n}={_text(v)}" for n, v in zip(names, values))
                    raise type(error)(f"{error} (grid point {where})" if where
                                      else str(error)) from None
                if point.key not in seen:
                    seen.add(point.key)
                    points.append(point)
    return points


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _one_line(error):
    """``"RuntimeError: yosys failed ...; logs: /tmp/..."``: an exception on one line."""
    notes = "; ".join(getattr(error, "__notes__", []))
    text = " ".join(str(error).split()) + (f"; {notes}" if notes else "")
    return f"{type(error).__name__}: {text}"


def _versions(target):
    try:
        return tool_versions(target)
    except Exception as error:              # a broken tool is the synthesis's to report
        return {"error": _one_line(error)}


def _synth_columns(report):
    """The report's figures as columns, the whole report beside them."""
    return {**{name: report.get(name) for name in _FIGURES},
            "stage_seconds": report.get("seconds"), "report": report}


def _verify(point, verify):
    """Columns ``verified`` and ``verify`` of one cocotb bench run of ``point``."""
    config = {"vectors": verify["vectors"], "seed": point.seed, "in_pause": 0.3,
              "out_pause": 0.3, "reset": True, "driver": "bulk"}
    with tempfile.TemporaryDirectory(prefix=f"qdp-sweep-{point.block}-") as workdir:
        result = run_bench(point.block, point.params, verify["sim"], config, workdir=workdir)
    s = result.summary
    summary = {"sim": verify["sim"], "vectors": verify["vectors"],
               **{k: s.get(k) for k in ("compared", "mismatches", "beats_in", "beats_out",
                                        "cycles")}}
    if "error" in s:
        return "crashed", {**summary, "error": s["error"]}
    return ("bit-exact" if result.passed else "mismatch"), summary


def run_point(point, verify=None):
    """The task: synthesize ``point`` (and verify it if ``verify`` is given) and return its
    row. Never raises for the point's own failures: a synthesis or bench error is a
    ``failed`` row, a design too large a ``does-not-fit`` row, each with its reason.

    Parameters
    ----------
    point : Point
        What to build.
    verify : dict or None
        ``{"sim": "verilator" | "icarus", "vectors": N}``: also run the golden-checked
        bench (stimulus seed = the point's seed, gaps, backpressure and a reset).

    Returns
    -------
    dict
        The columns of :data:`qdp.build_scripts.sweep_db.COLUMNS` (JSON ones as values).
    """
    started, clock = _now(), time.monotonic()
    row = {"block": point.block, "params_hash": point.params_hash, "target": point.target,
           "seed": point.seed, "params": point.params, "effective_params": point.effective,
           "status": "ok", "reason": None, "tools": _versions(point.target),
           "qdp_version": importlib.metadata.version("qdp"),
           # The process, not only the host: a rerun after a worker died shows up as such.
           "worker": f"{socket.gethostname()}:{os.getpid()}",
           "started_at": started}
    try:
        row.update(_synth_columns(synthesize(point.block, point.params, target=point.target,
                                             seed=point.seed)))
    except DoesNotFit as error:
        row.update(status="does-not-fit", reason=error.reason)
    except Exception as error:
        row.update(status="failed", reason=f"synthesis: {_one_line(error)}")
    if verify is not None:
        try:
            row["verified"], row["verify"] = _verify(point, verify)
        except Exception as error:
            row["verified"], row["verify"] = "crashed", {**verify, "error": _one_line(error)}
        if row["verified"] != "bit-exact" and row["status"] != "failed":
            detail = row["verify"].get("error") or \
                f"{row['verify']['mismatches']} mismatches in {row['verify']['compared']}"
            row.update(status="failed", reason=f"verification on {verify['sim']}: "
                                               f"{row['verified']}: {detail}")
    row.update(finished_at=_now(), seconds=round(time.monotonic() - clock, 2))
    return row


def _lost_row(point, error):
    """The row of a task that never returned (its workers kept dying: ``KilledWorker``)."""
    return {"block": point.block, "params_hash": point.params_hash, "target": point.target,
            "seed": point.seed, "params": point.params, "effective_params": point.effective,
            "status": "failed", "reason": f"task: {_one_line(error)}",
            "finished_at": _now()}


@dataclasses.dataclass
class SweepSummary:
    """What one :func:`run_sweep` did: points asked, already stored, and of those run
    ``ok``, ``does_not_fit`` and ``failed`` (``stored`` counts the rows it wrote)."""

    points: int = 0
    skipped: int = 0
    ok: int = 0
    does_not_fit: int = 0
    failed: int = 0

    @property
    def stored(self):
        return self.ok + self.does_not_fit + self.failed

    @property
    def left(self):
        return self.points - self.skipped - self.stored


def pending(points, db, *, retry_failed=False):
    """The points of ``points`` that ``db`` does not hold (``retry_failed``: its failed
    rows of them are deleted first, so they run again)."""
    if retry_failed:
        db.forget([p.key for p in points], status="failed")
    done = db.done()
    return [p for p in points if p.key not in done]


def run_sweep(points, db, client, *, verify=None, retry_failed=False, progress=True,
              echo=True, on_row=None):
    """Run every point of ``points`` that ``db`` does not hold, one task each on
    ``client``, and store each row as its task finishes.

    Parameters
    ----------
    points : list of Point
        The sweep (:func:`grid_points`).
    db : SweepDB
        Where rows go, one transaction each.
    client : distributed.Client or None
        The cluster; ``None`` is allowed when nothing is left to run.
    verify : dict or None
        As for :func:`run_point`.
    retry_failed : bool
        Run the points stored as failed again.
    progress : bool
        A tqdm bar on stderr: done, failed, left.
    echo : bool
        Print one line per finished point on stdout (through the bar, so they do not
        mix).
    on_row : callable or None
        Called with ``(point, row)`` after each row is stored (tests use it to kill a
        worker in mid-sweep).

    Returns
    -------
    SweepSummary
        A ``KeyboardInterrupt`` leaves the rows stored so far and propagates.
    """
    from distributed import as_completed
    from tqdm import tqdm

    todo = pending(points, db, retry_failed=retry_failed)
    summary = SweepSummary(points=len(points), skipped=len(points) - len(todo))
    if not todo:
        return summary
    varying = _varying(points)
    # The key names the point, so the dashboard and the scheduler's log say which it is.
    futures = {client.submit(run_point, p, verify, key=task_key(p), pure=False): p
               for p in todo}
    with tqdm(total=len(todo), unit="point", file=sys.stderr, disable=not progress,
              dynamic_ncols=True) as bar:
        for future in as_completed(futures, loop=client.loop):
            point = futures.pop(future)
            try:
                row = future.result()
            except Exception as error:      # KilledWorker, a worker without qdp, ...
                row = _lost_row(point, error)
            db.add(row)
            field = row["status"].replace("-", "_")
            setattr(summary, field, getattr(summary, field) + 1)
            bar.set_postfix_str(f"done {summary.ok + summary.does_not_fit}, failed "
                                f"{summary.failed}, left {summary.left}", refresh=False)
            bar.update()
            if echo:
                bar.write(f"{point.describe(varying)}: {_outcome(row)}", file=sys.stdout)
            if on_row is not None:
                on_row(point, row)
    return summary


def task_key(point):
    """The Dask key of ``point``'s task: ``"qdp-quantizer-<params_hash>-ecp5-1"``."""
    return f"qdp-{'-'.join(map(str, point.key))}"


def _varying(points):
    """The parameter names whose value differs between ``points`` (``None``: none do): the
    lines name only these, since the fixed ones are the same on every line."""
    seen = {}
    for p in points:
        for name, value in p.params.items():
            seen.setdefault(name, set()).add(json.dumps(value, sort_keys=True, default=str))
    return {name for name, values in seen.items()
            if len(values) > 1 or any(name not in p.params for p in points)} or None


def _outcome(row):
    """``"ok, 266 MHz, 487 LUT, 452 FF, 4 DSP (16.2 s)"``, or the status and reason."""
    if row["status"] != "ok":
        return f"{row['status']}: {row['reason']}"
    fmax = "no clock" if row["fmax_mhz"] is None else f"{row['fmax_mhz']:.0f} MHz"
    parts = [fmax + ("" if row["timing_met"] else " (missed)"), f"{row['luts']} LUT",
             f"{row['ffs']} FF"]
    parts += [f"{row[k]} {name}" for k, name in (("dsps", "DSP"), ("brams", "BRAM"))
              if row[k]]
    if row.get("verified"):
        parts.append(row["verified"])
    return f"ok, {', '.join(parts)} ({row['seconds']:.1f} s)"
