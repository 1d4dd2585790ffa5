"""The bulk driver: the bench engine's streams played and captured by the Verilog harness
(:mod:`qdp.sim.harness`), so Python acts once per memory load instead of every cycle.

:class:`BulkDriver` has the interface of :class:`qdp.sim.stream.CycleDriver`: a phase's
input beats are queued with :meth:`~BulkDriver.begin`, the simulation runs until goals
(beats moved per stream) are met with :meth:`~BulkDriver.run_until`, and the beats that
moved come back as packed words with the cycle each moved in. Beats are written to the
harness's stimulus memories as hex files ``depth`` at a time; captures are read back when
a memory fills and when a phase ends. Between two of those the simulator runs alone.

Every Python action happens between clock edges: after ``bulk_attention`` rises, values
are read in the ``ReadOnly`` phase and commands are written after the next falling edge,
to be acted on at the rising edge after it; one or two cycles pass in which the streams
go on under the harness's own rules (a refill is a valid gap, a full capture is
backpressure).
"""

import time
from pathlib import Path

import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from .harness import COMMANDS, lfsr_seeds
from .memfile import read_words, write_words
from .payload import bit_field

__all__ = ["BulkDriver", "pause_threshold"]


def pause_threshold(probability):
    """The harness's 16-bit pause threshold for a pause ``probability``."""
    return min(0xFFFF, max(0, round(probability * 0x10000)))


class _Capture:
    """What one stream moved since :meth:`BulkDriver.begin`: words (limbs) and stamps."""

    def __init__(self, limbs):
        self.words, self.stamps = [np.zeros((0, limbs), dtype=np.uint64)], []

    def add(self, words, stamps):
        if words is not None:
            self.words.append(words)
        self.stamps.append(stamps)

    def get(self):
        stamps = np.concatenate(self.stamps) if self.stamps else np.zeros(0, dtype=np.int64)
        return np.concatenate(self.words), stamps


class BulkDriver:
    """Drives the harness of ``dut`` (the bench top) for the bench engine.

    ``module`` is the :class:`qdp.sim.module.Module`; ``sources`` and ``sinks`` map
    stream names to pause probabilities; ``seed`` seeds the harness LFSRs; ``workdir``
    is where the hex files go (the simulator's working directory: the harness opens them
    by relative name).
    """

    def __init__(self, dut, module, *, seed, sources, sinks, depth, workdir="."):
        self.dut, self.module, self.depth = dut, module, depth
        self.sources, self.sinks = dict(sources), dict(sinks)
        self.streams = module.streams           # the harness's bit order
        self.widths = module.widths
        self.seed, self.workdir = seed, Path(workdir)
        self.cycles = 0                 # cycles since begin()
        # Seconds the simulator ran the streams alone, and spent loading and dumping memories.
        self.seconds = {"simulating": 0.0, "loading": 0.0}
        self._queue, self._captures = {}, {}

    def _port(self, name):
        return getattr(self.dut, name)

    async def start(self):
        """Switch the harness to bulk mode (it starts its clock), seed the LFSRs and hold
        ``rst`` for three edges."""
        for stale in self.workdir.glob("bulk_*.hex"):
            stale.unlink()          # from an earlier run in the same folder
        self.dut.bulk_mode.value = 1
        self.dut.rst.value = 1
        for stream, seed in zip(self.streams, lfsr_seeds(self.seed, len(self.streams))):
            self._port(f"bulk_seed_{stream}").value = seed
            self._port(f"bulk_goal_{stream}").value = 0
            self._set_pause(stream, {**self.sources, **self.sinks}[stream])
        for stream in self.module.inputs:
            self._port(f"bulk_count_{stream}").value = 0
            self._port(f"bulk_more_{stream}").value = 0
            self._port(f"bulk_reload_{stream}").value = 1
        self.dut.bulk_goal_en.value = 0
        self.dut.bulk_deadline.value = 0xFFFFFFFF
        self.dut.bulk_cmd.value = 0
        await FallingEdge(self.dut.bulk_clk)
        # Every harness register gets a value here: LFSR seeds, empty memories, counts.
        self.dut.bulk_cmd.value = sum(COMMANDS[c] for c in ("seed", "load", "dump", "start"))
        await RisingEdge(self.dut.bulk_clk)
        self.dut.bulk_cmd.value = 0
        for _ in range(2):
            await RisingEdge(self.dut.bulk_clk)
        await FallingEdge(self.dut.bulk_clk)
        self.dut.rst.value = 0

    def _set_pause(self, stream, probability):
        self._port(f"bulk_pause_{stream}").value = pause_threshold(probability)

    def full_rate(self):
        """No valid gaps and no backpressure from now on."""
        for stream in self.streams:
            self._set_pause(stream, 0)

    # -- a phase -------------------------------------------------------------------------

    def begin(self, inputs, *, input_stamps=False):
        """Queue ``{input stream: words}`` (limbs, :func:`~qdp.sim.payload.pack_limbs`) for
        the next :meth:`run_until` (``input_stamps``: also record the cycle each input beat
        moved in); counts,
        captures and :attr:`cycles` start from here."""
        self._queue = {s: np.asarray(inputs[s], dtype=np.uint64) if s in inputs else
                       np.zeros((0, 1), dtype=np.uint64) for s in self.module.inputs}
        self._captures = {s: _Capture(-(-self.widths[s] // 64)) for s in self.streams}
        self._moved = {s: 0 for s in self.streams}
        self._started = False
        self.cycles = 0
        self.dut.bulk_stamp_inputs.value = int(input_stamps)

    def moved(self, stream):
        return self._moved[stream]

    def received(self, stream):
        return self._captures[stream].get()[0]

    def stamps(self, stream):
        return self._captures[stream].get()[1]

    async def run_until(self, goals, limit):
        """Run until each stream of ``goals`` has moved that many beats since
        :meth:`begin`, or for ``limit`` cycles more."""
        await self._run(goals, self.cycles + limit)

    async def drain(self, cycles):
        """Take every output beat, with no backpressure, for ``cycles`` cycles."""
        for stream in self.sinks:
            self._set_pause(stream, 0)
        await self._run({}, self.cycles + cycles)
        await self._command(COMMANDS["dump"])

    async def reset(self, cycles=2):
        """Hold ``rst`` for ``cycles`` edges; the beats that moved before are captured."""
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.bulk_clk)
        await FallingEdge(self.dut.bulk_clk)
        self.dut.rst.value = 0
        await self._command(COMMANDS["dump"])

    # -- the harness protocol ------------------------------------------------------------

    async def _run(self, goals, deadline):
        """Run until the goals are met (none: until ``deadline``) or the deadline passes,
        refilling stimulus and emptying captures on the way."""
        dut = self.dut
        mask = 0
        for k, stream in enumerate(self.streams):
            if stream in goals:
                mask |= 1 << k
                self._port(f"bulk_goal_{stream}").value = goals[stream]
        dut.bulk_goal_en.value = mask
        dut.bulk_deadline.value = min(deadline, 0xFFFFFFFF)
        # Every wait starts with a command: it lowers bulk_attention for a cycle.
        if self._started:
            command = COMMANDS["ack"]
        else:
            command = COMMANDS["load"] | COMMANDS["dump"] | COMMANDS["start"]
            self._refill(self.module.inputs)
            self._started = True
        while True:
            await self._command(command)
            started = time.perf_counter()
            await RisingEdge(dut.bulk_attention)
            self.seconds["simulating"] += time.perf_counter() - started
            await ReadOnly()
            self._read_counts()
            status = int(dut.bulk_status.value)
            await FallingEdge(dut.bulk_clk)
            if (mask and all(self._moved[s] >= n for s, n in goals.items())) or \
                    self.cycles >= deadline:
                return
            empty = [s for k, s in enumerate(self.streams) if status >> k & 1]
            refill = [s for s in empty if s in self._queue and len(self._queue[s])]
            self._refill(refill)
            command = COMMANDS["dump"] | (COMMANDS["load"] if refill else 0)

    def _read_counts(self):
        """Read the cycle and beat counts, and fail on a broken stream rule."""
        self.cycles = int(self.dut.bulk_cycle.value)
        for stream in self.streams:
            self._moved[stream] = int(self._port(f"bulk_moved_{stream}").value)
        for stream in self.module.outputs:
            violations = int(self._port(f"bulk_violations_{stream}").value)
            if violations:
                kind = ("payload changed while stalled"
                        if int(self._port(f"bulk_violation_kind_{stream}").value)
                        else "valid fell without ready")
                cycle = int(self._port(f"bulk_first_violation_{stream}").value)
                raise AssertionError(f"{stream}: {kind} (first in cycle {cycle} of the phase, "
                                     f"{violations} cycles in all)")

    def _refill(self, streams):
        """Write the next memory-full of each of these inputs' queues and mark them for the
        next ``load`` command (inputs not named keep their memory and their place)."""
        for stream in self.module.inputs:
            self._port(f"bulk_reload_{stream}").value = int(stream in streams)
        for stream in streams:
            queue = self._queue[stream]
            chunk, self._queue[stream] = queue[:self.depth], queue[self.depth:]
            if len(chunk):
                write_words(self.workdir / f"bulk_{stream}.hex", chunk, self.widths[stream])
            self._port(f"bulk_count_{stream}").value = len(chunk)
            self._port(f"bulk_more_{stream}").value = int(len(self._queue[stream]) > 0)

    async def _command(self, command):
        """Issue ``command`` at the next rising edge and collect what a dump wrote; called
        and returning just after a falling edge."""
        self.dut.bulk_cmd.value = command
        started = time.perf_counter()
        await RisingEdge(self.dut.bulk_clk)
        self.dut.bulk_cmd.value = 0
        await ReadOnly()
        self.seconds["loading"] += time.perf_counter() - started
        if command & COMMANDS["dump"]:
            self._collect()
        self._read_counts()
        await FallingEdge(self.dut.bulk_clk)

    def _collect(self):
        for stream in self.streams:
            path = self.workdir / f"bulk_{stream}.out.hex"
            if not path.exists():
                continue
            width = self.widths[stream]
            if stream in self.module.inputs:
                self._captures[stream].add(None, bit_field(read_words(path, 32), 0, 32))
            else:
                words = read_words(path, width + 32)
                stamps = bit_field(words, width, 32)
                words = words[:, :-(-width // 64)].copy()
                if width % 64:
                    words[:, -1] &= np.uint64((1 << (width % 64)) - 1)
                self._captures[stream].add(words, stamps)
            path.unlink()
