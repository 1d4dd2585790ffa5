"""cocotb bench of the quantized linear layer: the MAC-array bench's tiles, gaps,
backpressure and mid-tile reset, scored against :func:`qdp.golden.qlinear.qlinear`.
"""

import cocotb
import numpy as np

from ..golden.qlinear import qlinear
from .bench import run_stream_bench
from .mac_array_tb import TileTraffic, exhaustive_elements

# The exhaustive check is the MAC array's: every operand pair, here requantized.
__all__ = ["expected_qlinear_rows", "exhaustive_elements", "QLinearTraffic", "test_qlinear"]


def expected_qlinear_rows(q, tiles, golden_overrides=None):
    """What the QLinear must output for ``tiles``: ``(data, first, last)`` per row."""
    kwargs = dict(bias=list(q.bias), multiplier=list(q.multiplier), shift=list(q.shift),
                  zero_point=list(q.zero_point), out_width=q.out_width,
                  out_signed=q.out_signed, rounding=q.rounding, saturation=q.saturation,
                  acc_width=q.acc_width, saturate=q.saturate, mult_width=q.mult_width)
    kwargs.update(golden_overrides or {})
    data = np.concatenate([qlinear(t["a"], t["b"], a_zero=t["a_zero"], w_zero=t["b_zero"],
                                   **kwargs) for t in tiles]).astype(np.int64)
    first = np.tile(np.arange(q.rows) == 0, len(tiles)).astype(np.int64)
    last = np.tile(np.arange(q.rows) == q.rows - 1, len(tiles)).astype(np.int64)
    return data, first, last


class QLinearTraffic(TileTraffic):
    """The MAC-array bench's tiles, scored against the quantized layer."""

    expected = staticmethod(expected_qlinear_rows)


@cocotb.test()
async def test_qlinear(dut):
    await run_stream_bench(dut, QLinearTraffic)
