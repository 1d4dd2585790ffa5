"""The per-cycle driver: cocotb stream endpoints with random valid gaps and random
backpressure, Python at every clock edge (:class:`CycleDriver`, ``--driver cycle``).

One :class:`ClockedBench` loop serves every endpoint, so each clock cycle costs two
simulator callbacks however many streams the DUT has. Handshakes are judged from values
sampled in the ``ReadOnly`` phase of the cycle before a rising edge -- the values the DUT
itself samples at that edge -- which makes Verilator and Icarus behave identically.
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from .payload import ints_to_limbs, limbs_to_ints

__all__ = ["pause_generator", "StreamSource", "StreamSink", "ClockedBench", "CycleDriver"]


def pause_generator(probability, seed):
    """Yield ``True`` (pause this cycle) with ``probability``; like cocotbext-axi's
    ``set_pause_generator``, but seeded so a failing run can be replayed."""
    rng = random.Random(seed)
    while True:
        yield probability > 0 and rng.random() < probability


class StreamSource:
    """Drives ``<name>__valid``/``__payload`` from a list of packed beats and reads
    ``__ready``. ``valid`` never waits for ``ready``; a beat stays on the bus until taken."""

    def __init__(self, dut, name, *, pause=None):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.pause = pause or pause_generator(0, 0)
        self.queue = []
        self.position = 0
        self.accepted = 0
        self._driving = False
        self._ready = False

    def send(self, words):
        """Queue packed payload words."""
        self.queue.extend(int(w) for w in words)

    def flush(self):
        """Forget queued beats (used around a reset)."""
        self.queue = self.queue[:self.position]
        self._driving = False
        self.valid.value = 0

    @property
    def idle(self):
        return self.position == len(self.queue) and not self._driving

    def edge(self):
        if self._driving and self._ready:
            self._driving = False
            self.position += 1
            self.accepted += 1
        if not self._driving and self.position < len(self.queue) and not next(self.pause):
            self.payload.value = self.queue[self.position]
            self._driving = True
        self.valid.value = int(self._driving)

    def sample(self):
        self._ready = bool(self.ready.value)


class StreamSink:
    """Drives ``<name>__ready`` with random backpressure and records every beat taken.

    It also checks the DUT's side of the stream rules: once ``valid`` is high without
    ``ready``, ``valid`` stays high and the payload stays the same until the beat moves.
    """

    def __init__(self, dut, name, *, pause=None):
        self.name = name
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.pause = pause or pause_generator(0, 0)
        self.words = []
        self._ready = False
        self._valid = False
        self._stalled = False
        self._word = None
        self.enabled = True

    @property
    def received(self):
        return len(self.words)

    def edge(self):
        self._stalled = self._valid and not self._ready
        if self._valid and self._ready:
            self.words.append(self._word)
        self._ready = self.enabled and not next(self.pause)
        self.ready.value = int(self._ready)

    def sample(self):
        valid = bool(self.valid.value)
        word = self.payload.value.to_unsigned() if valid else None
        if self._stalled:
            if not valid:
                raise AssertionError(f"{self.name}: valid fell without ready "
                                     f"(beat {len(self.words)})")
            if word != self._word:
                raise AssertionError(f"{self.name}: payload changed while stalled "
                                     f"(beat {len(self.words)}: {self._word:#x} -> {word:#x})")
        self._valid, self._word = valid, word


class ClockedBench:
    """Runs sources and sinks on one clock and counts cycles."""

    def __init__(self, dut, clock, endpoints):
        self.dut = dut
        self.clock = clock
        self.endpoints = endpoints
        self.cycles = 0

    @classmethod
    async def start(cls, dut, *, seed, sources, sinks):
        """Start a 100 MHz ``clk``, make the endpoints, idle every stream and hold ``rst``
        for three edges.

        ``sources`` and ``sinks`` map stream names to pause probabilities (valid gaps,
        backpressure); their pause generators are seeded ``seed + 1``, ``seed + 2``, ...
        in that order. Returns the bench and a dict of endpoints by stream name.
        """
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        endpoints = {}
        for offset, (name, pause) in enumerate([*sources.items(), *sinks.items()], 1):
            kind = StreamSource if name in sources else StreamSink
            endpoint = kind(dut, name, pause=pause_generator(pause, seed + offset))
            (endpoint.valid if kind is StreamSource else endpoint.ready).value = 0
            endpoints[name] = endpoint
        dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        return cls(dut, dut.clk, list(endpoints.values())), endpoints

    async def step(self):
        await RisingEdge(self.clock)
        self.cycles += 1
        for endpoint in self.endpoints:
            endpoint.edge()
        await ReadOnly()
        for endpoint in self.endpoints:
            endpoint.sample()

    async def reset(self, rst, cycles=2):
        """Assert synchronous reset for ``cycles`` edges in the middle of the traffic.

        Handshakes up to the first edge still count; then sources drop their unsent beats
        and sinks hold ``ready`` low until reset is released, so no beat moves during it.
        """
        await RisingEdge(self.clock)
        self.cycles += 1
        for endpoint in self.endpoints:
            endpoint.edge()
            if isinstance(endpoint, StreamSource):
                endpoint.flush()
            else:
                endpoint.enabled = endpoint._ready = False
                endpoint.ready.value = 0
        rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.clock)
            self.cycles += 1
        rst.value = 0
        for endpoint in self.endpoints:
            if isinstance(endpoint, StreamSink):
                endpoint.enabled = True
                endpoint._stalled = False       # reset may legitimately drop valid
        await ReadOnly()
        for endpoint in self.endpoints:
            endpoint.sample()


class CycleDriver:
    """The per-cycle driver of the bench engine: :class:`StreamSource` and
    :class:`StreamSink` endpoints on a :class:`ClockedBench`, Python at every edge.

    Its interface is :class:`qdp.sim.bulk.BulkDriver`'s: :meth:`begin` queues a phase's
    input beats, :meth:`run_until` runs until goals are met (or a limit), :meth:`moved`,
    :meth:`received` and :meth:`stamps` report the beats since :meth:`begin` (stamps
    count the edges since it, the first being 0; input streams have them only when
    :meth:`begin` asks).
    """

    def __init__(self, dut, module, *, seed, sources, sinks):
        self.dut, self.module, self.seed = dut, module, seed
        self.sources, self.sinks = dict(sources), dict(sinks)
        self.clock, self.endpoints = None, {}
        self.seconds = {}               # nothing to split: Python runs every cycle
        self._start, self._stamps = {}, {}

    async def start(self):
        if hasattr(self.dut, "bulk_mode"):
            self.dut.bulk_mode.value = 0        # the harness passes the ports through
        self.clock, self.endpoints = await ClockedBench.start(
            self.dut, seed=self.seed, sources=self.sources, sinks=self.sinks)

    @property
    def cycles(self):
        return self.clock.cycles - self._start["cycle"]

    def full_rate(self):
        for endpoint in self.endpoints.values():
            endpoint.pause = pause_generator(0, 0)

    def begin(self, inputs, *, input_stamps=False):
        self._input_stamps = input_stamps
        self._start = {s: self._count(s) for s in self.endpoints}
        self._start["cycle"] = self.clock.cycles
        self._stamps = {s: [] for s in self.endpoints}
        for stream, limbs in inputs.items():
            self.endpoints[stream].send(limbs_to_ints(limbs))

    def _count(self, stream):
        endpoint = self.endpoints[stream]
        return endpoint.accepted if isinstance(endpoint, StreamSource) else endpoint.received

    def moved(self, stream):
        return self._count(stream) - self._start[stream]

    def received(self, stream):
        words = self.endpoints[stream].words[self._start[stream]:]
        return ints_to_limbs(words, -(-self.module.widths[stream] // 64))

    def stamps(self, stream):
        if stream in self.sources and not self._input_stamps:
            return []
        return self._stamps[stream]

    async def _step(self):
        before = {s: self._count(s) for s in self.endpoints}
        await self.clock.step()
        for stream, count in before.items():
            if self._count(stream) > count:
                self._stamps[stream].append(self.cycles - 1)

    async def run_until(self, goals, limit):
        start = self.cycles
        while not all(self.moved(s) >= n for s, n in goals.items()) and \
                self.cycles - start <= limit:
            await self._step()

    async def drain(self, cycles):
        for stream in self.sinks:
            self.endpoints[stream].pause = pause_generator(0, 0)
        for _ in range(cycles):
            await self._step()

    async def reset(self):
        await self.clock.reset(self.dut.rst)
