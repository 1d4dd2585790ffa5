"""Run a quantized network on the generated QLinear hardware, layer by layer.

A network here is a list of layers, each one :class:`qdp.hdl.QLinear` with its constants:
``{"params": QLinear keyword arguments, "weights": (K, N) integer matrix}``, plus the
golden output of every layer. Two sources build that list: the digits network of
:mod:`qdp.golden.network` (:func:`network_layers`, from
:func:`qdp.golden.network.hardware_params`) and a compiled ONNX model
(:func:`qdp.golden.qlinear_params` of each layer of a :class:`qdp.golden.QuantGraph`).

Each layer is a ``rows x N`` array: ``rows`` inputs per tile, the layer's K streamed one
k-step per beat with the weights' k-th row beside the inputs' k-th codes.
:func:`run_layers` builds one module per layer (cached like every other bench, see
:mod:`qdp.sim.runner`), runs the whole input set through layer 0 with the layer bench
:mod:`qdp.sim.network_tb`, which scores every output row against that layer's golden
output, and feeds the rows the *hardware* produced to layer 1, and so on: no golden value
enters the chain. It returns every layer's hardware output so the caller can compare the
chain with the golden network end to end.

This is the host side; the cocotb side (what runs inside the simulator) is
:mod:`qdp.sim.network_tb`, named here by module name only.
"""

import tempfile
from pathlib import Path

import numpy as np

from ..golden.network import hardware_params, run_integer
from .runner import run_bench

__all__ = ["BENCH", "network_layers", "run_layers", "run_network"]

#: The cocotb test module of one layer.
BENCH = "qdp.sim.network_tb"


def _run_layer(params, sim, config, workdir, exported):
    """Build the layer's QLinear for ``sim`` (cached) and run the layer bench on it."""
    result = run_bench("qlinear", params, sim, config, workdir=workdir, bench=BENCH,
                       exported=exported)
    return {**result.summary, "passed": result.passed, "log": str(result.log)}


def run_layers(layers, q_x, expected, sim, *, seed=1, in_pause=0.3, out_pause=0.3,
               workdir=None, on_layer=None):
    """Run the codes ``q_x`` (one input per row) through every layer's hardware on
    ``sim``, each layer fed with the previous layer's hardware output, every output row
    scored against ``expected``.

    Parameters
    ----------
    layers : list of dict
        Per layer ``params`` (:class:`qdp.hdl.QLinear` keyword arguments), ``weights``
        (``(K, cols)`` integers) and optionally ``exported`` (the
        :func:`qdp.blocks.generate` result of those parameters, so the Verilog simulated
        is the one the caller wrote).
    expected : list of array_like
        Per layer, the golden output codes ``(inputs, cols)`` of the golden chain on
        ``q_x``: while the hardware chain is exact, layer i's input is the golden one.

    Returns ``(outputs, summaries)``: per layer the rows received (one per input; the
    chain stops after the first layer that fails, whose received rows are kept when its
    bench got them all, else ``None``) and the bench summary (``compared``,
    ``mismatches``, ``reports``, ``beats_in``, ``beats_out``, ``cycles``, ``macs``,
    ``passed``, ``log``). ``on_layer(index, count)`` is called before each layer is
    built and simulated.
    """
    if len(expected) != len(layers):
        raise ValueError(f"expected: {len(expected)} golden outputs for {len(layers)} layers")
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"qdp-network-{sim}-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    a = np.asarray(q_x, dtype=np.int64)
    outputs, summaries = [], []
    for index, layer in enumerate(layers):
        if on_layer is not None:
            on_layer(index, len(layers))
        folder = workdir / f"layer{index}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = {key: folder / f"{key}.npy" for key in ("inputs", "weights", "expected",
                                                         "outputs")}
        np.save(paths["inputs"], a)
        np.save(paths["weights"], np.asarray(layer["weights"], dtype=np.int64))
        np.save(paths["expected"], np.asarray(expected[index], dtype=np.int64))
        paths["outputs"].unlink(missing_ok=True)
        config = {"seed": seed + index, "in_pause": in_pause, "out_pause": out_pause,
                  "reset": False, "layer": index,
                  **{key: str(path) for key, path in paths.items()}}
        summary = _run_layer(layer["params"], sim, config, folder, layer.get("exported"))
        summaries.append(summary)
        got = np.load(paths["outputs"]) if paths["outputs"].exists() else None
        outputs.append(got)
        if not summary["passed"] or got is None:
            break
        a = got
    return outputs, summaries


def network_layers(network, *, rows):
    """The layers of a :mod:`qdp.golden.network` network for :func:`run_layers`."""
    return [{"params": hardware_params(network, index, rows=rows),
             "weights": np.asarray(layer["weights"], dtype=np.int64)}
            for index, layer in enumerate(network["layers"])]


def run_network(network, q_x, sim, *, rows=4, expected=None, **kwargs):
    """:func:`run_layers` on the digits network (:mod:`qdp.golden.network`) with its
    int8 images ``q_x``; ``expected`` defaults to the golden integer network's outputs
    (:func:`qdp.golden.network.run_integer`; give others to prove that a wrong golden
    fails). Other keywords as for :func:`run_layers`."""
    if expected is None:
        expected = run_integer(network, q_x)
    return run_layers(network_layers(network, rows=rows), q_x, expected, sim, **kwargs)
