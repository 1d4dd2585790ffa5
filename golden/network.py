"""A real quantized network: an MLP trained on scikit-learn's digits, quantized after
training, and run with integers only through the golden blocks.

The float network is ``logits = relu(x @ W1 + b1) @ W2 + b2`` (64 -> ``hidden`` -> 10)
on the 8x8 digit images scaled to [0, 1]. Post-training quantization follows the usual
int8 recipe (TFLite's, ONNX's ``QLinearMatMul``):

* **weights** int8, symmetric absmax per output channel (:func:`absmax_quantize` on each
  column): ``W[:, j] ~ q_w[:, j] * s_w[j]``, ``s_w[j] = max|W[:, j]| / 127``, zero point 0;
* **activations** int8, zero-point affine per tensor, ``x ~ (q - z) * s``, with ``(s, z)``
  from the min and max the float network produces on the training images
  (:func:`zeropoint_params`, signed);
* **bias** int32, ``round(b[j] / (s_in * s_w[j]))`` (half to even): it lands in the
  accumulator's scale;
* **requantization** per output channel: the real ratio ``s_in * s_w[j] / s_out`` as
  ``(M[j], S[j])`` with ``M / 2**S`` nearest (:func:`multiplier_from_scale`), then
  ``y = sat(round_half_even(acc * M / 2**S) + z_out)`` -- :func:`qlinear`, exactly.

**ReLU** is folded into the requantization clip: a hidden layer's calibrated range is
``[0, max]``, so its zero point is -128, the int8 minimum, and the saturation that clips
every value below ``z_out`` to -128 *is* ``relu``. No separate ReLU unit exists in
hardware or here; :func:`quantize_network` checks that the zero point is the minimum.

Integer inference (:func:`run_integer`) calls only :func:`quantize`-family golden
functions: :func:`zeropoint_quantize` for the input, then :func:`qlinear` per layer. The
class is the argmax of the int8 logits (one scale and zero point per tensor, so the
argmax of the dequantized logits is the same, ties included).

:func:`export_json` / :func:`load_json` write and read everything the hardware needs,
per layer and output channel: weights, bias, ``M``, ``S``, ``Z``, the input zero point,
plus the float scales for users who dequantize.
"""

import json
import warnings

import numpy as np

from .qlinear import qlinear
from .quantizer import multiplier_from_scale
from .schemes import absmax_quantize, zeropoint_params, zeropoint_quantize

__all__ = ["FORMAT", "accuracy", "export_json", "float_forward", "hardware_params",
           "load_digits_split", "load_json", "quantize_input", "quantize_network",
           "run_integer", "run_layer", "train_float"]

#: The ``format`` tag of the exported JSON.
FORMAT = "qdp-network-1"
ACC_WIDTH = 32
MULT_WIDTH = 32


def load_digits_split(*, test_size=0.25, seed=0):
    """scikit-learn's bundled digits (1797 images, no download), pixels scaled to [0, 1],
    split stratified: ``(x_train, x_test, y_train, y_test)`` (450 test images by default).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0
    return train_test_split(x, digits.target, test_size=test_size, random_state=seed,
                            stratify=digits.target)


def train_float(x, y, *, hidden=32, seed=0, max_iter=400):
    """Train the float MLP (scikit-learn ``MLPClassifier``, ReLU, Adam, fixed seed).

    Returns ``[(W1, b1), (W2, b2)]`` with ``W`` shaped ``(in, out)`` (float64).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", solver="adam",
                          alpha=1e-4, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        # A fixed iteration budget is the point (seconds, deterministic), not a failure.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return [(np.array(w, dtype=np.float64), np.array(b, dtype=np.float64))
            for w, b in zip(model.coefs_, model.intercepts_)]


def float_forward(layers, x):
    """The float network's activations: one array per layer output (ReLU on hidden
    layers); the last one holds the logits."""
    outputs = []
    h = np.asarray(x, dtype=np.float64)
    for index, (w, b) in enumerate(layers):
        h = h @ w + b
        if index < len(layers) - 1:
            h = np.maximum(h, 0.0)
        outputs.append(h)
    return outputs


def accuracy(scores, labels):
    """Fraction of rows whose argmax is the label."""
    return float(np.mean(np.argmax(np.asarray(scores), axis=1) == np.asarray(labels)))


def quantize_network(layers, x_calibration):
    """Post-training quantization of ``layers`` (see the module docstring).

    Parameters
    ----------
    layers : list of (numpy.ndarray, numpy.ndarray)
        Float ``(W, b)`` per layer, ``W`` shaped ``(in, out)``, as from :func:`train_float`.
    x_calibration : array_like of float, shape (N, in)
        Images whose float activations set every activation range (the training set).

    Returns
    -------
    dict
        JSON-able: ``format``, ``input`` (``scale``, ``zero_point``, ``bits``, ``signed``),
        ``acc_width``, ``mult_width``, ``rounding``, and per layer ``in_features``,
        ``out_features``, ``relu``, ``a_zero``, ``w_zero``, ``weights`` (int8, in x out),
        ``bias`` (int32), ``multiplier``, ``shift``, ``zero_point`` (one per output
        channel), and the float ``in_scale``, ``weight_scale`` (per channel), ``out_scale``.
    """
    x_calibration = np.asarray(x_calibration, dtype=np.float64)
    s_in, z_in = zeropoint_params(float(x_calibration.min()), float(x_calibration.max()),
                                  signed=True)
    network = {"format": FORMAT, "input": {"scale": s_in, "zero_point": z_in, "bits": 8,
                                           "signed": True},
               "acc_width": ACC_WIDTH, "mult_width": MULT_WIDTH, "rounding": "half_even",
               "layers": []}
    activations = float_forward(layers, x_calibration)
    for index, ((w, b), out) in enumerate(zip(layers, activations)):
        relu = index < len(layers) - 1
        k, n = w.shape
        q_w = np.zeros((k, n), dtype=np.int64)
        s_w = np.zeros(n)
        for j in range(n):
            q_w[:, j], c = absmax_quantize(w[:, j])
            s_w[j] = 1.0 / c
        s_out, z_out = zeropoint_params(float(out.min()), float(out.max()), signed=True)
        if relu and z_out != -128:
            raise ValueError(f"layers: hidden layer {index} calibrates to zero point {z_out}, "
                             f"not -128, so the clip would not be the ReLU")
        bias = np.rint(b / (s_in * s_w)).astype(np.int64)
        ms = [multiplier_from_scale(s_in * s_w[j] / s_out, mult_width=MULT_WIDTH)
              for j in range(n)]
        network["layers"].append({
            "in_features": k, "out_features": n, "relu": relu,
            "a_zero": int(z_in), "w_zero": 0,
            "weights": q_w.tolist(), "bias": bias.tolist(),
            "multiplier": [int(m) for m, _, _ in ms], "shift": [int(s) for _, s, _ in ms],
            "zero_point": [int(z_out)] * n,
            "in_scale": s_in, "weight_scale": s_w.tolist(), "out_scale": s_out,
        })
        s_in, z_in = s_out, z_out
    return network


def quantize_input(network, x):
    """Float images to the int8 input of the first layer."""
    spec = network["input"]
    return zeropoint_quantize(np.asarray(x, dtype=np.float64), spec["scale"],
                              spec["zero_point"], bits=spec["bits"], signed=spec["signed"])


def run_layer(layer, a, network):
    """One layer with integers only: :func:`qlinear` with the layer's constants."""
    return qlinear(a, np.asarray(layer["weights"], dtype=np.int64), a_zero=layer["a_zero"],
                   w_zero=layer["w_zero"], bias=layer["bias"], multiplier=layer["multiplier"],
                   shift=layer["shift"], zero_point=layer["zero_point"], out_width=8,
                   out_signed=True, rounding=network["rounding"], saturation="sat",
                   acc_width=network["acc_width"], mult_width=network["mult_width"])


def run_integer(network, q_x):
    """Integer-only inference from the int8 input ``q_x``: every layer's int8 output, in
    order (the last one holds the int8 logits)."""
    outputs = []
    a = np.asarray(q_x, dtype=np.int64)
    for layer in network["layers"]:
        a = run_layer(layer, a, network)
        outputs.append(a)
    return outputs


def hardware_params(network, index, *, rows):
    """:class:`qdp.hdl.QLinear` parameters of layer ``index`` for a ``rows``-image batch:
    a ``rows x out_features`` array, K (``in_features``) streamed one k-step per beat, the
    input zero point, bias, ``M``, ``S`` and ``Z`` per column as constants.

    Parameters
    ----------
    network : dict
        From :func:`quantize_network` or :func:`load_json`.
    index : int
        The layer.
    rows : int
        Images per tile (1..32).

    Returns
    -------
    dict
        Keyword arguments of :class:`qdp.hdl.QLinear` (JSON-able).
    """
    layer = network["layers"][index]
    return {"rows": rows, "cols": layer["out_features"], "a_zero": layer["a_zero"],
            "b_zero": layer["w_zero"], "bias": list(layer["bias"]),
            "multiplier": list(layer["multiplier"]), "shift": list(layer["shift"]),
            "zero_point": list(layer["zero_point"]), "acc_width": network["acc_width"],
            "mult_width": network["mult_width"], "rounding": network["rounding"]}


def export_json(network, path):
    """Write ``network`` (from :func:`quantize_network`) as JSON."""
    with open(path, "w") as f:
        json.dump(network, f, indent=1)
        f.write("\n")


def load_json(path):
    """Read a network written by :func:`export_json`, checking its format tag."""
    with open(path) as f:
        network = json.load(f)
    if network.get("format") != FORMAT:
        raise ValueError(f"path: {path} is not a {FORMAT} network "
                         f"(format {network.get('format')!r})")
    return network
