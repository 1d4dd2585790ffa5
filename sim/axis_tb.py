"""cocotb bench of any block's AXI4-Stream form (:class:`qdp.hdl.axis.AxiStreamWrapper`):
the block's own traffic, golden expectation and scoreboards (its bench module's
:class:`~qdp.sim.traffic.Traffic`), run by the bench engine (:mod:`qdp.sim.bench`) through
cocotbext-axi sources and sinks with random pauses on both sides, beats counted and
compared exactly, ``aresetn`` pulled low in the middle of a stream
(:class:`qdp.sim.axis.AxisDriver`).

Config: as for the block's own bench (:mod:`qdp.sim.bench`); ``manifest`` is the AXI4-Stream
module's (``interface`` ``"axis"``, with its ``axis`` mapping). ``driver`` is ignored.
:func:`qdp.sim.runner.run_bench` with ``interface="axis"`` builds the module and runs this.
"""

import importlib
import warnings

import cocotb

from ..blocks import get_block
from .axis import AxisDriver, beat_manifest
from .bench import StreamBench, bench_config
from .traffic import Traffic

__all__ = ["block_traffic", "test_axis"]

# cocotbext-axi 0.1.28 still uses setimmediatevalue and Edge, which cocotb 2.1 deprecates
# (they work); one warning per endpoint would bury the bench's own log lines.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.axi")


def block_traffic(block):
    """The :class:`~qdp.sim.traffic.Traffic` class of ``block``'s own bench: the one
    Traffic subclass its bench module defines that no other class there extends."""
    module = importlib.import_module(get_block(block).bench)
    defined = [c for c in vars(module).values() if isinstance(c, type)
               and issubclass(c, Traffic) and c.__module__ == module.__name__]
    ends = [c for c in defined if not any(o is not c and issubclass(o, c) for o in defined)]
    if len(ends) != 1:
        raise ValueError(f"block: {module.__name__} defines {len(ends)} traffic classes "
                         f"({', '.join(c.__name__ for c in ends)}); the AXI4-Stream bench "
                         f"needs exactly one")
    return ends[0]


@cocotb.test()
async def test_axis(dut):
    config = bench_config()
    streams = config["manifest"]["axis"]["streams"]
    config = {**config, "manifest": beat_manifest(config["manifest"]), "driver": "axis"}

    def driver(dut, module, config, sink_pauses):
        return AxisDriver(dut, module, streams, seed=config["seed"], sinks=sink_pauses,
                          sources={s: config["in_pause"] for s in module.inputs},
                          summary=bench.summary)

    bench = StreamBench(dut, config, driver=driver)
    await bench.run(block_traffic(config["block"]))
