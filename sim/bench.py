"""The one stream bench engine that every block's cocotb bench runs on.

A block's bench configures it with a :class:`qdp.sim.traffic.Traffic`: the input beats of
each phase and what each output stream must carry. The engine does the rest, alike for
every block: it starts the clock and the stream endpoints (random valid gaps on the
inputs, random backpressure on every output, protocol checks in the sinks), runs the
phases -- when ``reset`` is set, a first stream cut by a synchronous reset in the middle
(what came out before it must be an exact prefix), then the checked stream to completion
-- drains every output for a while so that a duplicated beat would show, counts the beats
(exactly as many as expected), times out a stalled stream, scores every field in its
scoreboards and writes the summary, also when the bench fails.

Config (JSON, from :func:`qdp.sim.runner.run_bench`): ``block``, ``params``,
``manifest`` (the module's manifest, see :class:`qdp.sim.module.Module`), ``vectors``
(elements), ``seed``, ``in_pause`` and ``out_pause`` (probabilities), ``reset`` (bool),
``golden`` (overrides for the golden call: used to prove that a wrong golden fails), and
whatever keys the block's bench reads.
"""

import json
import os

import numpy as np

from .module import Module
from .payload import pack, unpack
from .scoreboard import Scoreboard
from .stream import ClockedBench, StreamSource, pause_generator
from .traffic import PhaseResult

__all__ = ["bench_config", "write_summary", "StreamBench", "run_stream_bench"]

DEFAULTS = {"vectors": 1000, "seed": 1, "in_pause": 0.3, "out_pause": 0.3, "reset": True}


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

    def __init__(self, dut, config):
        self.dut, self.config = dut, config
        self.summary = {"beats_in": 0, "beats_out": 0, "cycles": 0}
        self.module = self.params = self.latency = self.rng = None     # set by run()
        self.boards, self.counts, self.sink_pauses, self.drain = {}, {}, {}, 0
        self.clock, self.endpoints = None, {}
        self.since_reset = 0
        self._sent, self._stamps = {}, {}

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
        self.rng = np.random.default_rng(self.config["seed"])
        traffic = make_traffic(self)
        self.boards = {key: Scoreboard(name) for key, name in
                       (traffic.boards or {"compared": traffic.name}).items()}
        self.counts = traffic.counts
        self.drain = 2 * self.latency + traffic.drain_extra + 8
        self.sink_pauses = {s: self.config[key] for s, key in traffic.sinks.items()}
        self.clock, self.endpoints = await ClockedBench.start(
            self.dut, seed=self.config["seed"],
            sources={s: self.config["in_pause"] for s in self.module.inputs},
            sinks=self.sink_pauses)
        if self.config["reset"]:
            phase = traffic.interrupted()
            if phase is not None:
                await self._interrupted(phase)
        await self._checked(traffic.checked())
        for phase in traffic.more():
            await self._checked(phase)

    # -- the two kinds of phase ----------------------------------------------------------

    async def _interrupted(self, phase):
        """Run ``phase`` until its ``reset_after`` counts, reset, and score what came out
        before the reset: beats in flight are flushed, those out must be exact."""
        label = "before reset: " + phase.label
        start = self._begin(phase)
        first_input = next(iter(phase.inputs))
        after = phase.reset_after or {first_input: self._sent[first_input] // 2}
        await self._run_until(lambda: all(self._moved(s) - start[s] >= n
                                          for s, n in after.items()),
                              self._timeout(phase.timeout_beats))
        await self.clock.reset(self.dut.rst)
        result = self._result(phase, start, None)
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
            for endpoint in self.endpoints.values():
                endpoint.pause = pause_generator(0, 0)
        start = self._begin(phase)
        await self._run_until(lambda: all(self._moved(s) - start[s] >= e.beats
                                          for s, e in phase.outputs.items()),
                              self._timeout(phase.timeout_beats))
        cycles = self.clock.cycles - start["cycle"]
        # Keep taking beats for a while: a duplicated beat would show up here.
        for stream in self.sink_pauses:
            self.endpoints[stream].pause = pause_generator(0, 0)
        for _ in range(self.drain):
            await self._step()
        result = self._result(phase, start, cycles)
        counts = [(s, result.accepted[s], n) for s, n in self._sent.items()] + \
            [(s, result.received[s], e.beats) for s, e in phase.outputs.items()]
        if any(got != want for _, got, want in counts):
            raise AssertionError(phase.label + ", ".join(
                f"{s}: {got} beats (of {want})" for s, got, want in counts))
        self.since_reset += sum(result.accepted.values())
        self._score(phase, result, phase.label)

    # -- the pieces ----------------------------------------------------------------------

    def _begin(self, phase):
        """Queue the phase's input beats; return where every count stood."""
        start = {s: self._moved(s) for s in self.endpoints}
        start["cycle"] = self.clock.cycles
        self._stamps = {s: [] for s in self.endpoints}
        self._sent = {}
        for stream, fields in phase.inputs.items():
            words = pack(self.module.fields[stream], fields)
            self._sent[stream] = len(words)
            self.endpoints[stream].send(words)
        return start

    def _moved(self, stream):
        endpoint = self.endpoints[stream]
        return endpoint.accepted if isinstance(endpoint, StreamSource) else endpoint.received

    async def _step(self):
        before = {s: self._moved(s) for s in self.endpoints}
        await self.clock.step()
        for stream, count in before.items():
            if self._moved(stream) > count:
                self._stamps[stream].append(self.clock.cycles)

    async def _run_until(self, done, limit):
        start = self.clock.cycles
        while not done():
            if self.clock.cycles - start > limit:
                moved = ", ".join(f"{s} {self._moved(s)}" for s in self.endpoints)
                raise TimeoutError(f"stream stalled: no completion after {limit} cycles "
                                   f"(beats so far: {moved})")
            await self._step()

    def _timeout(self, beats):
        stretch = 1 / max(1e-3, 1 - self.config["in_pause"]) / max(
            1e-3, 1 - max(self.sink_pauses.values()))
        return int(beats * stretch * 4) + 4 * self.latency + 200

    def _result(self, phase, start, cycles):
        received = {s: self._moved(s) - start[s] for s in phase.outputs}
        return PhaseResult(
            accepted={s: self._moved(s) - start[s] for s in phase.inputs},
            received=received, cycles=cycles, stamps=self._stamps,
            got={s: unpack(self.module.fields[s], self.endpoints[s].words[start[s]:])
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

    def _tally(self):
        if self.clock is None:
            return {}
        return {"cycles": self.clock.cycles,
                **{key: self._moved(stream) for key, stream in self.counts.items()}}

