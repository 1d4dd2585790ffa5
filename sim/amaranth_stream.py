"""Drive a component's streams in Amaranth's own simulator (no Verilog, no cocotb).

Used by the fast tests that sweep many configurations: same valid/ready rules, random
valid gaps and backpressure as the cocotb benches, with beats counted.
"""

import random

from amaranth.hdl import Value
from amaranth.sim import Simulator

__all__ = ["run_streams"]


def run_streams(component, inputs, outputs, *, in_pause=0.3, out_pause=0.3, seed=0,
                max_cycles=None):
    """Send ``inputs`` (``{stream name: [payload constants]}``) and collect
    ``outputs`` (``{stream name: expected beat count}``).

    Payloads are given as values accepted by ``ctx.set`` (ints, lists or dicts for
    layouts). Returns ``({stream name: [payload ints]}, cycles)``. Raises
    ``AssertionError`` if a stream delivers more beats than expected or the traffic
    stalls.
    """
    rng = random.Random(seed)
    received = {name: [] for name in outputs}
    total_in = sum(len(v) for v in inputs.values())
    limit = max_cycles or 20 * (total_in + sum(outputs.values())) + 1000
    cycles = [0]

    async def testbench(ctx):
        position = {name: 0 for name in inputs}
        driving = {name: False for name in inputs}
        while any(len(received[n]) < c for n, c in outputs.items()) or \
                any(position[n] < len(v) for n, v in inputs.items()):
            for name, beats in inputs.items():
                port = getattr(component, name)
                if not driving[name] and position[name] < len(beats) and \
                        rng.random() >= in_pause:
                    ctx.set(port.payload, beats[position[name]])
                    driving[name] = True
                ctx.set(port.valid, int(driving[name]))
            for name in outputs:
                ctx.set(getattr(component, name).ready, int(rng.random() >= out_pause))
            watched = []
            for name in inputs:
                port = getattr(component, name)
                watched += [port.valid, port.ready]
            for name in outputs:
                port = getattr(component, name)
                watched += [port.valid, port.ready, Value.cast(port.payload)]
            _, _, *values = await ctx.tick().sample(*watched)
            for name in inputs:
                valid, ready = values[:2]
                values = values[2:]
                if valid and ready:
                    position[name] += 1
                    driving[name] = False
            for name in outputs:
                valid, ready, payload = values[:3]
                values = values[3:]
                if valid and ready:
                    received[name].append(int(payload))
                    if len(received[name]) > outputs[name]:
                        raise AssertionError(f"{name}: more beats than the "
                                             f"{outputs[name]} expected")
            cycles[0] += 1
            if cycles[0] > limit:
                raise AssertionError(f"stalled after {limit} cycles: received "
                                     f"{ {n: len(r) for n, r in received.items()} }")

    sim = Simulator(component)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return received, cycles[0]
