"""Golden model of a quantized network: a chain of integer layers between float edges.

What :mod:`qdp.build_scripts.onnx_import` folds a quantized ONNX file into, and what the
hardware of a compiled model computes, layer by layer. Every layer takes integer codes
and gives integer codes; floats appear only at the edges and in the per-layer constants
(the file's float32 scales), never in an integer result's definition.

:class:`Quant` -- one activation tensor's quantization: a float32 ``scale``, an integer
``zero_point`` and the code type (``bits``, ``signed``), ``real = (q - zero_point) *
scale``.

:class:`LinearLayer` -- a quantized linear layer (MatMul/Gemm, QLinearMatMul, QGemm)::

    acc[i][j] = wrap32( sum_k (x[i][k] - x.zero_point) * (w[k][j] - w_zero[j]) + bias[j] )
    y[i][j]   = clip( requant(acc[i][j], j), lo, hi )

``w`` int8 (or uint8) ``(K, N)``, ``w_zero`` and ``w_scale`` one per output channel
(a per-tensor file repeats its one value), ``bias`` int32 in the accumulator's scale
``x.scale * w_scale[j]`` (as ``quantize_static`` writes it), ``acc`` ONNX's int32 sum
(:func:`~qdp.golden.matmul_int`, wrapping). ``[lo, hi]`` is the output type's range,
narrowed by a folded Relu (``lo = y.zero_point``) or Clip (``lo, hi`` = the Clip's
bounds quantized with the output's QuantizeLinear), which is exact: QuantizeLinear is
monotone and maps 0 to the zero point, so ``Q(relu(v)) = max(Q(v), Q(0))``.

``requant`` is one of two models (:data:`REQUANT_MODELS`):

``"integer"``
    The Quantizer's fixed point: ``(M[j], S[j]) = multiplier_from_scale(rho[j])`` with
    ``rho[j] = x.scale * w_scale[j] / y.scale`` formed in float64 from the float32 scales
    (the product of two float32 is exact in float64; the quotient rounds once), 32-bit
    ``M``; then ``quantize(acc, M, S, zero_point=y.zero_point)``, half to even, saturated
    -- exact integers, the cheapest hardware.
``"float32"``
    onnxruntime's CPU sequence (``QLinearMatMul``, ``QGemm`` and the QDQ fusions into
    them: ``MlasRequantizeOutput``), every step an exact IEEE operation here:
    ``r[j] = fl32(fl32(x.scale * w_scale[j]) / y.scale)`` -- the float32 product of the
    input and weight scales first, then the float32 quotient by the output scale, as
    onnxruntime's kernels form ``output_scales`` (QGemm's ``alpha`` is 1) --; then
    ``fl32(acc)`` (int32 to float32, half to even: exact for ``|acc| < 2**24``),
    ``fl32(fl32(acc) * r[j])``, round half to even to an integer, ``+ y.zero_point``,
    saturate to the output type (onnxruntime clamps in float before rounding, which gives
    the same integer: the bounds are integers).

**The two models differ by at most 1**, and only near a tie. With ``v = acc * rho``
exact (from the file's float32 scales): ``|M / 2**S - rho| <= rho * (2**-32 + 2**-53)``
(``M`` has its top bit set), so the integer model rounds a value within ``|v| * 2**-31``
of ``v``; the float32 model rounds ``v`` perturbed by at most four float32 roundings of
relative error ``2**-24`` each (the ratio's two, the cast of ``acc`` -- exact below
``2**24`` --, the product), within ``|v| * (4 * 2**-24 + 2**-40) < |v| * 2**-21``. Both
round half to even, so they agree unless a half-integer lies within ``|v| * 2**-21`` of
``v``, and then differ by exactly 1 (``|v| * 2**-21 < 1/2`` for every ``|v| < 2**20``; beyond
that both saturate an 8-bit output); the clip to ``[lo, hi]`` is monotone and keeps that.
qdp's tests count those elements against onnxruntime and check this condition for each.

:class:`TableLayer` -- an activation the file keeps between two quantized tensors
(``DequantizeLinear -> Relu|Clip -> QuantizeLinear`` with other output parameters): per
input code, ``quantize_linear(clip(dequantize_linear(q), lo, hi))`` through the golden
float functions, ONNX's float sequence bit for bit, tabulated (2**bits entries; a ROM in
hardware).

:class:`QuantGraph` -- the chain, its float edges (``QuantizeLinear`` of a float32 input,
``DequantizeLinear`` of the last codes, through :func:`~qdp.golden.quantize_linear` and
:func:`~qdp.golden.dequantize_linear`) and :meth:`QuantGraph.run`, which returns every
layer's output (:class:`Trace`). The layers are a list in order; each layer names the
tensor it reads and writes (``source``, ``name``), so a DAG can later reuse them.

:func:`qlinear_params` -- the one mapping of a :class:`LinearLayer` in the ``integer``
model onto the quantized linear layer block (:class:`qdp.hdl.QLinear`, golden
:func:`qdp.golden.qlinear`): its keyword arguments, or a ``ValueError`` naming the layer
where the block cannot express it (an output clip that is no integer type's range).
"""

import dataclasses

import numpy as np

from . import floats
from ._intarray import int_range
from .dequantize_linear import dequantize_linear
from .floats import FP32
from .mac_array import matmul_int
from .quantize_linear import quantize_linear
from .quantizer import multiplier_from_scale, quantize
from .rounding import round_div

__all__ = ["REQUANT_MODELS", "Quant", "LinearLayer", "TableLayer", "QuantGraph", "Trace",
           "qlinear_params", "requantize_float32"]

#: The requantization models of a :class:`LinearLayer` (see the module docstring).
REQUANT_MODELS = ("integer", "float32")
ACC_WIDTH = 32
MULT_WIDTH = 32


def _check_requant(requant):
    if requant not in REQUANT_MODELS:
        raise ValueError(f"requant: {requant!r} is not a requantization model; expected one "
                         f"of {', '.join(REQUANT_MODELS)}")


def _f32(value, name):
    array = np.asarray(value)
    if array.dtype != np.float32:
        raise TypeError(f"{name}: expected float32 (the file's scale type), got dtype "
                        f"{array.dtype}")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"{name}: scales must be positive finite float32 numbers")
    return array


@dataclasses.dataclass(frozen=True)
class Quant:
    """An activation tensor's quantization: ``real = (q - zero_point) * scale``.

    Members
    -------
    scale : numpy.float32
        Positive finite.
    zero_point : int
        In the code range.
    signed : bool
        int8 (True) or uint8 codes.
    bits : int
        Code width (8 for ONNX's int8/uint8).
    """

    scale: np.float32
    zero_point: int
    signed: bool
    bits: int = 8

    def __post_init__(self):
        object.__setattr__(self, "scale", np.float32(_f32(np.float32(self.scale), "scale")))
        lo, hi = int_range(self.bits, self.signed)
        if not lo <= int(self.zero_point) <= hi:
            raise ValueError(f"zero_point: {self.zero_point} is outside the code range "
                             f"{lo}..{hi}")
        object.__setattr__(self, "zero_point", int(self.zero_point))

    @property
    def range(self):
        """``(qmin, qmax)`` of the codes."""
        return int_range(self.bits, self.signed)

    @property
    def dtype(self):
        """NumPy dtype of the codes (int8/uint8 for 8 bits)."""
        return np.dtype(("i" if self.signed else "u") + str(max(self.bits // 8, 1)))

    def quantize(self, x):
        """ONNX ``QuantizeLinear`` of float32 ``x`` to these codes (int64)."""
        return quantize_linear(x, self.scale, self.zero_point, out_width=self.bits,
                               out_signed=self.signed)

    def dequantize(self, q):
        """ONNX ``DequantizeLinear`` of codes ``q`` (float32)."""
        return dequantize_linear(np.asarray(q, dtype=np.int64), self.scale, self.zero_point,
                                 in_width=self.bits, in_signed=self.signed)


def requantize_float32(acc, ratio, zero_point, lo, hi):
    """onnxruntime's float32 requantization of int32 ``acc`` (rows, N) by float32 ``ratio``
    (N,): ``clip(rint(fl32(fl32(acc) * ratio)) + zero_point, lo, hi)``, each float step an
    exact IEEE operation (:mod:`qdp.golden.floats`). int64 result."""
    acc = np.asarray(acc, dtype=object)
    ratio_bits = np.broadcast_to(FP32.bits(np.asarray(ratio, dtype=np.float32)), acc.shape)
    acc_bits = floats.round_integer(acc < 0, np.abs(acc), 0, FP32)
    product = floats.multiply(acc_bits, ratio_bits, FP32)
    cls, _ = floats.classify(product, FP32)
    sign, sig, exp = floats.decompose(product, FP32)
    num = sig.astype(object) * (2 ** np.maximum(exp, 0).astype(object))
    den = 2 ** np.maximum(-exp, 0).astype(object)
    rounded = round_div(np.where(sign, -num, num), den, "half_even")
    rounded = np.where(cls == floats.INF, np.where(sign, lo - zero_point - 1,
                                                   hi - zero_point + 1), rounded)
    return np.clip(rounded + zero_point, lo, hi).astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class LinearLayer:
    """A quantized linear layer (see the module docstring).

    Members
    -------
    name : str
        The tensor it writes (the file's name for the layer's output codes).
    source : str
        The tensor it reads.
    weights : numpy.ndarray of int64, shape (K, N)
    w_zero : numpy.ndarray of int64, shape (N,)
    w_scale : numpy.ndarray of float32, shape (N,)
    bias : numpy.ndarray of int64, shape (N,)
        int32 values in the accumulator's scale ``x.scale * w_scale``.
    x, y : Quant
        Input and output quantization.
    lo, hi : int
        The output clip (the output type's range, or narrower: a folded Relu/Clip).
    per_channel : bool
        The file gave one weight scale per output channel (else one, repeated here).
    node : str
        The file's node name (for messages and traces).
    w_bits, w_signed : int, bool
        The weight code type.
    """

    name: str
    source: str
    weights: np.ndarray
    w_zero: np.ndarray
    w_scale: np.ndarray
    bias: np.ndarray
    x: Quant
    y: Quant
    lo: int = None
    hi: int = None
    per_channel: bool = True
    node: str = ""
    w_bits: int = 8
    w_signed: bool = True

    def __post_init__(self):
        w = np.asarray(self.weights)
        if w.ndim != 2 or w.dtype.kind not in "iu":
            raise ValueError(f"weights: expected a 2-D integer matrix (K, N), got "
                             f"{w.dtype} {w.shape}")
        k, n = w.shape
        wlo, whi = int_range(self.w_bits, self.w_signed)
        if w.size and (w.min() < wlo or w.max() > whi):
            raise ValueError(f"weights: codes outside {wlo}..{whi}")
        object.__setattr__(self, "weights", w.astype(np.int64))
        for field, dtype in (("w_zero", np.int64), ("bias", np.int64)):
            value = np.broadcast_to(np.asarray(getattr(self, field)), (n,)).astype(dtype)
            object.__setattr__(self, field, value)
        scale = np.broadcast_to(_f32(self.w_scale, "w_scale"), (n,)).astype(np.float32)
        object.__setattr__(self, "w_scale", scale)
        blo, bhi = int_range(ACC_WIDTH, True)
        if n and (self.bias.min() < blo or self.bias.max() > bhi):
            raise ValueError("bias: values outside int32")
        qlo, qhi = self.y.range
        lo = qlo if self.lo is None else max(int(self.lo), qlo)
        hi = qhi if self.hi is None else min(int(self.hi), qhi)
        if lo > hi:
            raise ValueError(f"lo, hi: the clip {lo}..{hi} is empty")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def in_features(self):
        return self.weights.shape[0]

    @property
    def out_features(self):
        return self.weights.shape[1]

    @property
    def float_ratio(self):
        """``r[j] = fl32(fl32(x.scale * w_scale[j]) / y.scale)``, float32 (N,): the
        ``float32`` model's scale, formed as onnxruntime forms ``output_scales``."""
        sx = np.full(self.out_features, FP32.bits(np.asarray(self.x.scale)), dtype=np.int64)
        product = floats.multiply(sx, FP32.bits(self.w_scale), FP32)
        sy = np.full(self.out_features, FP32.bits(np.asarray(self.y.scale)), dtype=np.int64)
        return FP32.values(floats.divide(product, sy, FP32))

    @property
    def real_ratio(self):
        """``rho[j] = x.scale * w_scale[j] / y.scale`` in float64 (N,)."""
        return float(self.x.scale) * self.w_scale.astype(np.float64) / float(self.y.scale)

    def columns(self, start, stop):
        """The layer restricted to output channels ``start..stop-1`` (weights, zero
        points, scales and bias of those columns; input, output and clip unchanged): its
        outputs are columns ``start:stop`` of this layer's, in both models."""
        if not 0 <= start < stop <= self.out_features:
            raise ValueError(f"columns: {start}..{stop} is not a range of the "
                             f"{self.out_features} output channels of {self.name}")
        return dataclasses.replace(
            self, name=f"{self.name}[{start}:{stop}]", weights=self.weights[:, start:stop],
            w_zero=self.w_zero[start:stop], w_scale=self.w_scale[start:stop],
            bias=self.bias[start:stop])

    @property
    def multiplier_shift(self):
        """``(M, S)``, two int64 arrays (N,): the ``integer`` model's fixed point,
        :func:`~qdp.golden.multiplier_from_scale` of :attr:`real_ratio` (32-bit ``M``)."""
        ms = [multiplier_from_scale(float(r), mult_width=MULT_WIDTH) for r in self.real_ratio]
        return (np.array([m for m, _, _ in ms], dtype=np.int64),
                np.array([s for _, s, _ in ms], dtype=np.int64))

    def accumulate(self, q):
        """The int32 accumulators (rows, N) of input codes ``q`` (rows, K), bias
        included, wrapping as ONNX's int32 sum does."""
        q = np.asarray(q)
        if q.ndim != 2 or q.shape[1] != self.in_features:
            raise ValueError(f"q: layer {self.name} takes (rows, {self.in_features}) codes, "
                             f"got shape {q.shape}")
        return matmul_int(q, self.weights, a_zero=self.x.zero_point, b_zero=self.w_zero,
                          bias=self.bias, acc_width=ACC_WIDTH)

    def requantize(self, acc, requant="float32"):
        """Output codes (rows, N), int64, of accumulators ``acc`` in model ``requant``."""
        _check_requant(requant)
        acc = np.asarray(acc, dtype=np.int64)
        if requant == "float32":
            return requantize_float32(acc, self.float_ratio, self.y.zero_point, self.lo,
                                      self.hi)
        m, s = self.multiplier_shift
        y = quantize(acc, m[None, :], s[None, :], zero_point=self.y.zero_point,
                     in_width=ACC_WIDTH, mult_width=MULT_WIDTH, out_width=self.y.bits,
                     out_signed=self.y.signed, rounding="half_even", saturation="sat")
        return np.clip(y, self.lo, self.hi).astype(np.int64)

    def __call__(self, q, requant="float32"):
        return self.requantize(self.accumulate(q), requant)


@dataclasses.dataclass(frozen=True, eq=False)
class TableLayer:
    """An elementwise activation between two quantized tensors, tabulated:
    ``y = quantize_linear(clip(dequantize_linear(q; x), lo, hi); y)``.

    Members
    -------
    name, source, node : str
        As for :class:`LinearLayer`.
    x, y : Quant
    op : str
        ``"Relu"`` or ``"Clip"`` (what the file's node was).
    lo, hi : float or None
        The float clip bounds (Relu: 0 and None); None is unbounded.
    """

    name: str
    source: str
    x: Quant
    y: Quant
    op: str = "Relu"
    lo: float = 0.0
    hi: float = None
    node: str = ""

    @property
    def table(self):
        """Output code per input code ``qmin..qmax`` (int64, 2**bits entries)."""
        qlo, qhi = self.x.range
        real = self.x.dequantize(np.arange(qlo, qhi + 1))
        if self.lo is not None:
            real = np.maximum(real, np.float32(self.lo))
        if self.hi is not None:
            real = np.minimum(real, np.float32(self.hi))
        return self.y.quantize(real.astype(np.float32))

    def __call__(self, q, requant="float32"):
        _check_requant(requant)      # the same in both models: no accumulator
        q = np.asarray(q, dtype=np.int64)
        return self.table[q - self.x.range[0]]


@dataclasses.dataclass(frozen=True)
class Trace:
    """What :meth:`QuantGraph.run` returns.

    Members
    -------
    input : numpy.ndarray of int64
        The first layer's input codes (the QuantizeLinear of a float input, or the given
        codes).
    layers : list of numpy.ndarray of int64
        Each layer's output codes, in order.
    output : numpy.ndarray
        The model's output: float32 (DequantizeLinear of the last codes) or the last
        codes.
    """

    input: np.ndarray
    layers: list
    output: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class QuantGraph:
    """A quantized network: ``layers`` in order between the model's edges.

    Members
    -------
    layers : list of LinearLayer or TableLayer
        Each reads the tensor the one before writes; quantizations match.
    input_name, output_name : str
        The model's input and output names.
    float_input : bool
        The input is float32, quantized by ``QuantizeLinear`` with the first layer's
        ``x`` (else the input is those codes).
    float_output : bool
        The output is ``DequantizeLinear`` of the last codes (else the codes).
    """

    layers: list
    input_name: str = "x"
    output_name: str = "y"
    float_input: bool = True
    float_output: bool = True

    def __post_init__(self):
        if not self.layers:
            raise ValueError("layers: a graph needs at least one layer")
        for before, after in zip(self.layers, self.layers[1:]):
            if after.source != before.name or after.x != before.y:
                raise ValueError(f"layers: {after.name} reads {after.source} {after.x}, but "
                                 f"{before.name} writes {before.y}")

    @property
    def input(self):
        """The input's :class:`Quant`."""
        return self.layers[0].x

    @property
    def output(self):
        """The last layer's output :class:`Quant`."""
        return self.layers[-1].y

    @property
    def in_features(self):
        return next(layer.in_features for layer in self.layers if hasattr(layer, "weights"))

    def summary(self):
        """One JSON-able dict per layer: ``kind``, ``name``, ``source``, ``node``, the
        input and output quantization (``scale`` as a float, ``zero_point``, ``signed``,
        ``bits``), and for a linear layer ``in_features``, ``out_features``,
        ``per_channel``, ``clip`` (``[lo, hi]``) and ``weight_bytes``; for a table layer
        ``op`` and ``entries``."""
        rows = []
        for layer in self.layers:
            row = {"kind": type(layer).__name__, "name": layer.name, "source": layer.source,
                   "node": layer.node,
                   **{side: {"scale": float(q.scale), "zero_point": q.zero_point,
                             "signed": q.signed, "bits": q.bits}
                      for side, q in (("x", layer.x), ("y", layer.y))}}
            if isinstance(layer, LinearLayer):
                row.update(in_features=layer.in_features, out_features=layer.out_features,
                           per_channel=layer.per_channel, clip=[layer.lo, layer.hi],
                           weight_bytes=layer.in_features * layer.out_features
                           * -(-layer.w_bits // 8))
            else:
                row.update(op=layer.op, entries=int(layer.table.size))
            rows.append(row)
        return rows

    def quantize_input(self, x):
        """The first layer's codes of model input ``x`` (float32 or codes), 2-D."""
        x = np.asarray(x)
        if self.float_input:
            if x.dtype != np.float32:
                raise TypeError(f"x: the model's input {self.input_name} is float32, got "
                                f"dtype {x.dtype}")
            q = self.input.quantize(x)
        else:
            lo, hi = self.input.range
            if x.dtype.kind not in "iu" or (x.size and (x.min() < lo or x.max() > hi)):
                raise ValueError(f"x: the model's input {self.input_name} takes codes "
                                 f"{lo}..{hi}")
            q = x.astype(np.int64)
        return q.reshape(1, -1) if q.ndim == 1 else q

    def run(self, x, requant="float32"):
        """Run the chain on ``x`` (rows, features) in requantization model ``requant``
        (:data:`REQUANT_MODELS`); every layer's output in a :class:`Trace`."""
        _check_requant(requant)
        q = self.quantize_input(x)
        outputs = []
        a = q
        for layer in self.layers:
            a = layer(a, requant)
            outputs.append(a)
        out = self.output.dequantize(a) if self.float_output else a
        return Trace(input=q, layers=outputs, output=out)


def _clip_type(layer):
    """``(out_width, out_signed)`` whose saturation range is the layer's clip ``[lo, hi]``.

    The Quantizer saturates to its output type only, so a clip narrower than ``y``'s type
    (a folded Relu or Clip) is expressible exactly when ``[lo, hi]`` is the range of a
    narrower type: then ``clip(sat_y(v), lo, hi) = clip(v, lo, hi) = sat_w(v)``. A Relu
    folded into int8 codes with zero point 0 (symmetric activations) is ``[0, 127]``, the
    uint7 range; with zero point -128 (uint8: 0) it is the type's own range.
    """
    y, lo, hi = layer.y, layer.lo, layer.hi
    if (lo, hi) == y.range:
        return y.bits, y.signed
    for bits in range(2, y.bits + 1):
        for signed in (False, True):
            if int_range(bits, signed) == (lo, hi) and lo <= y.zero_point <= hi:
                return bits, signed
    raise ValueError(f"layer {layer.node or layer.name}: its output clip {lo}..{hi} (a "
                     f"folded Relu/Clip, zero point {y.zero_point}) is narrower than the "
                     f"{'int' if y.signed else 'uint'}{y.bits} output and is not the range "
                     f"of an integer type containing the zero point, so the QLinear's "
                     f"saturation cannot express it")


def qlinear_params(layer, *, rows=4):
    """Keyword arguments of :class:`qdp.hdl.QLinear` (and, renamed, of
    :func:`qdp.golden.qlinear`) that compute :class:`LinearLayer` ``layer`` in the
    ``integer`` model bit for bit, ``rows`` inputs per tile (JSON-able).

    ``cols`` = out_features; A is the input codes (``a_width`` = x.bits, ``a_signed`` =
    x.signed, ``a_zero`` = x.zero_point), B the weights (``b_width``, ``b_signed``,
    ``b_zero`` per column, or one value when the file has one); ``bias`` per column;
    ``(multiplier, shift)`` = :attr:`LinearLayer.multiplier_shift` per column,
    ``zero_point`` = y.zero_point; 32-bit wrapping accumulator, 32-bit multiplier, half
    to even, saturating to the clip's type (:func:`_clip_type`: ``out_width`` may be
    narrower than y's bits, e.g. 7 unsigned for a folded Relu on symmetric int8 -- the
    same codes). ``ValueError`` naming the layer when the clip is not expressible.
    """
    out_width, out_signed = _clip_type(layer)
    m, s = layer.multiplier_shift
    w_zero = [int(v) for v in layer.w_zero]
    return {"rows": rows, "cols": layer.out_features,
            "a_width": layer.x.bits, "a_signed": layer.x.signed,
            "b_width": layer.w_bits, "b_signed": layer.w_signed,
            "a_zero": layer.x.zero_point,
            "b_zero": w_zero[0] if len(set(w_zero)) == 1 else w_zero,
            "bias": [int(v) for v in layer.bias],
            "multiplier": [int(v) for v in m], "shift": [int(v) for v in s],
            "zero_point": layer.y.zero_point, "acc_width": ACC_WIDTH, "saturate": False,
            "mult_width": MULT_WIDTH, "out_width": out_width, "out_signed": out_signed,
            "rounding": "half_even", "saturation": "sat"}
