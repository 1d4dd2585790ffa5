"""The AXI4-Stream form of a block in simulation: :func:`run_axis_bench` is
:func:`qdp.sim.runner.run_bench` with ``interface="axis"`` — the module exported with
AXI4-Stream ports is the simulation's top level itself (cocotbext-axi drives its ports by
their AXI names, so there is no bulk harness around it), built and cached like every
other build, and :mod:`qdp.sim.axis_tb` runs the block's own traffic on it.
"""

from .runner import run_bench

__all__ = ["run_axis_bench"]


def run_axis_bench(block, params, sim, config, *, waves=False, workdir=None, exported=None):
    """Run the AXI4-Stream bench on ``block``'s AXI4-Stream form with ``config`` (as for
    :func:`qdp.sim.runner.run_bench`: ``vectors``, ``seed``, ``in_pause``, ``out_pause``,
    ``reset``, ``golden``, the block bench's own keys); ``exported``:
    :func:`qdp.blocks.generate`'s result with ``interface="axis"``. Returns a
    :class:`~qdp.sim.runner.BenchResult`."""
    return run_bench(block, params, sim, config, waves=waves, workdir=workdir,
                     exported=exported, interface="axis")
