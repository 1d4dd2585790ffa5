"""cocotb bench of one layer of a quantized network on the generated QLinear hardware.

:class:`LayerTraffic` configures the bench engine (:mod:`qdp.sim.bench`): the layer's
images (``rows`` per tile, the last tile padded at the zero point) with the layer's
weights, every output row scored against :func:`qdp.golden.qlinear.qlinear` of the inputs
sent, and the ``first``/``last`` flags checked, with random valid gaps on the input and
random backpressure on the output. The rows received are written for the next layer.
:func:`qdp.sim.network.run_network` (host side) runs the chain of layers.

Config keys (JSON) beyond :func:`qdp.sim.bench.bench_config`'s: ``network`` (the
network's JSON file, written by :func:`qdp.golden.network.export_json`: the bench takes
the layer's weights from it, and checks that the module's constants are the layer's),
``layer`` (its index), ``inputs`` (``.npy``: the layer's int8 activations, one image per
row), ``outputs`` (``.npy`` file the bench writes the received rows to) and ``golden``
(overrides for the golden call). The summary adds ``images``, ``tiles`` and ``macs``
(array MACs streamed).
"""

import cocotb
import numpy as np

from ..golden.network import hardware_params, load_json
from .bench import run_stream_bench
from .mac_array_tb import tile_phase
from .qlinear_tb import expected_qlinear_rows
from .traffic import Traffic

__all__ = ["layer_tiles", "LayerTraffic", "test_network_layer"]


def layer_tiles(component, a, w):
    """Cut the image rows of ``a`` into ``rows``-image tiles of the whole K; the last
    tile is padded with images at the zero point, whose rows the caller drops."""
    rows, cols = component.rows, component.cols
    n = len(a)
    pad = -n % rows
    a = np.concatenate([a, np.full((pad, a.shape[1]), component.a_zero, dtype=np.int64)])
    a_zero = np.full(rows, component.a_zero)
    b_zero = np.full(cols, component.b_zero)
    return [{"a": a[r:r + rows], "b": w, "a_zero": a_zero, "b_zero": b_zero, "kind": "random"}
            for r in range(0, n + pad, rows)]


class LayerTraffic(Traffic):
    """One checked stream of the layer's images; no reset (the chain needs every row)."""

    name = "network layer"
    boards = {"compared": "network layer", "compared_flags": "network layer o.first/last"}

    def __init__(self, bench):
        super().__init__(bench)
        config = bench.config
        network = load_json(config["network"])
        params = hardware_params(network, config["layer"], rows=config["params"]["rows"])
        if params != config["params"]:
            raise ValueError(f"network: layer {config['layer']} of {config['network']} is "
                             f"not the module under test")
        self.images = np.load(config["inputs"])
        weights = np.asarray(network["layers"][config["layer"]]["weights"], dtype=np.int64)
        self.tiles = layer_tiles(bench.params, self.images, weights)
        self.drain_extra = bench.params.rows
        bench.summary.update(images=len(self.images), tiles=len(self.tiles), macs=0)

    def checked(self):
        phase = tile_phase(self.bench.params, self.tiles, expected_qlinear_rows,
                           self.bench.config.get("golden"))
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
