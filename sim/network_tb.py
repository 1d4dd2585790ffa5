"""cocotb bench of one layer of a quantized network on the generated QLinear hardware.

:class:`LayerTraffic` configures the bench engine (:mod:`qdp.sim.bench`): the layer's
inputs (``rows`` per tile, the last tile padded with copies of the last input) with the
layer's weights, every output row scored against the layer's golden output and the
``first``/``last`` flags checked, with random valid gaps on the input and random
backpressure on the output. The rows received are written for the next layer.
:func:`qdp.sim.network.run_layers` (host side) runs the chain of layers.

Config keys (JSON) beyond :func:`qdp.sim.bench.bench_config`'s, each a ``.npy`` file:
``inputs`` (the layer's input codes, one input per row), ``weights`` (``(K, cols)``),
``expected`` (the golden output codes, one row per input) and ``outputs`` (the file the
bench writes the received rows to); ``layer`` is the layer's index. The summary adds
``images`` (inputs), ``tiles`` and ``macs`` (array MACs streamed).
"""

import cocotb
import numpy as np

from .bench import run_stream_bench
from .mac_array_tb import tile_phase
from .traffic import Traffic

__all__ = ["layer_tiles", "LayerTraffic", "test_network_layer"]


def layer_tiles(component, a, w):
    """Cut the input rows of ``a`` into ``rows``-input tiles of the whole K; the last
    tile is padded with copies of the last input, whose rows the caller drops."""
    rows = component.rows
    n = len(a)
    pad = -n % rows
    a = np.concatenate([a, np.repeat(a[-1:], pad, axis=0)])
    a_zero = np.broadcast_to(np.asarray(component.a_zero), (rows,))
    b_zero = np.broadcast_to(np.asarray(component.b_zero), (component.cols,))
    return [{"a": a[r:r + rows], "b": w, "a_zero": a_zero, "b_zero": b_zero, "kind": "random"}
            for r in range(0, n + pad, rows)]


def _padded(want, rows):
    """The golden rows of every tile: the padding inputs repeat the last input's row."""
    return np.concatenate([want, np.repeat(want[-1:], -len(want) % rows, axis=0)])


class LayerTraffic(Traffic):
    """One checked stream of the layer's inputs; no reset (the chain needs every row)."""

    name = "network layer"
    boards = {"compared": "network layer", "compared_flags": "network layer o.first/last"}

    def __init__(self, bench):
        super().__init__(bench)
        config, p = bench.config, bench.params
        self.images = np.load(config["inputs"])
        weights = np.load(config["weights"])
        self.want = np.load(config["expected"])
        n, k = self.images.shape
        if n == 0 or weights.shape != (k, p.cols) or self.want.shape != (n, p.cols):
            raise ValueError(f"layer {config['layer']}: inputs {self.images.shape}, weights "
                             f"{weights.shape} and expected {self.want.shape} do not fit "
                             f"a {p.rows} x {p.cols} QLinear")
        self.tiles = layer_tiles(p, self.images, weights)
        self.drain_extra = p.rows
        bench.summary.update(images=n, tiles=len(self.tiles), macs=0)

    def _expected(self, q, tiles, overrides=None):
        data = _padded(self.want, q.rows)
        first = np.tile(np.arange(q.rows) == 0, len(tiles)).astype(np.int64)
        last = np.tile(np.arange(q.rows) == q.rows - 1, len(tiles)).astype(np.int64)
        return data, first, last

    def checked(self):
        phase = tile_phase(self.bench.params, self.tiles, self._expected)
        phase.on_done = self._done
        return phase

    def _done(self, result):
        p = self.bench.params
        np.save(self.bench.config["outputs"],
                result.got["o"]["data"][:len(self.images)].astype(np.int64))
        self.bench.summary["macs"] = result.accepted["i"] * p.rows * p.cols


@cocotb.test()
async def test_network_layer(dut):
    await run_stream_bench(dut, LayerTraffic)
