"""A float edge block in Amaranth's simulator against its bench's golden expectation:
the bench module's ``stimulus`` and ``expected`` (:mod:`qdp.sim.quantize_linear_tb`,
:mod:`qdp.sim.dequantize_linear_tb`), random gaps and backpressure."""

import numpy as np

from qdp.sim.amaranth_stream import run_streams
from qdp.sim.payload import unpack
from qdp.sim.traffic import as_blocks


def beats_of(fields):
    """One ``ctx.set`` payload per beat of a stream's payload fields: a dict of them, or
    the bare lane list of a payload that is ``data`` alone."""
    n = len(next(iter(fields.values())))
    beats = [{k: ([int(x) for x in v[b]] if np.ndim(v[b]) else int(v[b]))
              for k, v in fields.items()} for b in range(n)]
    return [beat["data"] for beat in beats] if set(fields) == {"data"} else beats


def check_block(component, bench, beats, seed, **pauses):
    """Run ``beats`` beats of ``bench.stimulus`` through ``component``; assert every
    element equals ``bench.expected`` (and, with a scale per block, that the block marks
    come through); return the cycles taken."""
    rng = np.random.default_rng(seed)
    fields, scale = bench.stimulus(component, beats, rng)
    want = bench.expected(component, fields, scale)
    if getattr(component, "block_scale", False):
        streams = as_blocks(fields, rng)
        inputs = {name: beats_of(f) for name, f in streams.items()}
    else:
        inputs = {"i": beats_of(fields)}
    received, cycles = run_streams(component, inputs, {"o": beats}, seed=seed, **pauses)
    got = unpack(component.o.payload.shape(), received["o"])
    if isinstance(got, dict) and "first" in got:
        assert (np.asarray(got["first"]) == streams["i"]["first"]).all()
        assert (np.asarray(got["last"]) == streams["i"]["last"]).all()
    got = np.asarray(got if not isinstance(got, dict) else got["data"])
    bad = np.argwhere(got != want)
    assert not len(bad), [(fields["data"][b, l], got[b, l], want[b, l]) for b, l in bad[:5]]
    assert got.size == want.size == beats * component.lanes
    return cycles


def run_scaled(unit, fields, **pauses):
    """``fields`` (``i`` and ``scale``, a bench's ``stimulus``) through a block with a
    scale per block: ``(data patterns, (first, last) flags, cycles)``."""
    scale = fields["scale"]
    inputs = {"i": beats_of(fields["i"]),
              "scale": [int(v) for v in scale["value"]] if "value" in scale
              else beats_of(scale)}
    beats = len(fields["i"]["data"])
    received, cycles = run_streams(unit, inputs, {"o": beats}, **pauses)
    got = unpack(unit.o.payload.shape(), received["o"])
    return (np.asarray(got["data"]), np.stack([got["first"], got["last"]], axis=1), cycles)
