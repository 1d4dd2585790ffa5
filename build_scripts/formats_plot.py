"""The block formats on real weights: the RMS error of the digits MLP's trained first-layer
weights (64 x 32, FP32) under per-tensor int8 absmax, blockwise int8, MXINT8, MXFP8
(E4M3), MXFP4, NF4 (with and without double quantization) and group int4, each against
its storage cost in bits per weight with its scales included, every format computed by
its golden model (:mod:`qdp.golden`).

``python -m qdp.build_scripts.formats_plot -o docs`` writes ``block_formats.json``,
``block_formats.md`` and ``block_formats.png``.

Bits per weight: the element bits plus each block's constants spread over its weights --
an FP32 absmax (32 bits) per tensor or block, an E8M0 byte per MX block of 32, NF4's
FP32 absmax per block of 64 or, double-quantized, an 8-bit code per block, an FP32
absmax2 per 256 blocks and one FP32 offset; group int4's FP32 scale and 4-bit zero
point per group of 128 (GPTQ stores FP16 scales: 0.125 bits less).
"""

import argparse
from pathlib import Path

import numpy as np

from .. import golden
from ..golden import network as net
from ._report import write_report

__all__ = ["SCHEMES", "format_errors", "formats_plot", "trained_weights"]

#: The schemes, in plot order: name -> (bits per weight of n weights, dequantized w).
SCHEMES = ("int8 absmax per tensor", "int8 blockwise B=64", "MXINT8", "MXFP8 (E4M3)",
           "MXFP4 (E2M1)", "NF4 B=64", "NF4 B=64 + double quant", "group int4 g=128")


def trained_weights(seed=0):
    """The trained 64 x 32 first-layer weights of the demo's MLP, FP32, flat."""
    x_train, _, y_train, _ = net.load_digits_split(seed=seed)
    layers = net.train_float(x_train, y_train, seed=seed)
    return np.asarray(layers[0][0], dtype=np.float32).reshape(-1)


def _dequantized(w):
    """``{scheme: (bits per weight, dequantized w as float64)}`` for FP32 ``w``."""
    n, out = w.size, {}
    q, c = golden.absmax_quantize(w.astype(np.float64))
    out["int8 absmax per tensor"] = (8 + 32 / n, golden.absmax_dequantize(q, c))
    q, absmax = golden.blockwise_absmax(w, 64, in_format="fp32")
    out["int8 blockwise B=64"] = (8 + 32 / 64, golden.dequantize_blockwise(
        q, absmax, block_size=64, in_format="fp32"))
    for name, element, bits in (("MXINT8", "int8", 8), ("MXFP8 (E4M3)", "fp8_e4m3", 8),
                                ("MXFP4 (E2M1)", "fp4_e2m1", 4)):
        codes, scales = golden.mx_quantize(w, element)
        out[name] = (bits + 8 / 32, golden.mx_dequantize(codes, scales, element))
    packed, absmax = golden.nf4_quantize(w, block_size=64)
    out["NF4 B=64"] = (4 + 32 / 64, golden.nf4_dequantize(packed, absmax, block_size=64))
    codes, absmax2, offset = golden.double_quantize(absmax)
    restored = golden.double_dequantize(codes, absmax2, offset)
    blocks = absmax.size
    out["NF4 B=64 + double quant"] = (4 + 8 / 64 + 32 * -(-blocks // 256) / n + 32 / n,
                                      golden.nf4_dequantize(packed, restored, block_size=64))
    codes, scales, zeros = golden.group_quantize(w, bits=4, group_size=128)
    out["group int4 g=128"] = (4 + (32 + 4) / 128,
                               golden.group_dequantize(codes, scales, zeros, group_size=128))
    return out


def format_errors(w):
    """``{scheme: {"bits_per_weight", "rms_error"}}``: the RMS error relative to the RMS
    of ``w``, in the order of :data:`SCHEMES`."""
    w = np.asarray(w, dtype=np.float32).reshape(-1)
    rms = float(np.sqrt(np.mean(w.astype(np.float64) ** 2)))
    rows = {}
    for name, (bits, deq) in _dequantized(w).items():
        error = np.asarray(deq, dtype=np.float64).reshape(-1) - w
        rows[name] = {"bits_per_weight": round(float(bits), 4),
                      "rms_error": float(np.sqrt(np.mean(error ** 2))) / rms}
    return {name: rows[name] for name in SCHEMES}


def formats_plot(errors, path):
    """Draw :func:`format_errors` as a PNG at ``path``: one bar per format, its RMS error
    (log scale), labelled with its bits per weight; 8-bit and 4-bit classes coloured
    apart."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(errors)
    values = [errors[n]["rms_error"] for n in names]
    colors = ["#4C72B0" if errors[n]["bits_per_weight"] > 6 else "#DD8452" for n in names]
    fig, ax = plt.subplots(figsize=(8, 4.6), dpi=100)
    y = np.arange(len(names))[::-1]
    bars = ax.barh(y, values, color=colors)
    for bar, name, value in zip(bars, names, values):
        ax.annotate(f"{100 * value:.2f}%  ({errors[name]['bits_per_weight']:.3f} bits/w)",
                    (value, bar.get_y() + bar.get_height() / 2), fontsize=8,
                    xytext=(4, 0), textcoords="offset points", va="center")
    ax.set_yticks(y, names, fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(right=max(values) * 6)     # room for the labels
    ax.set_xlabel("RMS error / RMS of the weights (bits per weight, scales included)")
    ax.set_title("block formats on the trained 64x32 weights of the digits MLP "
                 "(golden models)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("build/formats"))
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    errors = format_errors(trained_weights())
    header = ["format", "bits per weight", "RMS error / RMS"]
    table = [[name, f"{row['bits_per_weight']:.3f}", f"{100 * row['rms_error']:.3f} %"]
             for name, row in errors.items()]
    write_report(args.output, "block_formats", {"formats": errors}, header, table)
    formats_plot(errors, args.output / "block_formats.png")
    print(f"wrote {args.output / 'block_formats.png'}")


if __name__ == "__main__":
    main()
