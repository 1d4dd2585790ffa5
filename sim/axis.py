"""The bench's AXI4-Stream driver: the AXI4-Stream form of a block
(:class:`qdp.hdl.axis.AxiStreamWrapper`) driven by cocotbext-axi's ``AxiStreamSource`` and
``AxiStreamSink`` with pause generators, under the bench engine (:mod:`qdp.sim.bench`).

The engine and every block's traffic think in payloads; this driver turns them into AXI
beats with the mapping the manifest records (``axis``, see
:func:`qdp.hdl.axis.axis_streams`), so the bench reads the TDATA layout from the same data
a user's IP integrator reads:

- :func:`beat_manifest` gives the engine a manifest whose payload per stream is the AXI
  beat ``{tuser, tlast, tdata}`` (TDATA at bit 0, TLAST above it, TUSER above that), with
  the block's fields at their TDATA offsets and ``last``/``first`` at TLAST/TUSER bit 0:
  stimulus, golden expectation and scoreboard stay the block's own;
- :class:`AxisDriver` has the interface of :class:`qdp.sim.stream.CycleDriver`. Input
  beats go to an ``AxiStreamSource`` per input stream as frames (a frame ends at a beat
  whose ``last`` is set; on a stream without ``last``, every beat is a frame of its own);
  an ``AxiStreamSink`` per output stream applies backpressure. A monitor samples every
  interface in the ``ReadOnly`` phase of each cycle, counts and stamps the beats that move
  (``tvalid & tready`` with ``aresetn`` high), checks the DUT's side of the rules (a
  stalled beat stays valid and unchanged; ``tlast`` is 1 on every beat of an output stream
  without packets) and that the beats the sinks assembled into frames are exactly the
  beats it saw (nothing lost, duplicated or reordered on the way through cocotbext-axi).
  :meth:`AxisDriver.reset` pulls ``aresetn`` low for two cycles mid-stream.
"""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from .payload import ints_to_limbs, limbs_to_ints
from .stream import pause_generator

__all__ = ["beat_manifest", "AxisDriver"]


def _beat_fields(row):
    """The fields of one AXI beat word of stream ``row`` (an ``axis`` stream mapping)."""
    width = row["tdata_width"]
    fields = [{k: f[k] for k in ("field", "offset", "width", "signed")} for f in row["tdata"]]
    if row["tlast"]["field"] is not None:
        fields.append({"field": row["tlast"]["field"], "offset": width, "width": 1,
                       "signed": False})
    for bit in (row["tuser"] or {"bits": ()})["bits"]:
        fields.append({"field": bit["field"], "offset": width + 1 + bit["bit"], "width": 1,
                       "signed": False})
    return fields


def _beat_width(row):
    return row["tdata_width"] + 1 + (row["tuser"]["width"] if row["tuser"] else 0)


def beat_manifest(manifest):
    """``manifest`` (of an AXI4-Stream module) with one payload port per stream: the AXI
    beat word ``tdata | tlast << W | tuser << (W + 1)`` (``W`` the TDATA width), its
    fields named as the block names them. :class:`qdp.sim.module.Module` reads it like the
    manifest of a block with Amaranth ports."""
    streams = manifest["axis"]["streams"]
    ports = [{"name": row["interface"], "direction": row["direction"],
              "width": _beat_width(row), "stream": role, "role": "payload",
              "fields": _beat_fields(row)} for role, row in streams.items()]
    return {**manifest, "ports": ports}


class _Monitor:
    """One interface as the driver sees it in ``ReadOnly``: every beat that moved (its
    beat word and cycle) and, on an output, the stall rules."""

    def __init__(self, dut, row):
        self.row, self.name = row, row["interface"]
        self.width = row["tdata_width"]
        signals = ("tdata", "tvalid", "tready", "tlast") + (("tuser",) if row["tuser"] else ())
        self.signals = {s: getattr(dut, f"{self.name}_{s}") for s in signals}
        self.output = row["direction"] == "output"
        self.packets = row["tlast"]["field"] is not None
        self.words, self.stamps = [], []
        self._stalled = None            # the beat word held while valid & ~ready

    def _word(self):
        word = self.signals["tdata"].value.to_unsigned()
        word |= int(self.signals["tlast"].value) << self.width
        if "tuser" in self.signals:
            word |= int(self.signals["tuser"].value) << (self.width + 1)
        return word

    def sample(self, cycle, live):
        """Sample the interface in ``ReadOnly`` of ``cycle``; ``live``: ``aresetn`` high."""
        valid = live and bool(self.signals["tvalid"].value)
        ready = bool(self.signals["tready"].value)
        word = self._word() if valid else None
        if self.output and self._stalled is not None:
            if not valid:
                raise AssertionError(f"{self.name}: tvalid fell without tready "
                                     f"(beat {len(self.words)})")
            if word != self._stalled:
                raise AssertionError(f"{self.name}: TDATA/TLAST/TUSER changed while stalled "
                                     f"(beat {len(self.words)}: {self._stalled:#x} -> "
                                     f"{word:#x})")
        if valid and ready:
            if self.output and not self.packets and not word >> self.width & 1:
                raise AssertionError(f"{self.name}: tlast low on beat {len(self.words)} of a "
                                     f"stream without packets (it must be 1 on every beat)")
            self.words.append(word)
            self.stamps.append(cycle)
        self._stalled = word if valid and not ready else None

    def forget_stall(self):
        self._stalled = None            # a reset may legitimately drop tvalid


class AxisDriver:
    """The bench engine's driver for an AXI4-Stream module (see the module docstring).

    ``streams`` is the manifest's ``axis["streams"]``; ``sources`` and ``sinks`` map
    stream roles to pause probabilities, their generators seeded ``seed + 1``, ``seed +
    2`` ... in that order (as :class:`qdp.sim.stream.CycleDriver` seeds them).
    """

    def __init__(self, dut, module, streams, *, seed, sources, sinks, summary=None):
        self.dut, self.module, self.streams, self.seed = dut, module, streams, seed
        # ``framed_<role>``: beats of complete frames the sink of each output delivered
        # and the check found equal to the bus (in the bench summary, when given).
        self.summary = {} if summary is None else summary
        self.sources, self.sinks = dict(sources), dict(sinks)
        self.endpoints, self.monitors = {}, {}
        self.seconds = {}               # nothing to split: Python runs every cycle
        self._cycle = 0
        self._start, self._input_stamps = {"cycle": 0}, False
        self._framed = {}               # per output: beats the sink framed since the reset
        self._epoch = {}                # per output: index of the first beat since then

    async def start(self):
        """Start a 100 MHz ``aclk``, make the endpoints and hold ``aresetn`` low for three
        edges."""
        dut = self.dut
        cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
        dut.aresetn.value = 0
        for offset, (role, pause) in enumerate([*self.sources.items(), *self.sinks.items()],
                                               1):
            row = self.streams[role]
            kind = AxiStreamSource if role in self.sources else AxiStreamSink
            bus = AxiStreamBus.from_prefix(dut, row["interface"])
            endpoint = kind(bus, dut.aclk, dut.aresetn, reset_active_level=False)
            endpoint.set_pause_generator(pause_generator(pause, self.seed + offset))
            endpoint.log.setLevel("WARNING")        # a line per frame otherwise
            self.endpoints[role] = endpoint
            self.monitors[role] = _Monitor(dut, row)
        self._framed = {role: [] for role in self.sinks}
        self._epoch = {role: 0 for role in self.sinks}
        for _ in range(3):
            await RisingEdge(dut.aclk)
            self._cycle += 1
        dut.aresetn.value = 1

    @property
    def cycles(self):
        return self._cycle - self._start["cycle"]

    def _unpause(self, roles):
        for role in roles:
            self.endpoints[role].clear_pause_generator()
            self.endpoints[role].pause = False

    def full_rate(self):
        self._unpause(self.endpoints)

    def begin(self, inputs, *, input_stamps=False):
        """Queue a phase's input beats (beat words as limbs, :func:`beat_manifest`)."""
        self._input_stamps = input_stamps
        self._start = {role: len(m.words) for role, m in self.monitors.items()}
        self._start["cycle"] = self._cycle
        for role, limbs in inputs.items():
            row = self.streams[role]
            for frame in _frames(limbs_to_ints(limbs), row):
                self.endpoints[role].send_nowait(frame)

    def moved(self, role):
        return len(self.monitors[role].words) - self._start[role]

    def received(self, role):
        self._check_frames(role)
        words = self.monitors[role].words[self._start[role]:]
        return ints_to_limbs(words, -(-self.module.widths[role] // 64))

    def stamps(self, role):
        if role in self.sources and not self._input_stamps:
            return []
        start = self._start["cycle"]
        return [c - start for c in self.monitors[role].stamps[self._start[role]:]]

    async def _step(self):
        await RisingEdge(self.dut.aclk)
        self._cycle += 1
        await ReadOnly()
        live = bool(self.dut.aresetn.value)
        for monitor in self.monitors.values():
            monitor.sample(self._cycle - 1, live)

    async def run_until(self, goals, limit):
        start = self._cycle
        while not all(self.moved(s) >= n for s, n in goals.items()) and \
                self._cycle - start <= limit:
            await self._step()

    async def drain(self, cycles):
        self._unpause(self.sinks)
        for _ in range(cycles):
            await self._step()

    async def reset(self, cycles=2):
        """``aresetn`` low for ``cycles`` edges in the middle of the traffic: the sources
        drop their unsent frames, and the frames the sinks assembled so far are checked
        against the monitor (a reset drops the sink's partial frame)."""
        await RisingEdge(self.dut.aclk)
        self._cycle += 1
        for role in self.sources:
            self.endpoints[role].clear()
        self.dut.aresetn.value = 0
        for _ in range(cycles):
            await RisingEdge(self.dut.aclk)
            self._cycle += 1
        # The sinks are in reset now: their queues hold every frame completed before it.
        for role in self.sinks:
            self._check_frames(role)
            self._framed[role] = []
            self._epoch[role] = len(self.monitors[role].words)
        self.dut.aresetn.value = 1
        for monitor in self.monitors.values():
            monitor.forget_stall()
        await ReadOnly()
        for monitor in self.monitors.values():
            monitor.sample(self._cycle - 1, True)

    def _check_frames(self, role):
        """The beats the sink of ``role`` framed since the last reset must be the beats the
        monitor saw, in order; those after the last complete frame may only be a frame
        still open (no ``tlast`` among them)."""
        if role not in self.sinks:
            return
        sink, row = self.endpoints[role], self.streams[role]
        while not sink.empty():
            beats = _beats(sink.recv_nowait(compact=False), row)
            self._framed[role] += beats
            key = f"framed_{role}"
            self.summary[key] = self.summary.get(key, 0) + len(beats)
        seen = self.monitors[role].words[self._epoch[role]:]
        framed = self._framed[role]
        if seen[:len(framed)] != framed:
            bad = next(k for k, (a, b) in enumerate(zip(seen, framed)) if a != b) \
                if len(framed) <= len(seen) else len(seen)
            raise AssertionError(f"{row['interface']}: the sink's frames differ from the "
                                 f"beats on the bus from beat {bad} on ({len(framed)} framed, "
                                 f"{len(seen)} seen)")
        width = row["tdata_width"]
        if any(word >> width & 1 for word in seen[len(framed):]):
            raise AssertionError(f"{row['interface']}: a frame closed by tlast on the bus "
                                 f"never reached the sink")


def _frames(words, row):
    """The beat words of one input stream as cocotbext-axi frames."""
    width, nbytes = row["tdata_width"], row["tdata_width"] // 8
    packets = row["tlast"]["field"] is not None
    mask = (1 << width) - 1
    frames, data, user = [], bytearray(), []
    for position, word in enumerate(words):
        word = int(word)
        data += (word & mask).to_bytes(nbytes, "little")
        user += [word >> (width + 1)] * nbytes
        if not packets or word >> width & 1:
            frames.append(AxiStreamFrame(bytes(data), tuser=user if row["tuser"] else None))
            data, user = bytearray(), []
    if data:
        raise ValueError(f"{row['interface']}: the phase's last beat does not set last: an "
                         f"AXI4-Stream source ends every frame with TLAST")
    return frames


def _beats(frame, row):
    """A frame the sink received, as beat words."""
    width, nbytes = row["tdata_width"], row["tdata_width"] // 8
    data = bytes(frame.tdata)
    count = len(data) // nbytes
    words = []
    for k in range(count):
        word = int.from_bytes(data[k * nbytes:(k + 1) * nbytes], "little")
        word |= int(k == count - 1) << width
        if row["tuser"]:
            word |= int(frame.tuser[k * nbytes]) << (width + 1)
        words.append(word)
    return words
