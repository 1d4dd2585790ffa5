"""The one stream bench engine that every block's cocotb bench runs on.

A block's bench configures it with a :class:`qdp.sim.traffic.Traffic`: the input beats of
each phase and what each output stream must carry. The engine does the rest, alike for
every block: it starts a driver (the bulk driver, :class:`qdp.sim.bulk.BulkDriver`, or the
per-cycle one, :class:`qdp.sim.stream.CycleDriver`: random valid gaps on the inputs,
random backpressure on every output, the stream rules checked on every output), runs the
phases -- when ``reset`` is set, a first stream cut by a synchronous reset in the middle
(what came out before it must be an exact prefix), then the checked stream to completion
-- drains every output for a while so that a duplicated beat would show, counts the beats
(exactly as many as expected), times out a stalled stream, scores every field in its
scoreboards and writes the summary, also when the bench fails.

Config (JSON, from :func:`qdp.sim.runner.run_bench`): ``block``, ``params``,
``manifest`` (the module's manifest, see :class:`qdp.sim.module.Module`), ``vectors``
(elements), ``seed``, ``in_pause`` and ``out_pause`` (probabilities), ``reset`` (bool),
``golden`` (overrides for the golden call: used to prove that a wrong golden fails),
``driver`` (``"bulk"``, the default: the harness plays and captures the streams, see
:mod:`qdp.sim.bulk`; ``"cycle"``: Python drives every cycle, see
:class:`qdp.sim.stream.CycleDriver`), ``depth`` (the harness's memory depth, which the
runner built), ``exhaustive`` (bool: the checked stream is the block's exhaustive one), and
whatever keys the block's bench reads.
"""

import importlib
import json
import os

import numpy as np

from ..blocks import get_block
from .module import Module
from .payload import pack_limbs, unpack_limbs
from .scoreboard import Scoreboard
from .bulk import BulkDriver
from .harness import DEPTH
from .stream import CycleDriver
from .traffic import PhaseResult

__all__ = ["bench_config", "write_summary", "exhaustive_elements", "StreamBench",
           "run_stream_bench", "DRIVERS"]

DEFAULTS = {"vectors": 1000, "seed": 1, "in_pause": 0.3, "out_pause": 0.3, "reset": True,
            "driver": "bulk", "depth": DEPTH, "exhaustive": False}
DRIVERS = ("bulk", "cycle")


def make_driver(dut, module, config, sink_pauses):
    """The driver ``config["driver"]`` names, for ``module``'s streams: input pauses
    ``config["in_pause"]``, output pauses ``sink_pauses``, seeded ``config["seed"]``."""
    kwargs = dict(seed=config["seed"], sinks=sink_pauses,
                  sources={s: config["in_pause"] for s in module.inputs})
    if config["driver"] == "cycle":
        return CycleDriver(dut, module, **kwargs)
    if config["driver"] != "bulk":
        raise ValueError(f"driver: {config['driver']!r} is not one of {', '.join(DRIVERS)}")
    return BulkDriver(dut, module, depth=config["depth"], **kwargs)


def exhaustive_elements(block, params):
    """Elements an exhaustive check of ``block`` compares for ``params`` (a
    :class:`~qdp.sim.module.Module`'s ``params``): its bench module's
    ``exhaustive_elements``. ``ValueError`` naming why when there is none or the
    configuration is too large."""
    count = getattr(importlib.import_module(get_block(block).bench), "exhaustive_elements",
                    None)
    if count is None:
        raise ValueError(f"exhaustive: {block} has no exhaustive check")
    return count(params)


def bench_config():
    """The config file named by ``$QDP_BENCH_CONFIG``, with :data:`DEFAULTS` filled in."""
    with open(os.environ["QDP_BENCH_CONFIG"]) as f:
        return {**DEFAULTS, **json.load(f)}


def write_summary(summary):
    with open(os.environ["QDP_BENCH_SUMMARY"], "w") as f:
        json.dump(summary, f, indent=2)


async def run_stream_bench(dut, make_traffic):
    """Run the bench that ``make_traffic(bench)`` (a :class:`~qdp.sim.traffic.Traffic`
    class) configures on ``dut``, with the config of :func:`bench_config`."""
    await StreamBench(dut, bench_config()).run(make_traffic)


class StreamBench:
    """One bench run. Traffic reads ``config``, ``params`` (the module's parameters, see
    :class:`~qdp.sim.module.Module`), ``rng`` (NumPy, seeded ``seed``), ``since_reset``
    (input beats accepted since the last reset) and ``boards``, and may add to
    ``summary``."""

    def __init__(self, dut, config, *, driver=None):
        self.dut, self.config = dut, config
        # ``driver(dut, module, config, sink_pauses)`` makes the driver; default
        # :func:`make_driver` (the AXI4-Stream bench, :mod:`qdp.sim.axis_tb`, brings its own).
        self._make_driver = driver or make_driver
        self.summary = {"beats_in": 0, "beats_out": 0, "cycles": 0}
        self.module = self.params = self.latency = self.rng = None     # set by run()
        self.boards, self.counts, self.sink_pauses, self.drain = {}, {}, {}, 0
        self.driver = None
        self.since_reset = 0
        self._cycles, self._beats, self._phase_open = 0, {}, False

    async def run(self, make_traffic):
        try:
            await self._run(make_traffic)
        except Exception as error:
            message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            write_summary({**self.summary, **self._scores(), **self._tally(),
                           "error": message})
            raise
        self.summary.update(self._scores(), **self._tally())
        write_summary(self.summary)
        boards = self.boards.values()
        assert all(b.mismatches == 0 for b in boards), "\n".join(
            [f"{b.name}: {b.mismatches} of {b.compared} differ" for b in boards]
            + [r for b in boards for r in b.reports])

    async def _run(self, make_traffic):
        self.module = Module(self.config["manifest"])
        self.params, self.latency = self.module.params, self.module.latency
        self.summary["lanes"] = self.module.lanes
        self.summary["driver"] = self.config["driver"]
        self.rng = np.random.default_rng(self.config["seed"])
        traffic = make_traffic(self)
        self.boards = {key: Scoreboard(name) for key, name in
                       (traffic.boards or {"compared": traffic.name}).items()}
        self.counts = traffic.counts
        self.drain = 2 * self.latency + traffic.drain_extra + 8
        self.sink_pauses = {s: self.config[key] for s, key in traffic.sinks.items()}
        self.driver = self._make_driver(self.dut, self.module, self.config, self.sink_pauses)
        self._beats = {key: 0 for key in self.counts}
        await self.driver.start()
        if self.config["reset"]:
            phase = traffic.interrupted()
            if phase is not None:
                await self._interrupted(phase)
        if self.config["exhaustive"]:
            before = self.boards["compared"].compared
            await self._checked(traffic.exhaustive())
            self.summary["exhaustive"] = self.boards["compared"].compared - before
        else:
            await self._checked(traffic.checked())
        for phase in traffic.more():
            await self._checked(phase)

    # -- the two kinds of phase ----------------------------------------------------------

    async def _interrupted(self, phase):
        """Run ``phase`` until its ``reset_after`` counts, reset, and score what came out
        before the reset: beats in flight are flushed, those out must be exact."""
        label = "before reset: " + phase.label
        sent = self._begin(phase)
        first_input = next(iter(phase.inputs))
        after = phase.reset_after or {first_input: sent[first_input] // 2}
        await self._run_until(after, self._timeout(phase.timeout_beats))
        await self.driver.reset()
        result = self._result(phase, None)
        accepted = result.accepted[first_input]
        for stream, expect in phase.outputs.items():
            due = min(expect.beats, accepted) if expect.per_input else expect.beats
            if result.received[stream] > due:
                raise AssertionError(f"{label}{stream}: {result.received[stream]} beats out, "
                                     f"at most {due} due ({accepted} in)")
        self.since_reset = 0
        self._score(phase, result, label)

    async def _checked(self, phase):
        """Run ``phase`` until every output has its beats, drain, and score all of them."""
        if phase.full_rate:
            self.driver.full_rate()
        sent = self._begin(phase)
        await self._run_until({s: e.beats for s, e in phase.outputs.items()},
                              self._timeout(phase.timeout_beats))
        # Keep taking beats for a while: a duplicated beat would show up here.
        await self.driver.drain(self.drain)
        result = self._result(phase, phase.outputs)
        counts = [(s, result.accepted[s], n) for s, n in sent.items()] + \
            [(s, result.received[s], e.beats) for s, e in phase.outputs.items()]
        if any(got != want for _, got, want in counts):
            raise AssertionError(phase.label + ", ".join(
                f"{s}: {got} beats (of {want})" for s, got, want in counts))
        self.since_reset += sum(result.accepted.values())
        self._score(phase, result, phase.label)

    # -- the pieces ----------------------------------------------------------------------

    def _begin(self, phase):
        """Queue the phase's input beats; return how many per input stream."""
        words = {s: pack_limbs(self.module.fields[s], fields) for s, fields in phase.inputs.items()}
        self.driver.begin(words, input_stamps=phase.input_stamps)
        self._phase_open = True
        return {s: len(w) for s, w in words.items()}

    async def _run_until(self, goals, limit):
        """Run until each stream of ``goals`` has moved that many beats in the phase;
        ``TimeoutError`` when ``limit`` cycles pass first."""
        await self.driver.run_until(goals, limit)
        if not all(self.driver.moved(s) >= n for s, n in goals.items()):
            moved = ", ".join(f"{s} {self.driver.moved(s)}" for s in self.module.streams)
            raise TimeoutError(f"stream stalled: no completion after {limit} cycles "
                               f"(beats so far: {moved})")

    def _timeout(self, beats):
        stretch = 1 / max(1e-3, 1 - self.config["in_pause"]) / max(
            1e-3, 1 - max(self.sink_pauses.values()))
        return int(beats * stretch * 4) + 4 * self.latency + 200

    def _result(self, phase, expected):
        """The phase's :class:`PhaseResult`; its ``cycles`` run to the last beat of
        ``expected`` (``{output: Expect}``), ``None`` without."""
        driver = self.driver
        streams = [*self.module.inputs, *self.module.outputs]
        stamps = {s: np.asarray(driver.stamps(s), dtype=np.int64) for s in streams}
        cycles = None
        if expected:
            cycles = max((int(stamps[s][e.beats - 1]) + 1 for s, e in expected.items()
                          if e.beats and len(stamps[s]) >= e.beats), default=0)
        self._close_phase()
        return PhaseResult(
            accepted={s: driver.moved(s) for s in phase.inputs},
            received={s: driver.moved(s) for s in phase.outputs}, cycles=cycles,
            stamps=stamps,
            got={s: unpack_limbs(self.module.fields[s], driver.received(s))
                 for s in phase.outputs})

    def _score(self, phase, result, label):
        for stream, expect in phase.outputs.items():
            n, got = result.received[stream], result.got[stream]
            for check in expect.checks:
                columns = got[check.fields[0]] if len(check.fields) == 1 else \
                    np.stack([got[f] for f in check.fields], axis=1)
                self.boards[check.key].compare(
                    columns, np.asarray(check.want)[:n],
                    {k: np.asarray(v)[:n] for k, v in check.shown.items()},
                    phase=label + check.note)
        if phase.on_done is not None:
            phase.on_done(result)

    def _scores(self):
        boards = self.boards.values()
        return {**{key: board.compared for key, board in self.boards.items()},
                "mismatches": sum(b.mismatches for b in boards),
                "reports": [r for b in boards for r in b.reports]}

    def _close_phase(self):
        """Add the phase's cycles and beats to the totals (once)."""
        if self._phase_open:
            self._phase_open = False
            self._cycles += self.driver.cycles
            for key, stream in self.counts.items():
                self._beats[key] = self._beats.get(key, 0) + self.driver.moved(stream)

    def _tally(self):
        if self.driver is not None:
            self._close_phase()             # a phase that failed counts too
        tally = {"cycles": self._cycles, **self._beats}
        if self.driver is not None:
            tally.update({f"seconds_{k}": round(v, 3) for k, v in self.driver.seconds.items()})
        return tally

