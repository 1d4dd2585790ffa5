"""``qdp demo``: a real quantized network on the simulated hardware, end to end.

Trains a 64-32-10 MLP on scikit-learn's bundled digits (fixed seed, seconds), quantizes
it to int8 after training (:mod:`qdp.golden.network`), runs the integer network through
the golden blocks, checks every layer against onnxruntime (:func:`ort_agreement`), and
runs the whole test set through the generated QLinear hardware layer by layer in cocotb
(:func:`qdp.sim.network.run_network`), every output compared with the golden integer
network. ``--plot FILE`` also draws :func:`outlier_plot`.
"""

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import golden
from ..golden import network as net
from ..golden.mac_array import matmul_int
from ..sim.network import run_network
from ..sim.toolchain import missing_tools

__all__ = ["ROWS", "check_tools", "ort_agreement", "ort_layer_model", "ort_run",
           "outlier_errors", "outlier_plot", "prepare", "run_demo"]

#: Images per hardware tile: the QLinear arrays are ``ROWS x out_features``.
ROWS = 4
SEED = 0
HIDDEN = 32
#: Outliers injected into the trained weights for the plot, as multiples of max |w|.
OUTLIERS = (-40.0, 25.0, 60.0, -30.0)
ORT_OPSET = 21


def prepare(*, seed=SEED, hidden=HIDDEN):
    """Data, float network and its quantization: a dict with ``x_train``, ``x_test``,
    ``y_train``, ``y_test``, ``layers`` (float), ``network`` (quantized), ``q_x`` (int8
    test images), ``golden`` (every layer's int8 output) and ``float_logits``."""
    x_train, x_test, y_train, y_test = net.load_digits_split(seed=seed)
    layers = net.train_float(x_train, y_train, hidden=hidden, seed=seed)
    network = net.quantize_network(layers, x_train)
    q_x = net.quantize_input(network, x_test)
    return {"x_train": x_train, "x_test": x_test, "y_train": y_train, "y_test": y_test,
            "layers": layers, "network": network, "q_x": q_x,
            "golden": net.run_integer(network, q_x),
            "float_logits": net.float_forward(layers, x_test)[-1]}


def ort_layer_model(layer):
    """One quantized layer as an ONNX graph, the way a framework runs it:
    ``MatMulInteger`` (int8 x int8 with zero points, int32) + ``Add`` of the int32 bias
    (the accumulator, exact) -> ``Cast`` to float32 -> ``Mul`` by the float32 ratio
    ``s_in * s_w[j] / s_out`` per channel -> ``QuantizeLinear`` (scale 1, the output zero
    point: round half to even, saturate to int8). Outputs ``acc`` and ``y``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k, n = layer["in_features"], layer["out_features"]
    ratio = (layer["in_scale"] * np.asarray(layer["weight_scale"]) /
             layer["out_scale"]).astype(np.float32)
    inits = [
        numpy_helper.from_array(np.asarray(layer["weights"], dtype=np.int8), "w"),
        numpy_helper.from_array(np.array(layer["a_zero"], dtype=np.int8), "a_zero"),
        numpy_helper.from_array(np.array(layer["w_zero"], dtype=np.int8), "w_zero"),
        numpy_helper.from_array(np.asarray(layer["bias"], dtype=np.int32), "bias"),
        numpy_helper.from_array(ratio, "ratio"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        numpy_helper.from_array(np.array(layer["zero_point"][0], dtype=np.int8), "z_out"),
    ]
    nodes = [
        helper.make_node("MatMulInteger", ["a", "w", "a_zero", "w_zero"], ["mm"]),
        helper.make_node("Add", ["mm", "bias"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["acc_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["acc_f", "ratio"], ["scaled"]),
        helper.make_node("QuantizeLinear", ["scaled", "one", "z_out"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "qdp_layer", [helper.make_tensor_value_info("a", TensorProto.INT8, [None, k])],
        [helper.make_tensor_value_info("acc", TensorProto.INT32, [None, n]),
         helper.make_tensor_value_info("y", TensorProto.INT8, [None, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ORT_OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def ort_run(model, a):
    """Run :func:`ort_layer_model`'s graph on the int8 rows ``a``: ``(acc, y)`` as int64."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    acc, y = session.run(["acc", "y"], {"a": np.asarray(a, dtype=np.int8)})
    return acc.astype(np.int64), y.astype(np.int64)


def ort_agreement(network, q_x):
    """Each layer in onnxruntime, fed the golden input of that layer, against the golden
    integer path; and the layers chained in onnxruntime against the golden classes.

    Returns ``{"layers": [...], "predictions_agree": int, "images": int}``, per layer
    ``acc_exact`` / ``out_exact`` (elements equal), ``elements``, ``acc_max_diff`` and
    ``out_max_diff`` (largest absolute difference). The accumulators are the same integer
    arithmetic and must agree everywhere; the outputs differ where ORT's float32
    requantization rounds differently from the exact ``round(acc * M / 2**S)``.
    """
    rows = []
    a_golden = a_ort = np.asarray(q_x, dtype=np.int64)
    for layer in network["layers"]:
        model = ort_layer_model(layer)
        acc, y = ort_run(model, a_golden)
        w = np.asarray(layer["weights"], dtype=np.int64)
        want_acc = matmul_int(a_golden, w, a_zero=layer["a_zero"], b_zero=layer["w_zero"],
                              bias=layer["bias"], acc_width=network["acc_width"])
        want_y = net.run_layer(layer, a_golden, network)
        rows.append({"elements": int(want_y.size),
                     "acc_exact": int(np.sum(acc == want_acc)),
                     "acc_max_diff": int(np.max(np.abs(acc - want_acc))),
                     "out_exact": int(np.sum(y == want_y)),
                     "out_max_diff": int(np.max(np.abs(y - want_y)))})
        a_ort = ort_run(model, a_ort)[1]
        a_golden = want_y
    agree = int(np.sum(np.argmax(a_ort, axis=1) == np.argmax(a_golden, axis=1)))
    return {"layers": rows, "predictions_agree": agree, "images": len(a_golden)}


def _scheme_errors(w):
    """Dequantized ``w`` (flat float64) under each scheme, int8 everywhere."""
    out = {}
    q, c = golden.absmax_quantize(w)
    out["absmax per tensor"] = golden.absmax_dequantize(q, c)
    s, z = golden.zeropoint_params(float(w.min()), float(w.max()), signed=True)
    out["zero-point affine"] = golden.zeropoint_dequantize(
        golden.zeropoint_quantize(w, s, z, signed=True), s, z)
    frac = golden.fixed_point_frac_bits(float(np.max(np.abs(w))), 8)
    out["power-of-two fixed point"] = golden.fixed_point_quantize(w, 8, frac)
    # The blockwise unit takes integers: the weights enter as 24-bit-fraction fixed point,
    # far finer than any int8 step here.
    fixed = np.rint(np.ldexp(w, 24)).astype(np.int64)
    for block in (64, 256):
        q, absmax = golden.blockwise_absmax(fixed, block, in_width=48)
        out[f"blockwise absmax B={block}"] = np.ldexp(
            golden.dequantize_blockwise(q, absmax, block_size=block), -24)
    return out


def outlier_errors(weights, *, outliers=OUTLIERS, seed=SEED, chunk=64):
    """Quantization error of the ordinary weights under each scheme, without and with
    injected outliers.

    ``weights`` is the trained first-layer matrix (C order: a block of B holds B/cols
    rows). The outliers replace ``len(outliers)`` weights at seeded random places with
    the given multiples of max |w|; errors are measured on the other weights, the ones
    the outliers' scale steals resolution from, as RMS error / RMS of those weights.

    Returns ``{"trained": {scheme: error}, "with outliers": {scheme: error},
    "profile": {scheme: [error per chunk of the flat weights]}, "outliers": [index],
    "chunk": chunk}``; the profile (with outliers) shows where the damage lands.
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng(seed)
    where = np.sort(rng.choice(w.size, size=len(outliers), replace=False))
    spiked = w.copy()
    spiked[where] = np.asarray(outliers) * np.max(np.abs(w))
    keep = np.ones(w.size, dtype=bool)
    keep[where] = False
    rms = np.sqrt(np.mean(w[keep] ** 2))
    result = {"outliers": where.tolist(), "chunk": chunk, "profile": {}}
    for label, values in (("trained", w), ("with outliers", spiked)):
        result[label] = {}
        for name, deq in _scheme_errors(values).items():
            sq = np.where(keep, (deq - values) ** 2, 0.0)
            result[label][name] = float(np.sqrt(np.sum(sq) / np.sum(keep))) / rms
            if label == "with outliers":
                per = np.add.reduceat(sq, np.arange(0, w.size, chunk))
                count = np.add.reduceat(keep.astype(np.float64), np.arange(0, w.size, chunk))
                result["profile"][name] = (np.sqrt(per / count) / rms).tolist()
    return result


def outlier_plot(errors, path):
    """Draw :func:`outlier_errors` as a PNG at ``path``: the error per scheme (left), and
    along the weights with the outliers injected (right), where blocking keeps the damage
    inside the blocks that hold an outlier."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schemes = list(errors["trained"])
    x = np.arange(len(schemes))
    fig, (ax, prof) = plt.subplots(1, 2, figsize=(13, 4.8), dpi=100,
                                   gridspec_kw={"width_ratios": [1.25, 1]})
    spiked = (f"{len(errors['outliers'])} outliers injected "
              f"(up to {max(map(abs, OUTLIERS)):g}x max |w|)")
    for offset, label, color in ((-0.2, "trained", "#4C72B0"),
                                 (0.2, "with outliers", "#DD8452")):
        values = [errors[label][s] for s in schemes]
        bars = ax.bar(x + offset, values, 0.4, color=color,
                      label="trained weights" if label == "trained" else spiked)
        for bar, value in zip(bars, values):
            ax.annotate(f"{100 * value:.1f}%", (bar.get_x() + bar.get_width() / 2, value),
                        ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(top=4)                  # room for the legend above the bars
    ax.set_xticks(x, [s.replace(" per", "\nper").replace(" fixed", "\nfixed")
                      .replace(" absmax B=", "\nabsmax B=") for s in schemes], fontsize=9)
    ax.set_ylabel("RMS error of the ordinary weights / their RMS")
    ax.set_title("int8, trained 64x32 weights of the digits MLP", fontsize=11)
    ax.legend(fontsize=9, loc="upper left")

    chunk = errors["chunk"]
    for name, color in (("absmax per tensor", "#C44E52"),
                        ("blockwise absmax B=256", "#8172B2"),
                        ("blockwise absmax B=64", "#55A868")):
        profile = errors["profile"][name]
        prof.step(np.arange(len(profile) + 1) * chunk, profile + profile[-1:], where="post",
                  color=color, label=name)
    for index in errors["outliers"]:
        prof.axvline(index, color="grey", lw=0.8, ls=":")
    prof.set_yscale("log")
    prof.set_ylim(4e-4, 2)              # room for the legend below the curves
    prof.set_xlabel(f"weight index (flat, C order); dotted: outliers; "
                    f"error per {chunk} weights")
    prof.set_title("where the damage lands, " + spiked, fontsize=11)
    prof.legend(fontsize=8, loc="lower center", ncol=3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def check_tools(sims, plot):
    """Raise ``RuntimeError`` naming what the demo needs and this machine lacks."""
    needed = ["sklearn", "onnx", "onnxruntime"] + (["matplotlib"] if plot else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise RuntimeError(f"demo needs {', '.join(missing)}, which is not installed "
                           f"(pip install 'qdp[demo]')")
    for sim in sims:
        missing = missing_tools(sim)
        if missing:
            raise RuntimeError(f"{sim} needs {', '.join(missing)}, which is not installed")


def _percent(part, whole):
    return f"{100 * part / whole:.2f} %"


def _progress(text):
    """A progress line on stderr, so that stdout holds only the results."""
    print(f"  ... {text}", file=sys.stderr, flush=True)


def run_demo(sims, plot=None, *, workdir=None, out=print, progress=_progress):
    """The whole demo; returns the exit status (1 on a hardware mismatch).

    The simulations run in ``workdir`` (kept) or in a temporary folder removed at the end,
    whatever the outcome. ``progress`` receives a line before each slow step."""
    check_tools(sims, plot)
    if workdir is not None:
        return _run_demo(sims, plot, Path(workdir), True, out, progress)
    with tempfile.TemporaryDirectory(prefix="qdp-demo-") as temp:
        return _run_demo(sims, plot, Path(temp), False, out, progress)


def _run_demo(sims, plot, folder, kept, out, progress):

    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    progress("training the float MLP and quantizing it")
    d = prepare()
    network, y_test, golden = d["network"], d["y_test"], d["golden"]
    sizes = [network["layers"][0]["in_features"]] + [la["out_features"]
                                                     for la in network["layers"]]
    n = len(y_test)
    out(f"qdp demo: MLP {'-'.join(map(str, sizes))} on scikit-learn digits, "
        f"{len(d['y_train'])} training / {n} test images, seed {SEED}")
    out(f"  float accuracy        {_percent(net.accuracy(d['float_logits'], y_test) * n, n)}")
    out(f"  int8 golden accuracy  {_percent(net.accuracy(golden[-1], y_test) * n, n)}  "
        f"(int8 weights per channel, int8 affine activations, int32 bias, (M, S) "
        f"requantization; ReLU = the clip at zero point -128)")
    progress("running the quantized layers in onnxruntime")
    ort = ort_agreement(network, d["q_x"])
    for index, row in enumerate(ort["layers"]):
        e = row["elements"]
        out(f"  onnxruntime layer {index}: accumulators {row['acc_exact']}/{e} exact "
            f"(largest difference {row['acc_max_diff']}); int8 outputs {row['out_exact']}/{e}"
            f" exact ({_percent(row['out_exact'], e)}), largest difference "
            f"{row['out_max_diff']} (ORT requantizes in float32)")
    out("  (int8 x int8 MatMulInteger: exact in onnxruntime on AVX-512 and AVX2-only x86 "
        "alike; its uint8 x int8 kernel is not on AVX2, see the README)")
    out(f"  onnxruntime classes agree with golden on {ort['predictions_agree']}/{ort['images']}"
        f" test images")
    status = 0
    for sim in sims:
        t = time.monotonic()
        outputs, summaries = run_network(
            network, d["q_x"], sim, rows=ROWS, workdir=folder / sim,
            on_layer=lambda i, count, sim=sim: progress(
                f"{sim}: building and simulating layer {i + 1} of {count} "
                f"({n} images)"))
        seconds = time.monotonic() - t
        compared = sum(s.get("compared", 0) for s in summaries)
        mismatches = sum(s.get("mismatches", 0) for s in summaries)
        cycles = sum(s.get("cycles", 0) for s in summaries)
        chain_ok = len(outputs) == len(golden) and all(
            o is not None and np.array_equal(o, g) for o, g in zip(outputs, golden))
        macs = n * sum(la["in_features"] * la["out_features"] for la in network["layers"])
        if chain_ok and all(s["passed"] for s in summaries):
            out(f"  hardware ({sim}): int8 accuracy "
                f"{_percent(net.accuracy(outputs[-1], y_test) * n, n)}, every layer bit-exact "
                f"with golden: {compared} vectors and {macs} MACs checked, 0 mismatches, "
                f"{cycles} cycles, {seconds:.1f} s")
            continue
        status = 1
        chain = sum(int(np.sum(o != g)) for o, g in zip(outputs, golden) if o is not None)
        out(f"  hardware ({sim}): MISMATCH: {mismatches} of {compared} vectors differ in "
            f"the benches; {chain} layer outputs differ from the golden network"
            + ("" if len(outputs) == len(golden) and outputs[-1] is not None
               else " (the chain stopped early)"))
        for index, s in enumerate(summaries):
            for line in s.get("reports", []):
                out(f"    layer {index}: {line}")
            if s.get("error") or not s["passed"]:
                where = f"log: {s['log']}" if kept else \
                    "rerun with --workdir DIR to keep the logs"
                out(f"    layer {index}: {s.get('error', 'failed')} ({where})")
    if plot is not None:
        outlier_plot(outlier_errors(d["layers"][0][0]), plot)
        out(f"  outlier plot: {plot}")
    out(f"  wall time {time.monotonic() - start:.1f} s")
    return status
