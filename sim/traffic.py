"""What a block's bench tells the bench engine (:mod:`qdp.sim.bench`): its traffic, phase
by phase, and what every output stream must carry.

A block's bench is a :class:`Traffic` subclass. The engine asks it for the stream that a
mid-stream reset cuts (:meth:`Traffic.interrupted`), the checked stream
(:meth:`Traffic.checked`, or :meth:`Traffic.exhaustive` for an exhaustive check) and any
further checked streams (:meth:`Traffic.more`), each a
:class:`Phase`: the input beats per input stream, as payload fields, and per output stream
an :class:`Expect` (its beat count and the :class:`Check` of its fields against the golden
model). Phases are asked for one at a time, right before they run, so a phase may depend
on what ran before (the LFSR position after a reset, :attr:`StreamBench.since_reset`).
"""

import dataclasses

import numpy as np

__all__ = ["Check", "Expect", "Phase", "PhaseResult", "Traffic", "ElementwiseTraffic",
           "lane_ramps", "sweep_scales", "block_runs", "as_blocks", "block_marks"]


@dataclasses.dataclass
class Check:
    """One exact comparison on an output stream.

    ``want`` has one row per beat; the payload fields ``fields`` of every beat received
    (stacked as columns when several, e.g. ``("first", "last")``) must equal it.
    ``shown`` maps input names to arrays with one row per beat, for mismatch reports.
    ``key`` names the scoreboard (:attr:`Traffic.boards`), ``note`` is added to the phase
    label of its reports.
    """

    want: object
    shown: dict
    fields: tuple = ("data",)
    key: str = "compared"
    note: str = ""


@dataclasses.dataclass
class Expect:
    """An output stream's beats in one phase: ``beats`` of them, each ``check`` exact.
    ``per_input``: one output beat per input beat, so a reset can leave at most as many
    out as went in."""

    beats: int
    checks: list
    per_input: bool = False


@dataclasses.dataclass
class Phase:
    """One stream of traffic.

    Members
    -------
    inputs : dict
        ``{input stream: payload fields}`` (see :mod:`qdp.sim.payload`).
    outputs : dict
        ``{output stream: Expect}``.
    timeout_beats : int
        Beats that set the phase's timeout (stretched by the pause probabilities).
    label : str
        Prefix of its mismatch reports (the engine prefixes ``before reset:`` to the
        interrupted phase).
    reset_after : dict or None
        For the interrupted phase: reset once each stream named here has moved this many
        beats in the phase; default half the first input stream's beats.
    full_rate : bool
        No valid gaps and no backpressure from this phase on (measuring the steady state).
    input_stamps : bool
        Record the cycle of every input beat too (:attr:`PhaseResult.stamps`); output beats
        always have theirs.
    on_done : callable or None
        ``on_done(result)`` with the :class:`PhaseResult`, after the phase is scored
        (summary entries, checks of the whole phase).
    """

    inputs: dict
    outputs: dict
    timeout_beats: int
    label: str = ""
    reset_after: dict = None
    full_rate: bool = False
    input_stamps: bool = False
    on_done: object = None


@dataclasses.dataclass
class PhaseResult:
    """What a phase did: beats ``accepted`` per input stream and ``received`` per output
    stream, the unpacked payloads ``got`` per output stream, ``cycles`` from its first beat
    offered to its last expected beat received (``None`` when a reset cut it), and
    ``stamps``: per stream the cycle of every beat that moved (counted from the phase's
    start; input streams only when the phase asked for ``input_stamps``)."""

    accepted: dict
    received: dict
    got: dict
    cycles: object
    stamps: dict


class Traffic:
    """A block's bench: subclass it and set or override what differs.

    The engine constructs it with the running :class:`qdp.sim.bench.StreamBench` (its
    ``config``, ``params``, ``rng``, ``summary``, ``since_reset``) before the clock starts.
    """

    #: Name of the default scoreboard (the prefix of its mismatch reports).
    name = "bench"
    #: ``{summary key: scoreboard name}``; ``None`` means ``{"compared": name}``.
    boards = None
    #: Output streams and the config key of their backpressure probability, in the order
    #: their pause generators are seeded.
    sinks = {"o": "out_pause"}
    #: Summary keys that count the beats of a stream.
    counts = {"beats_in": "i", "beats_out": "o"}
    #: Drain cycles beyond ``2 * latency + 8`` after the last expected beat, in which a
    #: duplicated beat would show.
    drain_extra = 0

    def __init__(self, bench):
        self.bench = bench

    def interrupted(self):
        """The phase that a reset cuts in the middle; ``None``: this bench has none."""
        return None

    def checked(self):
        """The checked stream."""
        raise NotImplementedError

    def exhaustive(self):
        """The checked stream of an exhaustive check (``exhaustive`` in the config): every
        input the block's bench module counts in its ``exhaustive_elements(params)``."""
        raise ValueError(f"exhaustive: {self.bench.config['block']} has no exhaustive check")

    def more(self):
        """Further checked phases, after :meth:`checked`."""
        return ()


class ElementwiseTraffic(Traffic):
    """The bench of a block with one output beat per input beat (``i`` to ``o``), every
    lane compared with the golden model: ``vectors`` elements checked, a quarter as many
    cut by the reset. A subclass names its bench module's functions:

    - ``stimulus(params, beats, rng)`` and ``exhaustive_stimulus(params)``, each giving
      ``(fields, scale)``: the input payload fields (``data`` of shape
      ``(beats, lanes)``) and the scale values of every beat;
    - ``expected(params, fields, scale, golden_overrides)``: the ``(beats, lanes)``
      results;

    and ``element``, the name its input elements have in mismatch reports (the scale
    values not ``None`` are shown beside them).
    """

    element = "x"

    def __init__(self, bench):
        super().__init__(bench)
        self.beats = max(1, -(-bench.config["vectors"] // bench.params.lanes))
        self.blocks = getattr(bench.params, "block_scale", False)
        if self.blocks:         # one scale per block on its own stream, marks on i and o
            self.boards = {"compared": self.name, "compared_flags": self.name + " first/last"}
            self.counts = {**self.counts, "scales_in": "scales"}

    def interrupted(self):
        return self._phase(*self.stimulus(self.bench.params, max(4, self.beats // 4),
                                          self.bench.rng))

    def checked(self):
        return self._phase(*self.stimulus(self.bench.params, self.beats, self.bench.rng))

    def exhaustive(self):
        return self._phase(*self.exhaustive_stimulus(self.bench.params))

    def _phase(self, fields, scale):
        q = self.bench.params
        beats = len(fields["data"])
        want = self.expected(q, fields, scale, self.bench.config.get("golden"))
        shown = {self.element: fields["data"],
                 **{k: v for k, v in scale.items() if v is not None}}
        checks = [Check(np.asarray(want).reshape(beats, q.lanes), shown)]
        inputs = {"i": fields}
        if self.blocks:
            inputs = as_blocks(fields, self.bench.rng)
            marks = np.stack([inputs["i"]["first"], inputs["i"]["last"]], axis=1)
            checks.append(Check(marks, shown, fields=("first", "last"), key="compared_flags",
                                note="(first, last) "))
        return Phase(inputs, {"o": Expect(beats, checks, per_input=True)},
                     timeout_beats=beats)


class BlockScaleTraffic(ElementwiseTraffic):
    """The bench of a block that takes blocks on ``i`` (``first``/``last``) and one scale
    per block on ``scale``, and gives one ``o`` beat per ``i`` beat, its data and flags
    compared. A subclass names its bench module's functions, as for
    :class:`ElementwiseTraffic` but with both inputs' fields (``block_fields``) and the
    scale of every beat: ``stimulus(params, beats, rng)``, ``exhaustive_stimulus(params,
    rng)`` and ``expected(params, fields, per_beat, golden_overrides)``. ``per_beat`` is
    one array (shown in mismatch reports as ``scale``) or a dict of the constants' fields,
    one array each, shown by their names (an array with a second axis would be read as
    one value per lane).
    """

    element = "q"
    counts = {"beats_in": "i", "scales_in": "scale", "beats_out": "o"}

    def __init__(self, bench):
        super().__init__(bench)
        self.boards = {"compared": self.name + " o.data",
                       "compared_flags": self.name + " o.first/last"}

    def exhaustive(self):
        return self._phase(*self.exhaustive_stimulus(self.bench.params, self.bench.rng))

    def _phase(self, fields, per_beat):
        beats = len(fields["i"]["data"])
        want = self.expected(self.bench.params, fields, per_beat,
                             self.bench.config.get("golden"))
        constants = per_beat if isinstance(per_beat, dict) else {"scale": per_beat}
        shown = {self.element: fields["i"]["data"], **constants}
        flags = np.stack([fields["i"]["first"], fields["i"]["last"]], axis=1)
        checks = [Check(want, shown),
                  Check(flags, shown, fields=("first", "last"), key="compared_flags",
                        note="(first, last) ")]
        return Phase(fields, {"o": Expect(beats, checks, per_input=True)},
                     timeout_beats=beats)


def block_fields(data, block_beats, scale_fields):
    """Both inputs of a :class:`BlockScaleTraffic` block: ``i`` with ``data`` (beats,
    lanes) in blocks of ``block_beats`` beats, ``first`` and ``last``; ``scale`` with
    ``scale_fields``, one beat per block."""
    first, last, _ = block_marks(block_beats)
    return {"i": {"data": data, "first": first, "last": last}, "scale": scale_fields}


def block_marks(block_beats):
    """Per beat of blocks of ``block_beats`` beats: ``(first, last, block index)``."""
    beats = np.asarray(block_beats, dtype=np.int64)
    ends = np.cumsum(beats)
    first = np.zeros(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    last = first.copy()
    first[ends - beats] = 1
    last[ends - 1] = 1
    return first, last, np.repeat(np.arange(len(beats)), beats)


def block_lengths(rng, beats, max_beats=8):
    """Lengths of random blocks of 1..``max_beats`` beats covering ``beats`` beats."""
    starts = np.unique(block_runs(rng, beats, max_beats))
    return np.diff(np.append(starts, beats))


def lane_ramps(count, lanes, lo=0):
    """Every one of ``count`` input values in every lane, lane ``l`` starting at its own
    offset ``l * count // lanes``: ``(count, lanes)`` values ``lo .. lo + count - 1``."""
    ramp = np.arange(count, dtype=np.int64)
    return np.stack([(ramp + lane * (count // lanes)) % count + lo for lane in range(lanes)],
                    axis=1)


def sweep_scales(data, sets, names, lanes, per_lane):
    """``data`` once per row of ``sets`` (one value per name in ``names``): the input
    fields and the scale fields of every beat (per lane: repeated across the lanes)."""
    sets = np.array(sets, dtype=np.int64)
    rows = sets[np.repeat(np.arange(len(sets)), len(data))]
    scale = {name: (np.repeat(rows[:, k:k + 1], lanes, axis=1) if per_lane else rows[:, k])
             for k, name in enumerate(names)}
    return {"data": np.tile(data, (len(sets), 1)), **scale}, scale


def block_runs(rng, beats, max_beats=8):
    """Per beat, the index of the first beat of its block: blocks of 1..``max_beats``
    beats (the last one cut to fit). Indexing per-beat values with it holds each block's
    first value through the block."""
    lengths = rng.integers(1, max_beats + 1, beats)
    starts = (np.cumsum(lengths) - lengths)
    starts = starts[starts < beats]
    return np.repeat(starts, np.diff(np.append(starts, beats)))


def as_blocks(fields, rng, names=("scale", "zero_point")):
    """Per-beat run-time scale ``fields`` as the two streams of a block-scale block:
    ``i`` with ``data``, ``first`` and ``last`` -- a block starts wherever a scale field
    changes, and at random places besides -- and ``scales``, one beat per block."""
    beats = len(fields["data"])
    start = rng.random(beats) < 0.125
    start[0] = True
    for name in names:
        v = np.asarray(fields[name]).reshape(beats, -1)
        start[1:] |= (v[1:] != v[:-1]).any(axis=1)
    last = np.append(start[1:], True)
    return {"i": {"data": fields["data"], "first": start.astype(np.int64),
                  "last": last.astype(np.int64)},
            "scales": {name: np.asarray(fields[name])[start] for name in names}}
