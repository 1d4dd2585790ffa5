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


def _run_part(part, a, expected, sim, config, folder):
    """Run the codes ``a`` through one QLinear (``part``: ``params``, ``weights``,
    optionally ``exported``), scored against ``expected``; ``(rows received or None,
    bench summary)``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {key: folder / f"{key}.npy" for key in ("inputs", "weights", "expected",
                                                     "outputs")}
    np.save(paths["inputs"], a)
    np.save(paths["weights"], np.asarray(part["weights"], dtype=np.int64))
    np.save(paths["expected"], np.asarray(expected, dtype=np.int64))
    paths["outputs"].unlink(missing_ok=True)
    config = {**config, **{key: str(path) for key, path in paths.items()}}
    result = run_bench("qlinear", part["params"], sim, config, workdir=folder, bench=BENCH,
                       exported=part.get("exported"))
    summary = {**result.summary, "passed": result.passed, "log": str(result.log)}
    return (np.load(paths["outputs"]) if paths["outputs"].exists() else None), summary


def _merge(summaries):
    """One layer's summary from its column parts' (counts summed, reports joined)."""
    if len(summaries) == 1:
        return summaries[0]
    merged = {"passed": all(s["passed"] for s in summaries),
              "log": ", ".join(s["log"] for s in summaries), "parts": summaries}
    for s in summaries:
        if "error" in s:
            merged.setdefault("error", s["error"])
        for key in ("compared", "mismatches", "beats_in", "beats_out", "cycles", "macs"):
            if key in s:
                merged[key] = merged.get(key, 0) + s[key]
        merged["reports"] = merged.get("reports", []) + s.get("reports", [])
    return merged


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
        is the one the caller wrote); or, for a layer wider than one array, ``parts``: a
        list of such dicts, each with ``columns`` ``[start, stop]``, run one after the
        other on the layer's input and their outputs put side by side.
    expected : list of array_like
        Per layer, the golden output codes ``(inputs, cols)`` of the golden chain on
        ``q_x``: while the hardware chain is exact, layer i's input is the golden one.

    Returns ``(outputs, summaries)``: per layer the rows received (one per input; the
    chain stops after the first layer that fails, whose received rows are kept when its
    bench got them all, else ``None``) and the bench summary (``compared``,
    ``mismatches``, ``reports``, ``beats_in``, ``beats_out``, ``cycles``, ``macs``,
    ``passed``, ``log``; summed over a layer's parts, each also under ``parts``).
    ``on_layer(index, count)`` is called before each layer is built and simulated.
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
        want = np.asarray(expected[index])
        parts = layer.get("parts") or [{**layer, "columns": [0, want.shape[1]]}]
        config = {"seed": seed + index, "in_pause": in_pause, "out_pause": out_pause,
                  "reset": False, "layer": index}
        got, part_summaries = [], []
        for number, part in enumerate(parts):
            start, stop = part["columns"]
            folder = workdir / f"layer{index}" / (f"part{number}" if len(parts) > 1 else "")
            rows, summary = _run_part(part, a, want[:, start:stop], sim, config, folder)
            got.append(rows)
            part_summaries.append(summary)
            if rows is None:          # a part that crashed: the layer has no output
                break
        summaries.append(_merge(part_summaries))
        complete = len(got) == len(parts) and all(rows is not None for rows in got)
        outputs.append(np.concatenate(got, axis=1) if complete else None)
        if not summaries[-1]["passed"] or not complete:
            break
        a = outputs[-1]
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
