"""The shared body of a one-input, one-output stream bench.

A bench module supplies ``make_phase(component, beats, rng) -> (fields, expected,
report_inputs)``; this drives the fields through the DUT's ``i`` stream with random valid
gaps, takes ``o`` with random backpressure, optionally resets the DUT in the middle of a
first stream, and scores every output element against the golden expectation.

Config (JSON, from :func:`qdp.sim.runner.run_bench`): ``block``, ``params``, ``vectors``
(elements), ``seed``, ``in_pause`` and ``out_pause`` (probabilities), ``reset`` (bool),
``golden`` (overrides for the golden call: used to prove that a wrong golden fails).
Fields are ``{"data": array, ...side fields}``; a bare ``ArrayLayout`` payload takes
``data`` alone.
"""

import contextlib
import json
import os

import numpy as np

__all__ = ["bench_config", "run_stream_bench", "write_summary", "summary_on_error",
           "finish_bench"]


def bench_config():
    with open(os.environ["QDP_BENCH_CONFIG"]) as f:
        config = json.load(f)
    config.setdefault("vectors", 1000)
    config.setdefault("seed", 1)
    config.setdefault("in_pause", 0.3)
    config.setdefault("out_pause", 0.3)
    config.setdefault("reset", True)
    return config


def write_summary(summary):
    with open(os.environ["QDP_BENCH_SUMMARY"], "w") as f:
        json.dump(summary, f, indent=2)


@contextlib.contextmanager
def summary_on_error(summary, scoreboard):
    """Write what is known so far, with the error, if the bench body raises."""
    try:
        yield
    except Exception as error:
        write_summary({**summary, **scoreboard.summary(), "error": f"{error!r}"})
        raise


def finish_bench(summary, scoreboard, source, sink, bench):
    """Write the final summary and fail, with the mismatch reports, on any mismatch."""
    summary.update(scoreboard.summary(), beats_in=source.accepted, beats_out=sink.received,
                   cycles=bench.cycles)
    write_summary(summary)
    assert scoreboard.mismatches == 0, "\n".join(
        [f"{scoreboard.mismatches} of {scoreboard.compared} elements differ"]
        + scoreboard.reports)


def _timeout(beats, config):
    stretch = 1 / max(1e-3, 1 - config["in_pause"]) / max(1e-3, 1 - config["out_pause"])
    return int(beats * stretch * 4) + 200


async def run_stream_bench(dut, config, make_phase):

    from amaranth.lib import data

    from ..blocks import get_block
    from .payload import pack, unpack
    from .scoreboard import Scoreboard
    from .stream import ClockedBench, pause_generator

    block = get_block(config["block"])
    component = block.build(**config["params"])
    in_layout = component.signature.members["i"].signature.members["payload"].shape
    out_layout = component.signature.members["o"].signature.members["payload"].shape
    lanes = component.lanes
    rng = np.random.default_rng(config["seed"])
    beats = max(1, -(-config["vectors"] // lanes))

    bench, streams = await ClockedBench.start(dut, seed=config["seed"],
                                              sources={"i": config["in_pause"]},
                                              sinks={"o": config["out_pause"]})
    source, sink = streams["i"], streams["o"]
    scoreboard = Scoreboard(block.name)
    summary = {"beats_in": 0, "beats_out": 0, "cycles": 0, "lanes": lanes}

    async def phase(n, *, interrupt, label):
        fields, want, shown = make_phase(component, n, rng)
        want = np.asarray(want).reshape(n, lanes)
        first_in, first_out = source.accepted, sink.received
        # A bare array layout (no side fields) takes the data array itself.
        source.send(pack(in_layout, fields if isinstance(in_layout, data.StructLayout)
                         else fields["data"]))
        if interrupt:
            await bench.run_until(lambda: source.accepted - first_in >= n // 2,
                                  timeout=_timeout(n, config))
            await bench.reset(dut.rst)
            accepted = source.accepted - first_in
            got = unpack(out_layout, sink.words[first_out:]).reshape(-1, lanes)
            if len(got) > accepted:
                raise AssertionError(f"{label}: {len(got)} beats out but only {accepted} in")
            # Beats in flight at the reset are flushed; those that came out must be exact.
            scoreboard.compare(got, want[:len(got)],
                               {k: np.asarray(v)[:len(got)] for k, v in shown.items()},
                               phase=f"{label} ")
            return
        await bench.run_until(lambda: sink.received - first_out >= n, timeout=_timeout(n, config))
        # Keep taking beats for a while: a duplicated beat would show up here.
        sink.pause = pause_generator(0, 0)
        for _ in range(2 * component.latency + 8):
            await bench.step()
        got = unpack(out_layout, sink.words[first_out:]).reshape(-1, lanes)
        if source.accepted - first_in != n or len(got) != n:
            raise AssertionError(f"{label}: {source.accepted - first_in} beats in, "
                                 f"{len(got)} beats out, {n} expected")
        scoreboard.compare(got, want, shown, phase=f"{label} ")

    with summary_on_error(summary, scoreboard):
        if config["reset"]:
            await phase(max(4, beats // 4), interrupt=True, label="before reset:")
        await phase(beats, interrupt=False, label="")
    finish_bench(summary, scoreboard, source, sink, bench)
