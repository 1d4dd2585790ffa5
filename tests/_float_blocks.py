"""A float edge block in Amaranth's simulator against its bench's golden expectation:
the bench module's ``stimulus`` and ``expected`` (:mod:`qdp.sim.quantize_linear_tb`,
:mod:`qdp.sim.dequantize_linear_tb`), random gaps and backpressure."""

import numpy as np

from qdp.sim.amaranth_stream import run_streams
from qdp.sim.payload import unpack


def _beat(fields, b):
    data = [int(v) for v in fields["data"][b]]
    if len(fields) == 1:
        return data
    return {k: ([int(v) for v in fields[k][b]] if np.ndim(fields[k][b]) else int(fields[k][b]))
            for k in fields} | {"data": data}


def check_block(component, bench, beats, seed, **pauses):
    """Run ``beats`` beats of ``bench.stimulus`` through ``component``; assert every
    element equals ``bench.expected``; return the cycles taken."""
    rng = np.random.default_rng(seed)
    fields, scale = bench.stimulus(component, beats, rng)
    want = bench.expected(component, fields, scale)
    received, cycles = run_streams(component, {"i": [_beat(fields, b) for b in range(beats)]},
                                   {"o": beats}, seed=seed, **pauses)
    got = unpack(component.o.payload.shape(), received["o"])
    got = np.asarray(got if not isinstance(got, dict) else got["data"])
    bad = np.argwhere(got != want)
    assert not len(bad), [(fields["data"][b, l], got[b, l], want[b, l]) for b, l in bad[:5]]
    assert got.size == want.size == beats * component.lanes
    return cycles
