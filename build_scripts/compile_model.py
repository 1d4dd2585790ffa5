"""``qdp compile``: a quantized ONNX MLP to QLinears, one per layer and column part, and
its verification.

:func:`load_model` imports the file into the golden graph
(:func:`~qdp.build_scripts.onnx_import.import_onnx`). :func:`hardware_layers` maps every
layer onto :class:`qdp.hdl.QLinear` through :func:`qdp.golden.qlinear_params` (the one
mapping, proved equal to the ``integer`` model in the golden tests), a layer of more than
32 output channels as column parts (:meth:`qdp.golden.LinearLayer.columns`, each its own
QLinear on the layer's whole input), and exports the Verilog with
:func:`qdp.blocks.generate`, refusing with one line naming the layer what the hardware
cannot compute yet: a :class:`~qdp.golden.TableLayer` (a requantized Relu/Clip), an
output clip the saturation cannot express, and the ``float32`` requantization model
altogether. :func:`write_outputs` writes the directory:
``manifest.json``, each layer's Verilog and module manifest, its weights.
:func:`verify` runs inputs through every layer's RTL chained
(:func:`qdp.sim.network.run_layers`), compares each layer's hardware output with the
golden graph's trace, then the golden with onnxruntime per layer
(:func:`~qdp.build_scripts.onnx_conformance.compare_layers`), and prints one table.
"""

import json
from pathlib import Path

import numpy as np

from ..blocks import generate
from ..golden import LinearLayer, qlinear_params
from ..hdl.mac_array import MacArray
from ..sim.network import run_layers
from .onnx_conformance import compare_layers, layer_outputs
from .onnx_import import import_onnx

__all__ = ["FORMAT", "load_model", "hardware_layers", "write_outputs", "model_inputs",
           "verify", "format_verify_table"]

#: The ``format`` tag of ``manifest.json``.
FORMAT = "qdp-compiled-1"
#: Why the float32 requantization has no hardware yet (CLI and manifest).
FLOAT32_NOT_BUILT = ("the hardware computes the integer requantization only; the float32 "
                     "requantization hardware is not built yet")


def load_model(path):
    """``(onnx.ModelProto, QuantGraph)`` of the file ``path``; ``ValueError`` (one line)
    for a missing or unreadable file and for what the importer refuses."""
    try:
        import onnx
    except ImportError:
        raise RuntimeError("compile needs onnx, which is not installed "
                           "(pip install 'qdp[dev]')") from None
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model: {path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as error:          # protobuf's DecodeError and its kin
        raise ValueError(f"model: {path} is not an ONNX model ({type(error).__name__})") \
            from None
    return model, import_onnx(model)


def column_parts(n, most):
    """``[start, stop]`` column ranges splitting ``n`` output channels into the fewest
    parts of at most ``most`` columns, as equal as can be (so most parts share one
    module's shape)."""
    count = -(-n // most)
    bounds = [n * i // count for i in range(count + 1)]
    return [[bounds[i], bounds[i + 1]] for i in range(count)]


def hardware_layers(graph, *, rows, requant="integer"):
    """Per layer ``{"weights", "parts"}``: the ``(K, N)`` weights and, per column part of
    at most 32 output channels (:func:`column_parts`), ``{"columns", "params",
    "weights", "exported"}`` (its QLinear's keyword arguments, weights and
    :func:`qdp.blocks.generate`'s ``(verilog, manifest)``); ``ValueError`` naming the
    first layer the hardware cannot compute."""
    if requant != "integer":
        raise ValueError(f"requant: {FLOAT32_NOT_BUILT}")
    lo, hi = MacArray.RANGES["rows"]
    if not lo <= rows <= hi:
        raise ValueError(f"rows: {rows} is out of range (allowed {lo}..{hi})")
    most = MacArray.RANGES["cols"][1]
    layers = []
    for index, layer in enumerate(graph.layers):
        where = f"layer {index} ({layer.node or layer.name})"
        if not isinstance(layer, LinearLayer):
            raise ValueError(f"{where}: a {layer.op} between two quantizations (a "
                             f"{type(layer).__name__}, a 2**{layer.x.bits}-entry table) has "
                             f"no hardware yet; only linear layers are built")
        parts = []
        for start, stop in column_parts(layer.out_features, most):
            part = layer.columns(start, stop) if stop - start < layer.out_features else layer
            try:
                params = qlinear_params(part, rows=rows)
                exported = generate("qlinear", params)
            except (ValueError, TypeError) as error:
                message = str(error).removeprefix(f"layer {part.node or part.name}: ")
                raise ValueError(f"{where}: {message}") from None
            parts.append({"columns": [start, stop], "params": params,
                          "weights": part.weights, "exported": exported})
        layers.append({"weights": layer.weights, "parts": parts})
    return layers


def _quant_row(q):
    return {"scale": float(q.scale), "zero_point": q.zero_point, "signed": q.signed,
            "bits": q.bits}


def write_outputs(out_dir, model_path, graph, hardware, *, rows, requant):
    """Write ``manifest.json`` and, per layer with hardware, ``<module>.v``,
    ``<module>.json`` (portable Verilog and its module manifest, as ``qdp generate
    qlinear`` writes them) and ``layer<i>.weights.npy`` into ``out_dir``; return the
    paths written, manifest first."""
    out_dir = Path(out_dir)
    rows_out, written = [], []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for index, (layer, summary) in enumerate(zip(graph.layers, graph.summary())):
            row = {"index": index, **summary}
            if hardware is None:
                row["hardware"] = None
                if isinstance(layer, LinearLayer):     # a table layer's summary has it all
                    row["float_ratio"] = [float(r) for r in layer.float_ratio]
                rows_out.append(row)
                continue
            hw = hardware[index]
            weights = out_dir / f"layer{index}.weights.npy"
            np.save(weights, hw["weights"].astype(np.int8 if layer.w_signed else np.uint8))
            written.append(weights)
            parts = []
            for part in hw["parts"]:
                text, module = part["exported"]
                name = module["module"]
                (out_dir / f"{name}.v").write_text(text)
                (out_dir / f"{name}.json").write_text(json.dumps(module, indent=2) + "\n")
                written += [out_dir / f"{name}.v", out_dir / f"{name}.json"]
                parts.append({"columns": part["columns"], "module": name,
                              "verilog": f"{name}.v", "module_manifest": f"{name}.json",
                              "parameters": part["params"],
                              "latency_cycles": module["latency_cycles"]})
            row["hardware"] = {
                "block": "qlinear", "weights": weights.name,
                "shape": {"rows": rows, "cols": layer.out_features,
                          "k": layer.in_features},
                "input_beats_per_tile": layer.in_features,
                "output_beats_per_tile": rows,
                "parts": parts,
            }
            rows_out.append(row)
        manifest = {
            "format": FORMAT, "model": str(model_path), "requant": requant, "rows": rows,
            "input": {"name": graph.input_name, "float": graph.float_input,
                      **_quant_row(graph.input)},
            "output": {"name": graph.output_name, "float": graph.float_output,
                       **_quant_row(graph.output)},
            "layers": rows_out,
            "notes": [
                "One QLinear per layer and column part (at most 32 output channels each; "
                "a part computes its columns of the layer, on the layer's whole input), "
                "run layer by layer: rows inputs per tile, the layer's K streamed one "
                "k-step per beat (input codes beside the columns of the weights' k-th "
                "row, from layer<i>.weights.npy), one output row per beat; "
                "latency_cycles counts from a tile's last input beat to its first output "
                "beat (the module manifest says so). There is no single top yet, so no "
                "cycles per inference are stated.",
                "A narrower out_width than the output type (e.g. 7 unsigned for a Relu "
                "folded into symmetric int8) holds the same codes: zero-extend them.",
            ] if hardware is not None else [f"No hardware: {FLOAT32_NOT_BUILT}."],
        }
        path = out_dir / "manifest.json"
        path.write_text(json.dumps(manifest, indent=1) + "\n")
    except OSError as error:
        raise ValueError(f"output: cannot write to {out_dir}: "
                         f"{error.strerror or error}") from None
    return [path, *written]


def model_inputs(graph, count, *, inputs=None, seed=1):
    """``count`` model inputs: the first ``count`` rows of the array ``inputs``
    (``(n, features)``: float for a float input, cast to float32; codes for a code
    input), or drawn uniformly with ``seed`` from the input quantization's representable
    float range (codes: the code range)."""
    lo, hi = graph.input.range
    features = graph.in_features
    if inputs is None:
        rng = np.random.default_rng(seed)
        if not graph.float_input:
            return rng.integers(lo, hi + 1, (count, features)).astype(graph.input.dtype)
        scale, zero = float(graph.input.scale), graph.input.zero_point
        return rng.uniform((lo - zero) * scale, (hi - zero) * scale,
                           (count, features)).astype(np.float32)
    x = np.asarray(inputs)
    if x.ndim != 2 or x.shape[1] != features:
        raise ValueError(f"inputs: expected shape (count, {features}) for the model's input "
                         f"{graph.input_name}, got {x.shape}")
    if len(x) < count:
        raise ValueError(f"inputs: --verify {count} needs {count} inputs, the file has "
                         f"{len(x)}")
    x = x[:count]
    if graph.float_input:
        if x.dtype.kind not in "fiu":
            raise ValueError(f"inputs: expected numbers, got dtype {x.dtype}")
        return x.astype(np.float32)
    if x.dtype.kind not in "iu" or x.min() < lo or x.max() > hi:
        raise ValueError(f"inputs: the model's input {graph.input_name} takes integer "
                         f"codes {lo}..{hi}")
    return x.astype(graph.input.dtype)


def _first_mismatch(got, want):
    """``(row, element, expected, got)`` of the first difference, or None."""
    if got is None:
        return None
    where = np.argwhere(got != want)
    if not len(where):
        return None
    i, j = where[0]
    return int(i), int(j), int(want[i, j]), int(got[i, j])


def verify(model, graph, hardware, x, sims, *, seed=1, workdir, out=print, progress=None):
    """Run ``x`` through every layer's RTL on each of ``sims`` and compare (see the
    module); print the results with ``out`` (and ``progress(text)`` before each layer is
    built and simulated); return ``(status, rows)``: status 0 exact, 1 an RTL mismatch
    (or a golden difference from onnxruntime outside its bound), 3 a bench that
    crashed."""
    trace = graph.run(x, "integer")
    status, results = 0, {}
    for sim in sims:
        def on_layer(index, count, sim=sim):
            if progress is not None:
                progress(f"{sim}: building and simulating layer {index + 1} of {count} "
                         f"({len(x)} inputs)")
        outputs, summaries = run_layers(hardware, trace.input, trace.layers, sim, seed=seed,
                                        workdir=Path(workdir) / sim, on_layer=on_layer)
        results[sim] = (outputs, summaries)
        for index, layer in enumerate(graph.layers):
            where = f"layer {index} ({layer.node or layer.name}) on {sim}"
            if index >= len(summaries):
                out(f"{where}: not run (the chain stopped at an earlier layer)")
                continue
            s = summaries[index]
            if "error" in s:
                out(f"{where}: the bench crashed: {s['error']} (log: {s['log']})")
                status = max(status, 3)
                continue
            first = _first_mismatch(outputs[index], trace.layers[index])
            if first is not None or not s["passed"]:
                status = max(status, 1)
                if first is not None:
                    row, element, want, got = first
                    out(f"{where}: MISMATCH: first at row {row}, element {element}: expected "
                        f"{want}, got {got} ({s['mismatches']} of {s['compared']} differ)")
                else:
                    out(f"{where}: MISMATCH: {s['mismatches']} of {s['compared']} differ")
                for line in s.get("reports", [])[:3]:
                    out(f"  {line}")
    reports = compare_layers(model, graph, layer_outputs(model, graph, x, "onnxruntime"),
                             "integer")
    if any(not r.conforms for r in reports):
        status = max(status, 1)
    rows = []
    for index, layer in enumerate(graph.layers):
        r = reports[index]
        row = {"layer": layer.node or layer.name,
               "shape": f"{layer.in_features}x{layer.out_features}",
               "compared": None, "rtl": {}, "ort": f"{r.differ} / {r.elements}",
               "bound": "within" if r.conforms else f"{len(r.unexplained)} outside"}
        if r.saturation:
            row["ort"] += f" ({r.saturation} AVX2 u8s8)"
        for sim, (outputs, summaries) in results.items():
            s = summaries[index] if index < len(summaries) else {}
            row["rtl"][sim] = "not run" if "mismatches" not in s else s["mismatches"]
            row["compared"] = row["compared"] or s.get("compared")
        rows.append(row)
    return status, rows


def format_verify_table(rows, sims):
    """The per-layer table of :func:`verify` (Markdown)."""
    lines = ["| layer | K x N | compared | " + " | ".join(f"RTL mismatches ({s})" for s in sims)
             + " | golden vs onnxruntime (differ / codes) | bound |",
             "|---|---|---|" + "---|" * len(sims) + "---|---|"]
    for row in rows:
        lines.append(f"| {row['layer']} | {row['shape']} | {row['compared']} | "
                     + " | ".join(str(row["rtl"][s]) for s in sims)
                     + f" | {row['ort']} | {row['bound']} |")
    return "\n".join(lines)
