"""Run a quantized network on the generated QLinear hardware, layer by layer.

Each layer of a network from :mod:`qdp.golden.network` is one :class:`qdp.hdl.QLinear`
with the layer's constants (bias, ``M``, ``S``, ``Z`` per output channel, the input zero
point): a ``rows x out_features`` array, ``rows`` images per tile, the layer's K
(``in_features``) streamed one k-step per beat with the weights' k-th row beside the
images' k-th pixels. :func:`run_network` builds one module per layer (cached like every
other bench, see :mod:`qdp.sim.runner`), runs the whole image set through layer 0 with the
layer bench :mod:`qdp.sim.network_tb`, and feeds the rows the *hardware* produced to
layer 1, and so on: no golden value enters the chain. It returns every layer's hardware
output so the caller can compare the chain with the golden integer network end to end.

This is the host side; the cocotb side (what runs inside the simulator) is
:mod:`qdp.sim.network_tb`, named here by module name only.
"""

import tempfile
from pathlib import Path

import numpy as np

from ..golden.network import export_json, hardware_params
from .runner import run_bench

__all__ = ["BENCH", "run_network"]

#: The cocotb test module of one layer.
BENCH = "qdp.sim.network_tb"


def _run_layer(params, sim, config, workdir):
    """Build the layer's QLinear for ``sim`` (cached) and run the layer bench on it."""
    result = run_bench("qlinear", params, sim, config, workdir=workdir, bench=BENCH)
    return {**result.summary, "passed": result.passed, "log": str(result.log)}


def run_network(network, q_x, sim, *, rows=4, seed=1, in_pause=0.3, out_pause=0.3,
                workdir=None, golden=None, on_layer=None):
    """Run the int8 images ``q_x`` through every layer's hardware on ``sim``, each layer
    fed with the previous layer's hardware output.

    Returns ``(outputs, summaries)``: per layer the int8 rows received (one per image,
    ``None`` from the first layer that failed on) and the bench summary (``compared``,
    ``mismatches``, ``reports``, ``beats_in``, ``beats_out``, ``cycles``, ``macs``,
    ``passed``, ``log``). ``golden`` overrides arguments of the bench's
    :func:`qdp.golden.qlinear.qlinear` call (to prove that a wrong golden fails).
    ``on_layer(index, count)`` is called before each layer is built and simulated.
    """
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"qdp-network-{sim}-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    network_file = workdir / "network.json"
    export_json(network, network_file)
    a = np.asarray(q_x, dtype=np.int64)
    outputs, summaries = [], []
    for index in range(len(network["layers"])):
        if on_layer is not None:
            on_layer(index, len(network["layers"]))
        folder = workdir / f"layer{index}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = {key: folder / f"{key}.npy" for key in ("inputs", "outputs")}
        np.save(paths["inputs"], a)
        paths["outputs"].unlink(missing_ok=True)
        config = {"seed": seed + index, "in_pause": in_pause, "out_pause": out_pause,
                  "reset": False, "golden": golden or {}, "network": str(network_file),
                  "layer": index, **{key: str(path) for key, path in paths.items()}}
        summary = _run_layer(hardware_params(network, index, rows=rows), sim, config, folder)
        summaries.append(summary)
        if not summary["passed"] or not paths["outputs"].exists():
            outputs.append(None)
            break
        a = np.load(paths["outputs"])
        outputs.append(a)
    return outputs, summaries
