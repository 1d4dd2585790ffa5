"""cocotb bench of a quantized network on the generated QLinear hardware, layer by layer.

Each layer of a network from :mod:`qdp.golden.network` is one :class:`qdp.hdl.QLinear`
with the layer's constants (bias, ``M``, ``S``, ``Z`` per output channel, the input zero
point): a ``rows x out_features`` array, ``rows`` images per tile, the layer's K
(``in_features``) streamed one k-step per beat with the weights' k-th row beside the
images' k-th pixels. :func:`run_network` builds one module per layer (cached like every
other bench, see :mod:`qdp.sim.runner`), runs the whole image set through layer 0, and
feeds the rows the *hardware* produced to layer 1, and so on: no golden value enters the
chain. Inside every layer's run the bench scores each output row against
:func:`qdp.golden.qlinear.qlinear` of the inputs it sent, and checks the ``first``/``last``
flags, with random valid gaps on the input and random backpressure on the output.
:func:`run_network` returns every layer's hardware output so the caller can compare the
chain with the golden integer network end to end.

Config keys (JSON) beyond :func:`qdp.sim.bench.bench_config`'s: ``network`` (the
network's JSON file, written by :func:`qdp.golden.network.export_json`: the bench takes
the layer's weights from it, and checks that the module's constants are the layer's),
``layer`` (its index), ``inputs`` (``.npy``: the layer's int8 activations, one image per
row), ``outputs`` (``.npy`` file the bench writes the received rows to) and ``golden``
(overrides for the golden call). The summary adds ``images``, ``tiles`` and ``macs`` (array MACs streamed).
"""

import tempfile
from pathlib import Path

import numpy as np

from .bench import bench_config, finish_bench, summary_on_error
from .mac_array_tb import input_fields
from .qlinear_tb import expected_qlinear_rows

__all__ = ["layer_tiles", "run_network", "test_network_layer"]

BENCH = "qdp.sim.network_tb"


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


def _run_layer(params, sim, config, workdir):
    """Build the layer's QLinear for ``sim`` (cached) and run this bench on it."""
    from .runner import run_bench

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
    from ..golden.network import export_json, hardware_params

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


def _timeout(beats, config):
    stretch = 1 / max(1e-3, 1 - config["in_pause"]) / max(1e-3, 1 - config["out_pause"])
    return int(beats * stretch * 4) + 200


async def run_layer_bench(dut, config):
    """Stream one layer's images through the QLinear and score every output element."""
    from ..blocks import get_block
    from ..golden.network import hardware_params, load_json
    from .payload import pack, unpack
    from .scoreboard import Scoreboard
    from .stream import ClockedBench, pause_generator

    network = load_json(config["network"])
    params = hardware_params(network, config["layer"], rows=config["params"]["rows"])
    if params != config["params"]:
        raise ValueError(f"network: layer {config['layer']} of {config['network']} is not "
                         f"the module under test")
    component = get_block("qlinear").build(**params)
    mac = component.array
    in_layout = component.signature.members["i"].signature.members["payload"].shape
    out_layout = component.signature.members["o"].signature.members["payload"].shape
    a = np.load(config["inputs"])
    w = np.asarray(network["layers"][config["layer"]]["weights"], dtype=np.int64)
    n = len(a)
    tiles = layer_tiles(component, a, w)
    fields = input_fields(mac, tiles)
    want, first, last = expected_qlinear_rows(component, tiles, config.get("golden"))
    n_in, n_out = len(fields["last"]), len(want)

    bench, streams = await ClockedBench.start(dut, seed=config["seed"],
                                              sources={"i": config["in_pause"]},
                                              sinks={"o": config["out_pause"]})
    source, sink = streams["i"], streams["o"]
    scoreboard = Scoreboard("network layer")
    summary = {"beats_in": 0, "beats_out": 0, "cycles": 0, "lanes": component.lanes,
               "images": n, "tiles": len(tiles), "macs": 0}
    with summary_on_error(summary, scoreboard):
        source.send(pack(in_layout, fields))
        await bench.run_until(lambda: sink.received >= n_out,
                              timeout=_timeout(n_in + n_out, config))
        # Keep taking beats for a while: a duplicated row would show up here.
        sink.pause = pause_generator(0, 0)
        for _ in range(2 * component.latency + mac.rows + 8):
            await bench.step()
        if source.accepted != n_in or sink.received != n_out:
            raise AssertionError(f"{source.accepted} beats in (of {n_in}), "
                                 f"{sink.received} rows out, {n_out} expected")
        got = unpack(out_layout, sink.words)
        data = got["data"].reshape(n_out, mac.cols)
        scoreboard.compare(data, want, {"image": np.arange(n_out)})
        flags = np.stack([got["first"], got["last"]], axis=1)
        bad = np.argwhere(flags != np.stack([first, last], axis=1))
        if len(bad):
            beat, which = bad[0]
            raise AssertionError(f"row {beat}: {('first', 'last')[which]} flag wrong")
        np.save(config["outputs"], data[:n].astype(np.int64))
        summary["macs"] = n_in * mac.rows * mac.cols
    finish_bench(summary, scoreboard, source, sink, bench)


try:
    import cocotb
except ImportError:         # plain-Python users of run_network()
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def test_network_layer(dut):
        await run_layer_bench(dut, bench_config())
