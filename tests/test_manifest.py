# amaranth: UnusedElaboratable=no
"""The manifest's claims about timing, checked against the hardware in Amaranth's
simulator for every block in the registry:

* ``latency``: its ``cycles`` equal ``latency_cycles``, and the cycles counted between
  the reference points it names (which accepted input beat, which valid output beat) are
  what the simulation shows, for ``o`` and for every stream under ``also``;
* ``streams``: an input stream's ``ready_depends_on_output_ready`` lists exactly the
  output streams whose ``ready``, flipped with every input held and no clock edge in
  between, changes that input's ``ready``;
* ``simulation_models``: an ECP5 export names the MULT18X18D model exactly when it
  instantiates the primitive, with the number of instances, and the package writes it.
"""

import random
import re

import pytest
from amaranth.hdl import Shape, Value
from amaranth.lib import data, wiring
from amaranth.sim import Simulator

from qdp.blocks import BLOCKS
from qdp.blocks.export import generate, manifest
from qdp.sim.ecp5 import MODEL_FILES, MULT18X18D_MODEL, write_models

# A few configurations per block: the defaults and variants that change the timing or
# the ready paths (pipeline depths, dataflows, pipelined or not).
CONFIGS = {
    "quantizer": [{}, {"latency": 1}, {"latency": 6, "lanes": 2, "in_width": 20},
                  {"runtime_scale": False, "multiplier": 3, "shift": 1, "latency": 4}],
    "absmax": [{"block_size": 4, "lanes": 2, "in_width": 6},
               {"block_size": 1, "pipeline": 0, "rounding": "floor"},
               {"block_size": 6, "lanes": 1, "pipeline": 3, "rounding": "stochastic"},
               {"block_size": 4, "lanes": 2, "in_format": "bf16"}],
    "mac-array": [{"rows": 2, "cols": 2},
                  {"rows": 2, "cols": 2, "dataflow": "broadcast"},
                  {"rows": 2, "cols": 3, "pipelined": False},
                  {"rows": 3, "cols": 1, "dataflow": "broadcast", "pipelined": False}],
    "qlinear": [{"rows": 2, "cols": 2},
                {"rows": 2, "cols": 2, "pipelined": False, "quant_latency": 1},
                {"rows": 2, "cols": 1, "dataflow": "broadcast", "pipelined": False}],
    "quantize-linear": [{}, {"in_format": "bf16", "runtime_scale": True, "lanes": 2},
                        {"in_format": "e3m3", "rounding_model": "exact", "out_width": 4,
                         "runtime_scale": True},
                        {"runtime_scale": True, "block_scale": True, "lanes": 2}],
    "dequantize-linear": [{}, {"in_width": 32, "out_format": "bf16", "zero_point": 1},
                          {"out_format": "fp16", "runtime_scale": True},
                          {"runtime_scale": True, "block_scale": True}],
    "absmax-dequantize": [{}, {"in_format": "bf16", "model": "float32", "lanes": 2,
                               "out_format": "bf16"}],
    "mx-quantize": [{}, {"element": "fp4_e2m1", "block_size": 4, "lanes": 2,
                         "in_format": "bf16", "read_register": True}],
    "mx-dequantize": [{}, {"element": "fp4_e2m1", "lanes": 2, "out_format": "bf16"}],
    "nf4-quantize": [{}, {"block_size": 32, "lanes": 4, "in_format": "fp16",
                          "read_register": True}],
    "nf4-dequantize": [{}, {"lanes": 3}, {"lanes": 2, "double_quant": True}],
    "group-dequantize": [{}, {"lanes": 3, "bits": 3, "symmetric": True},
                         {"lanes": 2, "bits": 8}],
    "group-quantize": [{}, {"group_size": 32, "lanes": 4, "bits": 3, "symmetric": True,
                            "in_format": "bf16", "read_register": True}],
    "mx-mac-array": [{}, {"rows": 2, "cols": 1, "element": "int8", "block_size": 2,
                          "limb_width": 128}],
}
CASES = [(block, params) for block in BLOCKS for params in CONFIGS[block]]
# One result beat per input beat, through a pipeline that stalls as one.
ELEMENTWISE = {"quantizer", "quantize-linear", "dequantize-linear", "absmax-dequantize",
               "mx-dequantize", "nf4-dequantize", "group-dequantize"}
# One block of storage (qdp.hdl.block_store): per block, its last input beat -> its first
# output beat.
STORED = {"absmax", "mx-quantize", "nf4-quantize", "group-quantize"}
# A latency that is a bound: the result waits for its turn on a ring (qdp.hdl.mx_mac_array).
BOUNDED = {"mx-mac-array"}


def _id(case):
    if isinstance(case, dict):
        return "-".join(f"{k}={v}" for k, v in case.items()) or "defaults"
    return str(case)


def test_every_registered_block_has_configurations():
    assert set(CONFIGS) == set(BLOCKS)


def _streams(component, flow):
    return [name for name, member in component.signature.members.items()
            if member.is_signature and member.flow == flow]


def _has_field(port, name):
    shape = port.payload.shape()
    return isinstance(shape, data.StructLayout) and name in shape.members


# -- the fields -----------------------------------------------------------------------------

@pytest.mark.parametrize("block,params", [
    (block, params) for block in BLOCKS for params in CONFIGS[block][:2]], ids=_id)
def test_manifest_states_latency_and_ready_paths(block, params):
    text, m = generate(block, params)
    assert m["latency_cycles"] == m["latency"]["cycles"]
    latency = m["latency"]
    streams = m["streams"]
    port_streams = {row["stream"] for row in m["ports"] if "stream" in row}
    assert set(streams) == port_streams
    inputs = [s for s, row in streams.items() if row["direction"] == "input"]
    outputs = [s for s, row in streams.items() if row["direction"] == "output"]
    assert inputs[0] == "i" and "o" in outputs
    for s in inputs:
        assert set(streams[s]["ready_depends_on_output_ready"]) <= set(outputs)
    for s in outputs:
        assert set(streams[s]) == {"direction"}
    assert latency["from_stream"] in inputs and latency["to_stream"] == "o"
    assert "accepted on " + latency["from_stream"] in latency["from"]
    assert "valid on o" in latency["to"] and latency["when"]
    for other in latency.get("also", []):
        assert other["to_stream"] in outputs and other["to_stream"] != "o"
        assert isinstance(other["cycles"], int) and f"valid on {other['to_stream']}" in other["to"]
    assert {o["to_stream"] for o in latency.get("also", [])} == set(outputs) - {"o"}
    assert "simulation_models" not in m            # portable Verilog needs none
    assert "MULT18X18D" not in text


# -- latency: the reference points, measured ------------------------------------------------

def _trace(component, beats, cycles):
    """Offer ``beats`` (``(idle cycles before, payload int, last or None)``) on ``i`` with
    every output ready and every other input valid (a block's scale always there);
    return the cycles in which each input beat was accepted and, per output stream,
    ``(cycle, first flag or None)`` of every beat taken."""
    outputs = _streams(component, wiring.Out)
    accepted, taken = [], {name: [] for name in outputs}

    async def bench(ctx):
        for name in outputs:
            ctx.set(getattr(component, name).ready, 1)
        for name in _streams(component, wiring.In)[1:]:
            ctx.set(getattr(component, name).valid, 1)
        queue, idle, offered = list(beats), 0, False
        if queue:
            idle = queue[0][0]
        watched = [component.i.valid, component.i.ready]
        for name in outputs:
            port = getattr(component, name)
            watched.append(port.valid)
            watched.append(port.payload.first if _has_field(port, "first") else port.valid)
        for cycle in range(cycles):
            if not offered and queue:
                if idle:
                    idle -= 1
                else:
                    _, payload, last = queue.pop(0)
                    ctx.set(Value.cast(component.i.payload), payload)
                    if last is not None:
                        ctx.set(component.i.payload.last, last)
                    offered = True
            ctx.set(component.i.valid, offered)
            _, _, valid, ready, *values = await ctx.tick().sample(*watched)
            if valid and ready:
                accepted.append(cycle)
                offered = False
                idle = queue[0][0] if queue else 0
            for name, (o_valid, first) in zip(outputs, zip(values[::2], values[1::2])):
                if o_valid:
                    port = getattr(component, name)
                    taken[name].append((cycle, first if _has_field(port, "first") else None))

    sim = Simulator(component)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return accepted, taken


def _width(port):
    return Shape.cast(Value.cast(port.payload).shape()).width


@pytest.mark.parametrize("block,params", CASES, ids=_id)
def test_latency_reference_points_match_the_simulation(block, params):
    component = BLOCKS[block].build(**params)
    m = manifest(block, component, "dut")
    latency = m["latency"]
    cycles = latency["cycles"]
    rng = random.Random(len(block) * 100 + len(params))
    width = _width(component.i)
    has_last = _has_field(component.i, "last")

    if block in ELEMENTWISE:
        # Element-wise: every accepted beat -> its result, whatever the gaps between beats.
        assert latency["from"].startswith("the cycle in which a beat is accepted on i")
        beats = [(rng.choice([0, 0, 1, 3]), rng.getrandbits(width), None) for _ in range(16)]
        accepted, taken = _trace(component, beats, 16 * 5 + cycles + 10)
        assert len(accepted) == len(taken["o"]) == 16
        assert [t - a for a, (t, _) in zip(accepted, taken["o"])] == [cycles] * 16
        return

    # Per block (absmax, MX) or tile (MAC array, QLinear): its last input beat -> its
    # first output beat, each group well after the previous one has drained.
    assert "last beat" in latency["from"]
    assert ("first beat" if block in STORED else "first row") in latency["to"]
    if block in STORED:
        per_group = component.beats_per_block
        sizes = [per_group, max(1, per_group - 1), per_group]     # a short block between
    else:
        sizes = [1, 3, component.rows + 2]                        # K of each tile
    gap = cycles + 2 * max(sizes) + 10
    beats, closing = [], []
    for size in sizes:
        for k in range(size):
            end = k == size - 1
            # a stored block closes a full block by its count; the short one by `last`
            last = end and (block not in STORED or size < per_group)
            beats.append((gap if k == 0 and beats else 0, rng.getrandbits(width),
                          int(last) if has_last else None))
        closing.append(len(beats) - 1)
    accepted, taken = _trace(component, beats, len(sizes) * (gap + max(sizes)) + 50)
    assert len(accepted) == len(beats)
    firsts = [t for t, first in taken["o"] if first]
    assert len(firsts) == len(sizes)
    measured = [f - accepted[c] for f, c in zip(firsts, closing)]
    if block in BOUNDED:
        # At most the bound, and no more than a ring turn under it.
        assert latency["to"].startswith("at most")
        assert all(cycles - component.ring_period <= t <= cycles for t in measured), measured
    else:
        assert measured == [cycles] * len(sizes)
    for other in latency.get("also", []):
        seen = [t for t, _ in taken[other["to_stream"]]]
        assert [s - accepted[c] for s, c in zip(seen, closing)] == \
            [other["cycles"]] * len(sizes)


# -- ready paths: flip each output's ready with every input held ----------------------------

def _ready_paths(component, cycles, seed, last_probability=0.3):
    """Random legal traffic (an offered beat is held until taken); in every cycle, with
    the inputs and the other outputs' ready fixed, flip each output's ready and compare
    each input's ready, settled, before and after. Returns ``({(input, output): cycles in
    which it changed}, {stream: cycles in which that output was valid while flipped, or
    that input was not ready})``: the second shows the traffic reached the states that
    matter (full pipelines, backpressure) and not only an idle unit."""
    inputs, outputs = _streams(component, wiring.In), _streams(component, wiring.Out)
    changed = {(i, o): 0 for i in inputs for o in outputs}
    covered = {name: 0 for name in inputs + outputs}
    rng = random.Random(seed)

    async def bench(ctx):
        offered = {name: False for name in inputs}
        for _cycle in range(cycles):
            for name in inputs:
                port = getattr(component, name)
                if not offered[name] and rng.random() < 0.8:
                    ctx.set(Value.cast(port.payload), rng.getrandbits(_width(port)))
                    if _has_field(port, "last"):
                        ctx.set(port.payload.last, rng.random() < last_probability)
                    offered[name] = True
                ctx.set(port.valid, offered[name])
            ready = {name: rng.random() < 0.5 for name in outputs}
            for name in outputs:
                ctx.set(getattr(component, name).ready, ready[name])
            # A testbench's ctx.set settles the combinational logic before ctx.get reads
            # it; the clock does not move in between.
            before = {name: ctx.get(getattr(component, name).ready) for name in inputs}
            for name in inputs:
                covered[name] += not before[name]
            for o in outputs:
                port = getattr(component, o)
                covered[o] += ctx.get(port.valid)
                ctx.set(port.ready, not ready[o])
                for i in inputs:
                    changed[i, o] += ctx.get(getattr(component, i).ready) != before[i]
                ctx.set(port.ready, ready[o])
            assert {name: ctx.get(getattr(component, name).ready) for name in inputs} == before
            _, _, *handshakes = await ctx.tick().sample(
                *[s for name in inputs for s in (getattr(component, name).valid,
                                                 getattr(component, name).ready)])
            for name, valid, accepted in zip(inputs, handshakes[::2], handshakes[1::2]):
                if valid and accepted:
                    offered[name] = False

    sim = Simulator(component)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return changed, covered


@pytest.mark.parametrize("block,params", CASES, ids=_id)
def test_ready_dependencies_are_what_the_hardware_does(block, params):
    component = BLOCKS[block].build(**params)
    m = manifest(block, component, "dut")
    claims = {name: row["ready_depends_on_output_ready"]
              for name, row in m["streams"].items() if row["direction"] == "input"}
    outputs = [name for name, row in m["streams"].items() if row["direction"] == "output"]
    changed, covered = _ready_paths(component, 400, seed=len(str(params)))
    for o in outputs:      # the flips happened while the outputs had something to give
        assert covered[o] >= 20, f"{o}.valid only {covered[o]} times in 400 cycles"
    for i in claims:       # ... and while the input was held up
        assert covered[i] >= 10, f"{i}.ready low only {covered[i]} times in 400 cycles"
    for i, claim in claims.items():
        for o in outputs:
            if o in claim:
                assert changed[i, o], f"{i}.ready never followed {o}.ready"
            else:
                assert not changed[i, o], \
                    f"{i}.ready changed with {o}.ready in {changed[i, o]} cycles"


def test_ready_dependencies_per_block():
    """What the test above establishes, spelled out: the element-wise blocks have no skid
    buffer;
    the stored blocks (absmax, MX) and the pipelined array reach their outputs' ready only
    through FIFOs."""
    deps = {(block, tuple(sorted(params.items()))):
            BLOCKS[block].check(**params).ready_dependencies["i"]
            for block, params in CASES}
    for (block, params), dep in deps.items():
        params = dict(params)
        if block in ELEMENTWISE:
            assert dep == ("o",)
        elif block in STORED:
            assert dep == ()
        else:
            assert dep == (() if params.get("pipelined", True) else ("o",))


# -- the ECP5 export's simulation model ------------------------------------------------------

@pytest.mark.parametrize("block,params,tiles", [
    ("quantizer", {"latency": 4}, 0),
    ("quantizer", {"latency": 6, "lanes": 2, "in_width": 20, "mult_width": 20}, 2 * 2 * 2),
    ("quantizer", {"latency": 5}, 2 * 2),
    ("absmax", {"block_size": 4, "lanes": 2, "in_width": 6}, 0),
    ("absmax", {"block_size": 4, "lanes": 2, "in_format": "bf16", "model": "float32"},
     2 * 2),
    ("nf4-quantize", {"lanes": 2}, 2 * 4),
    ("nf4-dequantize", {"lanes": 2}, 2 * 4),
    ("nf4-dequantize", {"double_quant": True}, 4 + 4),
    ("group-dequantize", {"lanes": 2}, 2 * 2),
    ("group-quantize", {"lanes": 2}, 0),
    ("group-dequantize", {"bits": 8, "symmetric": True}, 2),
    ("mac-array", {"rows": 2, "cols": 3}, 6),
    ("mac-array", {"rows": 2, "cols": 3, "pipelined": False}, 0),
    ("qlinear", {"rows": 2, "cols": 2}, 4),
], ids=_id)
def test_ecp5_manifest_names_the_shipped_model(tmp_path, block, params, tiles):
    text, m = generate(block, params, target="ecp5")
    instances = len(re.findall(r"^\s*MULT18X18D\b", text, re.M))
    assert instances == tiles == BLOCKS[block].check(**params).dsp_tiles
    if not tiles:
        assert "simulation_models" not in m
        return
    model, = m["simulation_models"]
    assert model["primitive"] == "MULT18X18D" and model["instances"] == tiles
    assert model["file"] == MODEL_FILES["MULT18X18D"][0]
    assert "qdp.sim.ecp5.write_models" in model["how"]
    path, = write_models(tmp_path)
    assert path.name == model["file"] and path.read_text() == MULT18X18D_MODEL
    assert "module MULT18X18D(" in MULT18X18D_MODEL


def test_write_models_names_unknown_primitives(tmp_path):
    with pytest.raises(ValueError, match="^primitives: no simulation model of ALU54B"):
        write_models(tmp_path, ["ALU54B"])
