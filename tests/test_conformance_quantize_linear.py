"""qdp's float golden models, QuantizeLinear and DequantizeLinear, against the ONNX
reference evaluator, onnxruntime (CPUExecutionProvider) and PyTorch, bit for bit.

Every comparison is exact: 0 differences, except the deliberate ones listed here, which
the tests identify element by element (from each runtime's own arithmetic, modelled
exactly) and count -- never a tolerance. Run with ``-s -n 0`` to see the counts.

Compared: opset-21 models built with onnx.helper, ``x`` of FP32, FP16 and BF16 quantized
to int8, uint8, int16, uint16, int4 and uint4 (4-bit tensors cross the Python boundary
as 8-bit ones through Cast nodes, in both runtimes), and int8 ... int32 (with and
without a zero point) dequantized to FP32, FP16 and BF16; per tensor, per axis (the
middle axis of a 3-D tensor), per block along the last axis, per block along axis 0
with a ragged last block (45 = 5 * 8 + 5), and "run-time" scales -- one per element,
from every class of bit pattern (zero, negative, subnormal, huge, Inf, NaN) -- through
the ``*_bits`` functions. Inputs come from :func:`qdp.sim.float_vectors.hard_floats`
(ties, neighbours, saturation edges, subnormals, +-0, +-max, +-Inf, NaNs) plus quotients
at the int32 limits; scales are ordinary, subnormal and huge; zero points include both
ends of the range. The volumes are asserted by :func:`test_volumes`.

What the runtimes compute, and where they deliberately differ from qdp:

* ONNX reference, QuantizeLinear: ``q = x / s`` in x's type, then
  ``np.rint(q).astype(np.int32)``, ``+= z`` in int32, clip. The cast is undefined for NaN,
  +-Inf and ``|rint(q)| >= 2**31``: NumPy on x86 gives INT_MIN (the "integer indefinite"
  of cvttps2dq) for float32 and float16 quotients, ml_dtypes gives 0 for bfloat16 ones.
  The int32 addition then wraps for INT_MIN + z (z < 0) and for 2**31 - 128 + z
  (z >= 128; -2**31 + z, z < 0, likewise). So a NaN, +-Inf or huge float32 / float16
  quotient gives qmin for z >= 0 but qmax for z < 0, a bfloat16 one gives z, and a
  quotient just inside the int32 range can come out at the wrong end -- where the
  specification, onnxruntime and qdp saturate (NaN: qmin). The tests predict the
  reference's output from its own quotient and check that it differs from qdp on exactly
  those elements and matches everywhere else.
* ONNX reference, DequantizeLinear: identical to qdp everywhere (NaN compared as NaN).
* onnxruntime, QuantizeLinear: FP32 identical to qdp, NaN -> qmin included. FP16:
  onnxruntime widens x and the scale to float32 and divides there; it never rounds the
  quotient to float16, which the reference and qdp do. Its output is qdp's FP32 model of
  the widened operands, bit for bit; it differs from qdp's FP16 model exactly where
  ``rint(fl16(x / s))`` and ``rint(fl32(x / s))`` part (after the zero point and the clip).
* onnxruntime, DequantizeLinear: identical to qdp, except int32 with a zero point: it
  computes ``q - z`` in int32 (wrapping outside the int32 range), converts that once to
  float32 and multiplies in float32, ``fl_out(fl32(fl32(wrap32(q - z)) * s))``, where the
  reference (and qdp) round ``q`` to float32, subtract ``z`` exactly in float64 and round
  the float64 product to the output format. The differences are counted by cause: the
  wrap, ``fl32(q - z) != fl32(q) - z``, and (FP16 output) the float32 product's second
  rounding.
* onnxruntime has int4 / uint4 kernels; its Python binding cannot carry 4-bit arrays,
  hence the Cast nodes (:func:`test_onnxruntime_cannot_feed_4_bit_tensors`).
* onnxruntime has no bfloat16 kernel for either operator (NOT_IMPLEMENTED at session
  creation); the tests assert that instead of skipping.
* torch.quantize_per_tensor (quint8, qint8; FBGEMM's vector kernel): ``inv = fl32(1 / s)``;
  ``t = fma(x, inv, z)``, rounded once to float32 -- the zero point is added *before*
  rounding; ``t = min(t, 2**31 - 128)``, where minps turns a NaN into 2**31 - 128; round
  half to even; clip. Against qdp: NaN gives qmax (qdp: qmin), and so does 0 * Inf; a
  scale below 2**-128 makes ``1 / s`` overflow to Inf, so every nonzero x saturates;
  an exact tie ``fl32(x / s) = k + 1/2`` with an odd zero point rounds the other way;
  and the reciprocal and the fused rounding move values near a tie by one step.
* torch.fake_quantize_per_tensor_affine: ``q = clamp(fl32(z + rint(fl32(x * inv))))`` --
  the zero point is added *after* rounding, like ONNX; ``fmax`` drops a NaN, so NaN gives
  qmin like qdp -- then ``fl32(float(q - z) * s)``. Against qdp: only the reciprocal
  (near ties) and the overflowing reciprocal of a scale below 2**-128.
"""

import dataclasses
import platform

import ml_dtypes
import numpy as np
import pytest

from conftest import require
from qdp.golden import floats
from qdp.golden.dequantize_linear import dequantize_linear, dequantize_linear_bits
from qdp.golden.floats import FP16, FP32
from qdp.golden.quantize_linear import quantize_linear, quantize_linear_bits
from qdp.sim.float_vectors import hard_floats, special_floats

try:
    import onnx
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator
except ImportError:         # the module still imports: each test then skips, or fails in CI
    onnx = None
try:
    import onnxruntime as ort
except ImportError:
    ort = None
try:
    import torch
except ImportError:
    torch = None

pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor.*:UserWarning")

OPSET = 21
RUNTIMES = ("reference", "onnxruntime")
FORMAT_NAMES = ("fp32", "fp16", "bf16")
ONNX_FLOAT = {"fp32": "FLOAT", "fp16": "FLOAT16", "bf16": "BFLOAT16"}
#: name -> (TensorProto name, width, signed).
QTYPES = {
    "int8": ("INT8", 8, True), "uint8": ("UINT8", 8, False),
    "int16": ("INT16", 16, True), "uint16": ("UINT16", 16, False),
    "int4": ("INT4", 4, True), "uint4": ("UINT4", 4, False),
    "int32": ("INT32", 32, True),
}
QUANTIZE_TYPES = ("int8", "uint8", "int16", "uint16", "int4", "uint4")
DEQUANTIZE_TYPES = QUANTIZE_TYPES + ("int32",)
LAYOUTS = ("tensor", "axis", "block", "ragged", "runtime")
#: int32 DequantizeLinear also gets "pattern": per-element (q, z, s) built so that every
#: rounding step (q to float32, the product to the output format) meets a midpoint.
DQ_LAYOUTS = {q: LAYOUTS + (("pattern",) if q == "int32" else ()) for q in DEQUANTIZE_TYPES}
TORCH_DTYPES = {"quint8": "uint8", "qint8": "int8"}
#: fake_quantize ranges -> the FP32 per-tensor QuantizeLinear cases they reuse.
FAKE_RANGES = {"uint8": (0, 255), "int8": (-128, 127), "int4": (-8, 7), "uint4": (0, 15),
               "int16": (-32768, 32767), "uint16": (0, 65535)}
MILLION = 1_000_000
INT32_MIN = -(1 << 31)
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
#: What the reference's ``rint(q).astype(np.int32)`` gives where it is undefined (x86):
#: NumPy's cast of float32 / float16 (cvttss2si), ml_dtypes' cast of bfloat16.
UNDEFINED_CAST = {"fp32": INT32_MIN, "fp16": INT32_MIN, "bf16": 0}


def _need(*names):
    """Skip without the optional runtimes (pip install "qdp[dev,torch]"); CI fails."""
    have = {"onnx": onnx, "onnxruntime": ort, "torch": torch}
    require("this conformance test", [n for n in names if have[n] is None],
            " (the optional 'dev' and 'torch' extras)")


def int_range(width, signed):
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)


def _io_dtype(qname):
    """The NumPy type a tensor of ``qname`` is fed and fetched as (4 bits: 8 bits)."""
    _, width, signed = QTYPES[qname]
    return np.dtype(f"{'' if signed else 'u'}int{max(width, 8)}")


def _size(op, fname, qname, layout):
    """Elements per case. The FP32 per-tensor int8 / uint8 QuantizeLinear cases are also
    PyTorch's (a million values between them)."""
    if op == "q":
        if fname != "fp32":
            return 10_000
        return 520_000 if layout == "tensor" and qname in ("int8", "uint8") else 20_000
    if layout == "pattern":
        return 20_000 if fname == "fp32" else 5_000
    return 16_000 if fname == "fp32" else 5_000


# --- stimulus --------------------------------------------------------------------------

def _scale_bank(rng, fmt):
    """Positive finite scales (bit patterns): ordinary, subnormal and tiny, huge."""
    m = fmt.man_bits
    ordinary = [1.0, 0.5, 2.0 ** -7, 0.1, 1 / 3, 0.0123, 7.3] + list(
        10.0 ** rng.uniform(-4, 1, 5))
    ordinary = [int(b) for b in fmt.bits(np.asarray(ordinary).astype(fmt.dtype))]
    tiny = [1, 0b101, (1 << (m - 1)) | 3, (1 << m) - 1, 1 << m, (1 << m) | (1 << (m - 1))]
    top = 2 * fmt.bias                              # the largest finite exponent field
    huge = [fmt.max_bits, (top << m) | (1 << (m - 1)), ((top - 3) << m) | 5]
    return np.array(ordinary + tiny + huge, dtype=np.int64)


def _zero_points(width, signed):
    lo, hi = int_range(width, signed)
    return np.array(sorted({lo, lo + 1, hi - 1, hi, 0, 1} | ({-1} if signed else set())))


def _runtime_scales(rng, fmt, n):
    """Any bit pattern: specials (zeros, Inf, NaN, ...), random bits, the bank, negated."""
    bank = _scale_bank(rng, fmt)
    sign = 1 << (fmt.width - 1)
    kind = rng.integers(0, 8, n)
    return np.select([kind == 0, kind < 3, kind < 7],
                     [rng.choice(special_floats(fmt), n),
                      rng.integers(0, 1 << fmt.width, n),
                      rng.choice(bank, n)], rng.choice(bank, n) | sign)


def _geometry(layout, n):
    """``(shape, axis, block)`` of a layout of about ``n`` elements (per tensor: chunks)."""
    return {"axis": ((n // 60, 20, 3), -2, None),       # per axis: the middle one
            "block": ((n // 64, 64), -1, 16),           # blocks along the last axis
            "ragged": ((45, n // 45), 0, 8),            # 45 = 5 * 8 + 5: a short last block
            "tensor": ((n,), None, None)}.get(layout, ((n,), 0, None))


def _layouts(rng, fmt, width, signed, layout, n):
    """``(shape, axis, block, s_bits, z)`` per chunk of ``n`` elements."""
    bank, zps = _scale_bank(rng, fmt), _zero_points(width, signed)
    shape, axis, block = _geometry(layout, n)
    if layout == "tensor":
        combos = [(s, z) for s in bank for z in zps]
        rng.shuffle(combos)
        combos = combos[:int(np.clip(n // 4000, 6, len(combos)))]
        sizes = np.diff(np.linspace(0, n, len(combos) + 1).astype(int))
        return [((int(k),), None, None, np.asarray(s), np.asarray(z))
                for k, (s, z) in zip(sizes, combos)]
    if layout == "runtime":
        return [(shape, axis, block, _runtime_scales(rng, fmt, n), rng.choice(zps, n))]
    if block is None:
        p_shape = (shape[axis],)
    else:
        p_shape = tuple(-(-d // block) if i == axis % len(shape) else d
                        for i, d in enumerate(shape))
    return [(shape, axis, block, rng.choice(bank, p_shape), rng.choice(zps, p_shape))]


def _spread(p, shape, axis, block):
    """A parameter spread over ``x``'s shape (written here, not with qdp's expand)."""
    p = np.asarray(p)
    if p.ndim == 0:
        return np.broadcast_to(p, shape)
    if block is None:
        view = [1] * len(shape)
        view[axis] = -1
        return np.broadcast_to(p.reshape(view), shape)
    return np.repeat(p, block, axis=axis).take(range(shape[axis]), axis=axis)


def _nudge(rng, fmt, bits):
    """Move finite patterns -2..+2 steps in magnitude (Inf stays Inf)."""
    magnitude = bits & ((1 << (fmt.width - 1)) - 1)
    moved = np.where(magnitude >= fmt.inf_bits, magnitude,
                     np.clip(magnitude + rng.integers(-2, 3, bits.shape), 0, fmt.max_bits))
    return moved | (bits & (1 << (fmt.width - 1)))


def _int32_edges(rng, fmt, s_bits):
    """x with ``x / s`` near the int32 limits, where the reference's cast and its int32
    addition of the zero point overflow: 2**31 - 128 j, -2**31 + 128 j, +-2**31, +-2**24."""
    n = s_bits.size
    j = rng.integers(0, 520, n)
    kind = rng.integers(0, 4, n)
    t = np.select([kind == 0, kind == 1, kind == 2],
                  [2.0 ** 31 - 128 * j, -2.0 ** 31 + 128 * j,
                   rng.choice([-1.0, 1.0], n) * 2.0 ** 31], rng.choice([-1, 1], n) * 2.0 ** 24)
    with np.errstate(all="ignore"):
        x = (t * fmt.values(s_bits).astype(np.float64)).astype(fmt.dtype)
    return _nudge(rng, fmt, fmt.bits(x))


def _hard_inputs(rng, fmt, s_full, z_full, width, signed, piece=512):
    """hard_floats in pieces (each piece gets every special value), aimed element by
    element at its scale and zero point; 1/32 of them at the int32 limits."""
    s_flat, z_flat = s_full.reshape(-1), z_full.reshape(-1)
    out = np.empty(s_flat.size, dtype=np.int64)
    for start in range(0, s_flat.size, piece):
        part = slice(start, min(start + piece, s_flat.size))
        out[part] = hard_floats(rng, out[part].size, fmt, s_flat[part],
                                zero_point=z_flat[part], out_width=width, out_signed=signed)
    if fmt.exp_bits == 8:                           # fp32, bf16: quotients reach 2**31
        at = rng.choice(out.size, out.size // 32, replace=False)
        out[at] = _int32_edges(rng, fmt, s_flat[at])
    return out.reshape(s_full.shape)


def _int_values(rng, width, signed, z_full):
    """Integers of the type: uniform, near the zero point, the range's ends, small; for
    int32 also float32 ties and their neighbours (2**24 .. 2**31)."""
    lo, hi = int_range(width, signed)
    shape, n = z_full.shape, z_full.size
    z = z_full.reshape(-1)
    kind = rng.integers(0, 6 if width > 16 else 5, n)
    e = rng.integers(24, 31, n)
    tie = ((rng.integers(1 << 23, 1 << 24, n) << (e - 23)) + (1 << (e - 24))
           + rng.integers(-1, 2, n) * np.where(rng.integers(0, 2, n) == 0, 1, 1 << (e - 24)))
    q = np.select([kind == 0, kind == 1, kind == 2, kind == 3, kind == 4],
                  [rng.integers(lo, hi, n, endpoint=True), z + rng.integers(-3, 4, n),
                   rng.choice([lo, lo + 1, hi - 1, hi, 0], n), rng.integers(-300, 301, n),
                   rng.integers(lo, hi, n, endpoint=True)],
                  rng.choice([-1, 1], n) * tie)
    return np.clip(q, lo, hi).reshape(shape)


def _product_midpoints(rng, fmt, tries=1 << 18):
    """``(d, s_bits)``: d a float32 value (24 bits) whose product with s, rounded to
    float32, lands exactly on a midpoint of ``fmt`` that the exact product is not on --
    where a float32 product then a second rounding errs. Found by search (FP16: about
    one in 2**14 tries)."""
    d = rng.integers(1 << 23, 1 << 24, tries)
    ms = rng.integers(1 << fmt.man_bits, 1 << fmt.precision, tries)
    product = d * ms
    length = np.frexp(product.astype(np.float64))[1]            # exact: < 2**48
    cut, p = length - 24, fmt.precision
    rest = product & ((1 << cut) - 1)
    hit = (((product >> (length - p - 1)) & 1) == 1) \
        & (((product >> cut) & ((1 << (23 - p)) - 1)) == 0) & (rest != 0) \
        & (rest < (1 << (cut - 1)))
    d, ms, length = d[hit], ms[hit], length[hit]
    k = np.maximum(rng.integers(fmt.emin + 1, fmt.emax + 2, d.size) - length,
                   fmt.emin - fmt.man_bits)
    s_bits = fmt.bits(np.ldexp(ms.astype(np.float64), k).astype(fmt.dtype))
    return rng.choice([-1, 1], d.size) * d, s_bits


def _patterns(rng, fmt, n, with_zp):
    """int32 DequantizeLinear's hard cases, one (q, z, s) per element: d = q - z has the
    top p bits (p = 8, 11, 24: BF16, FP16, FP32), then a 1 (a midpoint), then -1, 0 or +1;
    with a zero point q is a float32 value and z = q - d; the scale is mostly a power of
    two (the midpoint survives the product), sometimes from the bank. For FP16 with a zero
    point, some d and s come from :func:`_product_midpoints`."""
    p = rng.choice([8, 11, 24], n)
    a = rng.integers(p + 2, 31)
    top = rng.integers(0, 1 << 62, n) % (1 << (p - 1)) + (1 << (p - 1))
    d = rng.choice([-1, 1], n) * ((top << (a - p)) + (1 << (a - p - 1))
                                  + rng.integers(-1, 2, n))
    k = np.clip(rng.integers(fmt.emin - a, fmt.emax - a + 1), fmt.emin - fmt.man_bits,
                fmt.emax)
    power = fmt.bits(np.ldexp(1.0, k).astype(fmt.dtype))
    s_bits = np.where(rng.integers(0, 3, n) == 0, rng.choice(_scale_bank(rng, fmt), n), power)
    if not with_zp:
        return np.clip(d, INT32_MIN, (1 << 31) - 1), None, s_bits
    if fmt == FP16:
        d_mid, s_mid = _product_midpoints(rng, fmt)
        d[:d_mid.size], s_bits[:d_mid.size] = d_mid, s_mid
    q = rng.integers(-(1 << 23), 1 << 23, n) << rng.integers(0, 7, n)
    z = q - d
    keep = (z >= INT32_MIN) & (z < 1 << 31)
    return np.where(keep, q, 0), np.where(keep, z, -d), s_bits


# --- cases -----------------------------------------------------------------------------

@dataclasses.dataclass
class Chunk:
    """One run: ``x`` (bit patterns for QuantizeLinear, ints for DequantizeLinear), the
    scale's bit patterns and the zero point (None: the input is absent) in their layout,
    and qdp's output (ints, or the output format's bit patterns)."""
    shape: tuple
    axis: object
    block: object
    x: np.ndarray
    s_bits: np.ndarray
    z: object
    golden: np.ndarray = None

    def full(self, p):
        return _spread(p, self.shape, self.axis, self.block).reshape(-1)


@dataclasses.dataclass
class Case:
    op: str
    fname: str
    qname: str
    layout: str
    chunks: list

    @property
    def fmt(self):
        return floats.FORMATS[self.fname]

    @property
    def width(self):
        return QTYPES[self.qname][1]

    @property
    def signed(self):
        return QTYPES[self.qname][2]

    @property
    def size(self):
        return sum(c.x.size for c in self.chunks)

    def flat(self, what):
        """Concatenated over chunks, element by element: "x", "s" (bits), "z", "golden"."""
        parts = []
        for c in self.chunks:
            if what == "x":
                parts.append(c.x.reshape(-1))
            elif what == "golden":
                parts.append(c.golden.reshape(-1))
            elif what == "s":
                parts.append(c.full(c.s_bits))
            else:
                parts.append(c.full(0 if c.z is None else c.z))
        return np.concatenate(parts).astype(np.int64)

    def values(self, bits):
        return self.fmt.values(bits)


def _quantize_case(fname, qname, layout, seed):
    fmt = floats.FORMATS[fname]
    _, width, signed = QTYPES[qname]
    rng = np.random.default_rng(seed)
    chunks = []
    n = _size("q", fname, qname, layout)
    for shape, axis, block, s_bits, z in _layouts(rng, fmt, width, signed, layout, n):
        s_full = _spread(s_bits, shape, axis, block)
        x = _hard_inputs(rng, fmt, s_full, _spread(z, shape, axis, block), width, signed)
        chunk = Chunk(shape, axis, block, x, s_bits, z)
        if layout == "runtime":                     # any scale: the run-time semantics
            chunk.golden = quantize_linear_bits(x, s_full, chunk.full(z).reshape(shape), fmt,
                                                out_width=width, out_signed=signed)
        else:
            chunk.golden = quantize_linear(fmt.values(x), fmt.values(s_bits), z,
                                           in_format=fname, out_width=width,
                                           out_signed=signed, axis=axis, block_size=block)
        chunks.append(chunk)
    return Case("q", fname, qname, layout, chunks)


def _dequantize_case(fname, qname, layout, with_zp, seed):
    fmt = floats.FORMATS[fname]
    _, width, signed = QTYPES[qname]
    rng = np.random.default_rng(seed)
    chunks = []
    n = _size("dq", fname, qname, layout)
    if layout == "pattern":
        q, z, s_bits = _patterns(rng, fmt, n, with_zp)
        params = [((n,), 0, None, s_bits, z)]
    else:
        params = _layouts(rng, fmt, width, signed, layout, n)
    for shape, axis, block, s_bits, z in params:
        z = z if with_zp else None
        if layout != "pattern":
            q = _int_values(rng, width, signed, _spread(0 if z is None else z, shape, axis,
                                                        block))
        chunk = Chunk(shape, axis, block, np.asarray(q).reshape(shape), s_bits, z)
        if layout in ("runtime", "pattern"):
            chunk.golden = dequantize_linear_bits(
                chunk.x.reshape(-1), chunk.full(s_bits), None if z is None else chunk.full(z),
                fmt, in_width=width).reshape(shape)
        else:
            y = dequantize_linear(chunk.x, fmt.values(s_bits), z, out_format=fname, axis=axis,
                                  block_size=block, in_width=width, in_signed=signed)
            chunk.golden = fmt.bits(y)
        chunks.append(chunk)
    return Case("dq", fname, qname, layout, chunks)


class Cases:
    """Cases generated on first use and kept for the module: the reference, onnxruntime
    and PyTorch tests compare against the same values and the same qdp outputs."""

    def __init__(self):
        self._cache = {}

    def _get(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def quantize(self, fname, qname, layout):
        seed = ["q", fname, qname, layout]
        return self._get(tuple(seed), lambda: _quantize_case(fname, qname, layout,
                                                             _seed(seed)))

    def dequantize(self, fname, qname, layout, with_zp):
        seed = ["dq", fname, qname, layout, str(with_zp)]
        return self._get(tuple(seed), lambda: _dequantize_case(fname, qname, layout, with_zp,
                                                               _seed(seed)))


def _seed(words):
    return [sum(ord(c) * 31 ** i for i, c in enumerate(w)) % (1 << 32) for w in words]


@pytest.fixture(scope="module")
def cases():
    return Cases()


# --- the runtimes ----------------------------------------------------------------------

def _model(case, chunk):
    """The opset-21 model of one case: 4-bit tensors enter and leave through Cast."""
    fname, qname = case.fname, case.qname
    ft, qt = getattr(TensorProto, ONNX_FLOAT[fname]), getattr(TensorProto, QTYPES[qname][0])
    io = helper.np_dtype_to_tensor_dtype(_io_dtype(qname))
    cast = io != qt

    def info(name, elem, rank):
        return helper.make_tensor_value_info(name, elem, [None] * rank)

    p_rank = np.ndim(chunk.s_bits)
    attrs = {} if chunk.axis is None else {"axis": chunk.axis}
    if chunk.block is not None:
        attrs["block_size"] = chunk.block
    nodes, inputs = [], [info("x", ft if case.op == "q" else io, len(chunk.shape)),
                         info("s", ft, p_rank)]
    x_name, z_names = "x", []
    if chunk.z is not None:
        inputs.append(info("z", io, p_rank))
        z_names = ["z4"] if cast else ["z"]
        if cast:
            nodes.append(helper.make_node("Cast", ["z"], ["z4"], to=qt))
    if case.op == "q":
        out = "y4" if cast else "y"
        nodes.append(helper.make_node("QuantizeLinear", ["x", "s"] + z_names, [out], **attrs))
        if cast:
            nodes.append(helper.make_node("Cast", ["y4"], ["y"], to=io))
        output = info("y", io, len(chunk.shape))
    else:
        if cast:
            nodes.append(helper.make_node("Cast", ["x"], ["x4"], to=qt))
            x_name = "x4"
        nodes.append(helper.make_node("DequantizeLinear", [x_name, "s"] + z_names, ["y"],
                                      **attrs))
        output = info("y", ft, len(chunk.shape))
    graph = helper.make_graph(nodes, "g", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def _feeds(case, chunk):
    io = _io_dtype(case.qname)
    x = case.values(chunk.x) if case.op == "q" else chunk.x.astype(io)
    feeds = {"x": x, "s": np.asarray(case.values(np.asarray(chunk.s_bits)))}
    if chunk.z is not None:
        feeds["z"] = np.asarray(chunk.z).astype(io)
    return feeds


def _session(model):
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _run(runtime, case):
    """The runtime's output over the case, flattened (ints, or bit patterns)."""
    run, outputs, key = None, [], None
    for chunk in case.chunks:
        shape_key = (len(chunk.shape), np.ndim(chunk.s_bits), chunk.z is None)
        if shape_key != key:
            model, key = _model(case, chunk), shape_key
            run = (ReferenceEvaluator(model).run if runtime == "reference"
                   else _session(model).run)
        with np.errstate(all="ignore"):        # the reference's undefined casts
            (y,) = run(None, _feeds(case, chunk))
        outputs.append(np.asarray(y).reshape(-1))
    y = np.concatenate(outputs)
    return y.astype(np.int64) if case.op == "q" else case.fmt.bits(y.astype(case.fmt.dtype))


def _lacks_kernel(case):
    """onnxruntime has no kernel for this case: session creation says NOT_IMPLEMENTED."""
    op = "QuantizeLinear" if case.op == "q" else "DequantizeLinear"
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.NotImplemented,
                       match=rf"NOT_IMPLEMENTED : Could not find an implementation for "
                             rf"{op}\({OPSET}\)"):
        _session(_model(case, case.chunks[0]))


# --- what each runtime computes, modelled ----------------------------------------------

def _spec_quantize(x, s, z, width, signed):
    """ONNX QuantizeLinear as the specification reads, in NumPy on x's own type (written
    here, not from qdp): q = x / s (IEEE), y = saturate(rint(q) + z); a NaN q gives qmin
    (onnxruntime's value, which qdp specifies). Returns y and q (float64)."""
    lo, hi = int_range(width, signed)
    with np.errstate(all="ignore"):
        q = np.asarray(x / s).astype(np.float64)
    y = np.clip(np.rint(np.nan_to_num(q, nan=0.0, posinf=2.0 ** 62, neginf=-2.0 ** 62)) + z,
                lo, hi)
    return np.where(np.isnan(q), lo, y).astype(np.int64), q


def _reference_prediction(q, z, width, signed, fname):
    """What onnx.reference makes of its quotient ``q``: ``rint(q).astype(np.int32)``
    (UNDEFINED_CAST for NaN, +-Inf, |rint(q)| >= 2**31), ``+= z`` wrapping in int32, clip.
    Returns the prediction, the undefined casts and the wrapped additions."""
    c = np.rint(q)
    undefined = ~np.isfinite(c) | (c >= 2.0 ** 31) | (c < -2.0 ** 31)
    cast = np.where(undefined, UNDEFINED_CAST[fname], np.where(undefined, 0.0, c))
    cast = cast.astype(np.int64)
    total = cast + z
    wrapped = (total - INT32_MIN) % (1 << 32) + INT32_MIN
    lo, hi = int_range(width, signed)
    return np.clip(wrapped, lo, hi), undefined, wrapped != total


def _fma32(a, b, c):
    """float32 ``fma(a, b, c)``: ``a * b + c`` rounded once. The product is exact in
    float64; TwoSum splits the sum into ``s + e`` exactly, and ``e`` decides the one case
    where rounding ``s`` alone could err: ``s`` on a float32 midpoint."""
    with np.errstate(all="ignore"):
        p = a.astype(np.float64) * np.float64(b)
        c = np.float64(c)
        s = p + c
        bv = s - p
        e = (p - (s - bv)) + (c - bv)
        r = s.astype(np.float32)
        r64 = r.astype(np.float64)
        side = np.sign(s - r64)
        other = np.nextafter(r, (side * np.inf).astype(np.float32))
        midpoint = np.isfinite(r) & (side != 0) & (2 * (s - r64) == other.astype(np.float64) - r64)
        up = midpoint & (e != 0) & (np.sign(e) == side)
    return np.where(up, other, r)


def _torch_quantize_model(x, s, z, width, signed):
    """FBGEMM's quantize (see the module): fl32(fma(x, fl32(1/s), z)), a NaN or anything
    above 2**31 - 128 becomes 2**31 - 128 (minps), -Inf and below -2**31 INT_MIN, round
    half to even, clip."""
    lo, hi = int_range(width, signed)
    with np.errstate(all="ignore"):
        inv = np.float32(1) / s
    t = _fma32(x, inv, np.float32(z))
    cap = np.float32(2 ** 31 - 128)
    t = np.where(np.isnan(t), cap, np.minimum(t, cap)).astype(np.float64)
    return np.clip(np.maximum(np.rint(t), INT32_MIN), lo, hi).astype(np.int64)


def _torch_fake_model(x, s, z, width, signed):
    """ATen's fake quantize (see the module): the integer and the float32 output."""
    lo, hi = int_range(width, signed)
    with np.errstate(all="ignore"):
        inv = np.float32(1) / s
        qf = np.float32(z) + np.rint(x * inv)
        q = np.where(np.isnan(qf), lo, np.clip(qf, lo, hi)).astype(np.int64)
        return q, (q - z).astype(np.float32) * s


def _same_float(a_bits, b_bits, fmt):
    """Bit for bit, except that any two NaNs are the same (qdp emits the canonical one)."""
    a_cls, _ = floats.classify(a_bits, fmt)
    b_cls, _ = floats.classify(b_bits, fmt)
    return (a_bits == b_bits) | ((a_cls == floats.NAN) & (b_cls == floats.NAN))


def _examples(mask, **columns):
    at = np.flatnonzero(mask)[:4]
    return "; ".join(", ".join(f"{k}={v[i]!r}" for k, v in columns.items()) for i in at)


def _assert_golden_is_spec(case, x, s, z):
    """qdp's onnx model is the specified operation sequence on x's type, element by element
    (the runtime comparisons below stand on this)."""
    spec, q = _spec_quantize(x, s, z, case.width, case.signed)
    golden = case.flat("golden")
    bad = golden != spec
    assert not bad.any(), (
        f"{case.fname}->{case.qname} {case.layout}: qdp's quantize_linear differs from "
        f"saturate(rint(fl(x / s)) + z) on {bad.sum()} of {bad.size} elements, e.g. "
        + _examples(bad, x=x, s=s, z=z, quotient=q, qdp=golden, expected=spec))
    return spec, q


# --- QuantizeLinear --------------------------------------------------------------------

def _check_quantize_reference(case, got, q, z):
    """The reference differs from qdp exactly where its cast or its int32 addition is
    undefined (and, on x86, gives the predicted value there)."""
    golden = case.flat("golden")
    predicted, undefined, wrapped = _reference_prediction(q, z, case.width, case.signed,
                                                          case.fname)
    explained = undefined | wrapped
    where = f"reference {case.fname}->{case.qname} {case.layout}"
    bad = (got != golden) & ~explained
    assert not bad.any(), f"{where}: {bad.sum()} unexplained differences, e.g. " + \
        _examples(bad, quotient=q, z=z, reference=got, qdp=golden)
    if X86:
        off = got != predicted
        assert not off.any(), f"{where}: the reference is not the x86 prediction on " \
            f"{off.sum()} elements, e.g. " + _examples(off, quotient=q, z=z, reference=got,
                                                       predicted=predicted)
    differ = got != golden
    if X86:
        assert np.array_equal(differ, explained & (predicted != golden))
    return {"NaN quotient": int((differ & np.isnan(q)).sum()),
            "+-Inf quotient": int((differ & np.isinf(q)).sum()),
            "finite |rint(q)| >= 2**31": int((differ & np.isfinite(q) & undefined).sum()),
            "int32 wrap of rint(q) + z": int((differ & wrapped & ~undefined).sum())}


def _check_quantize_onnxruntime(case, got, x, s, z, q):
    """FP32: qdp exactly. FP16: qdp's model of the float32-widened operands, exactly;
    different from qdp's FP16 model exactly where the float16 quotient rounds apart."""
    golden = case.flat("golden")
    where = f"onnxruntime {case.fname}->{case.qname} {case.layout}"
    if case.fname == "fp32":
        bad = got != golden
        assert not bad.any(), f"{where}: {bad.sum()} of {bad.size} differ, e.g. " + \
            _examples(bad, x=x, s=s, z=z, onnxruntime=got, qdp=golden)
        return {}
    x32, s32 = x.astype(np.float32), s.astype(np.float32)
    wide, q32 = _spec_quantize(x32, s32, z, case.width, case.signed)
    bad = got != wide
    assert not bad.any(), f"{where}: {bad.sum()} differ from rint(fl32(x / s)), e.g. " + \
        _examples(bad, x=x, s=s, z=z, onnxruntime=got, fp32_model=wide)
    # ...which is qdp's FP32 model of the widened values.
    assert np.array_equal(got, quantize_linear_bits(FP32.bits(x32), FP32.bits(s32), z, FP32,
                                                    out_width=case.width,
                                                    out_signed=case.signed))
    differ = got != golden
    assert np.array_equal(differ, wide != golden)
    changed = (q != q32) & ~(np.isnan(q) & np.isnan(q32))
    assert not (differ & ~changed).any(), f"{where}: a difference without a float16 rounding"
    return {"float32 quotient (not rounded to fp16)": int(differ.sum())}


def _report(op, what, compared, counts):
    for runtime in RUNTIMES:
        if compared[runtime]:
            found = {k: v for k, v in counts[runtime].items() if v} or "none"
            print(f"\n{op} {runtime} {what}: {compared[runtime]} values compared; "
                  f"deliberate differences: {found}")


@pytest.mark.parametrize("qname", QUANTIZE_TYPES)
@pytest.mark.parametrize("fname", FORMAT_NAMES)
def test_quantize_linear(cases, fname, qname):
    """Both runtimes on each case (generated once): the reference, then onnxruntime."""
    _need("onnx", "onnxruntime")
    compared = {r: 0 for r in RUNTIMES}
    counts = {r: {} for r in RUNTIMES}
    for layout in LAYOUTS:
        case = cases.quantize(fname, qname, layout)
        x, s, z = case.values(case.flat("x")), case.values(case.flat("s")), case.flat("z")
        _, q = _assert_golden_is_spec(case, x, s, z)
        for runtime in RUNTIMES:
            if runtime == "onnxruntime" and fname == "bf16":
                _lacks_kernel(case)
                continue
            got = _run(runtime, case)
            if runtime == "reference":
                found = _check_quantize_reference(case, got, q, z)
            else:
                found = _check_quantize_onnxruntime(case, got, x, s, z, q)
            counts[runtime].update({f"{layout}: {k}": v for k, v in found.items()})
            compared[runtime] += case.size
    _report("QuantizeLinear", f"{fname}->{qname}", compared, counts)


def test_quotient_overflow_saturates():
    """``x / s`` rounding to +-Inf in x's format for finite x and s (beyond the largest
    finite value) saturates like x = +-Inf: the specification, onnxruntime. (A regression
    test: the first onnx model rounded the Inf quotient's zero significand and gave z.)"""
    x = np.array([3e38, -3e38, 1e38], dtype=np.float32)
    assert list(quantize_linear(x, np.float32(0.5), 3)) == [127, -128, 127]
    h = np.array([806.5, -806.5], dtype=np.float16)        # / 0.0123 > 65504
    assert list(quantize_linear(h, np.float16(0.0123), 0, in_format="fp16", out_width=16,
                                out_signed=False)) == [65535, 0]
    b = np.array([3e38, -3e38], dtype=ml_dtypes.bfloat16)
    assert list(quantize_linear(b, ml_dtypes.bfloat16(0.25), 0, in_format="bf16")) == \
        [127, -128]


# --- DequantizeLinear ------------------------------------------------------------------

def _onnxruntime_dequantize_model(case):
    """onnxruntime's int32 DequantizeLinear with a zero point (see the module), and the
    differences' causes: ``q - z`` wraps in int32; else its float32 rounding differs from
    the reference's ``fl32(q) - z``; else only the product's rounding differs (float32 in
    onnxruntime, float64 then the output format in the reference)."""
    q, z = case.flat("x"), case.flat("z")
    s = case.values(case.flat("s")).astype(np.float32)
    wraps = (q - z < INT32_MIN) | (q - z >= 1 << 31)
    d = ((q - z - INT32_MIN) % (1 << 32) + INT32_MIN).astype(np.int32).astype(np.float32)
    with np.errstate(all="ignore"):
        y = (d * s).astype(case.fmt.dtype)
    d_reference = q.astype(np.float32).astype(np.float64) - z
    return case.fmt.bits(y), wraps, ~wraps & (d.astype(np.float64) != d_reference)


def _check_dequantize(runtime, case, got):
    golden = case.flat("golden")
    where = f"DequantizeLinear {runtime} {case.qname}->{case.fname} {case.layout}"
    wide_zp = case.qname == "int32" and case.chunks[0].z is not None
    if runtime == "reference" or not wide_zp:
        same = _same_float(got, golden, case.fmt)
        assert same.all(), f"{where}: {(~same).sum()} of {same.size} differ, e.g. " + \
            _examples(~same, q=case.flat("x"), z=case.flat("z"), s=case.values(case.flat("s")),
                      runtime=case.values(got), qdp=case.values(golden))
        return {}
    model, wraps, other_d = _onnxruntime_dequantize_model(case)
    same = _same_float(got, model, case.fmt)
    assert same.all(), f"{where}: {(~same).sum()} differ from fl(fl32(wrap32(q - z)) * s), " \
        "e.g. " + _examples(~same, q=case.flat("x"), z=case.flat("z"),
                            onnxruntime=case.values(got), model=case.values(model))
    differ = ~_same_float(got, golden, case.fmt)
    return {"q - z wraps in int32": int((differ & wraps).sum()),
            "fl32(q - z) != fl32(q) - z": int((differ & other_d).sum()),
            "same q - z, product rounded in float32": int((differ & ~wraps & ~other_d).sum())}


@pytest.mark.parametrize("with_zp", [True, False], ids=["zp", "no-zp"])
@pytest.mark.parametrize("qname", DEQUANTIZE_TYPES)
@pytest.mark.parametrize("fname", FORMAT_NAMES)
def test_dequantize_linear(cases, fname, qname, with_zp):
    """Both runtimes on each case (generated once): the reference, then onnxruntime."""
    _need("onnx", "onnxruntime")
    compared = {r: 0 for r in RUNTIMES}
    counts = {r: {} for r in RUNTIMES}
    for layout in DQ_LAYOUTS[qname]:
        case = cases.dequantize(fname, qname, layout, with_zp)
        for runtime in RUNTIMES:
            if runtime == "onnxruntime" and fname == "bf16":
                _lacks_kernel(case)
                continue
            found = _check_dequantize(runtime, case, _run(runtime, case))
            counts[runtime].update({f"{layout}: {k}": v for k, v in found.items()})
            compared[runtime] += case.size
    _report("DequantizeLinear", f"{qname}->{fname} "
            f"{'with' if with_zp else 'without'} zero point", compared, counts)


# --- PyTorch ---------------------------------------------------------------------------

def _torch_chunks(cases, qname):
    """The FP32 per-tensor QuantizeLinear case of ``qname``, one (scale, z) per chunk;
    qdp's model checked against the specified sequence first."""
    case = cases.quantize("fp32", qname, "tensor")
    _assert_golden_is_spec(case, case.values(case.flat("x")), case.values(case.flat("s")),
                           case.flat("z"))
    for chunk in case.chunks:
        yield chunk, FP32.values(chunk.x), FP32.values(chunk.s_bits)[()], int(chunk.z)


def _classify_torch_quantize(x, s, z, width, signed, golden, got):
    """The differences, by cause (see the module); each cause checked element by element."""
    lo, hi = int_range(width, signed)
    with np.errstate(all="ignore"):
        inv = np.float32(1) / s
        q32 = (x / s).astype(np.float64)                # qdp's quotient, fl32(x / s)
        before = np.clip(np.rint(np.nan_to_num(q32 + z)), lo, hi)   # z added first, exactly
    nan = np.isnan(x) | ((x == 0) & np.isinf(inv))     # NaN, and 0 * Inf
    huge_inv = np.isinf(inv) & ~nan
    differ = got != golden
    assert np.all(got[nan] == hi)
    tie = differ & ~nan & ~huge_inv & (before != golden)
    assert np.all((2 * q32[tie]) % 2 == 1) and (z % 2 == 1 or not tie.any())
    assert np.array_equal(got[tie], before[tie])
    near = differ & ~nan & ~huge_inv & ~tie
    assert np.all(np.abs(got[near] - golden[near]) == 1)
    assert np.all(got[near] != before[near])           # not the order: the float32 steps
    w = x[near].astype(np.float64) / np.float64(s) + z
    bound = 2.0 ** -22 * (np.abs(w - z) + abs(z)) + np.abs(x[near]) * 2.0 ** -149
    assert np.all(np.abs(w - (np.floor(w) + 0.5)) <= bound)
    return {"NaN or 0 * Inf (torch qmax; qdp qmin or z)": int((differ & nan).sum()),
            "1/s overflows to Inf (s < 2**-128)": int((differ & huge_inv).sum()),
            "tie with odd z (z added before rounding)": int(tie.sum()),
            "reciprocal and fused rounding near a tie": int(near.sum())}


@pytest.mark.parametrize("dtype", list(TORCH_DTYPES))
def test_torch_quantize_per_tensor(cases, dtype):
    _need("torch")
    torch.set_num_threads(1)                # tests run two workers on two cores
    qname = TORCH_DTYPES[dtype]
    _, width, signed = QTYPES[qname]
    compared, expected, counts = 0, 0, {}
    for chunk, x, s, z in _torch_chunks(cases, qname):
        got = torch.quantize_per_tensor(torch.from_numpy(x), float(s), z,
                                        getattr(torch, dtype)).int_repr().numpy()
        got = got.astype(np.int64)
        model = _torch_quantize_model(x, s, z, width, signed)
        bad = got != model
        assert not bad.any(), f"{dtype} s={s!r} z={z}: {bad.sum()} differ from the model " \
            "of FBGEMM's kernel, e.g. " + _examples(bad, x=x, torch=got, model=model)
        found = _classify_torch_quantize(x, s, z, width, signed, chunk.golden, got)
        for k, v in found.items():
            counts[k] = counts.get(k, 0) + v
        expected += int((model != chunk.golden).sum())
        compared += x.size
    total = sum(counts.values())
    print(f"\ntorch.quantize_per_tensor {dtype}: {compared} values; {total} differ from "
          f"qdp: {counts}")
    assert total == expected, (total, expected, counts)
    assert min(counts.values()) > 0, f"every cause occurs: {counts}"


@pytest.mark.parametrize("qname", list(FAKE_RANGES))
def test_torch_fake_quantize_per_tensor_affine(cases, qname):
    _need("torch")
    torch.set_num_threads(1)
    _, width, signed = QTYPES[qname]
    lo, hi = FAKE_RANGES[qname]
    compared, expected = 0, 0
    counts = {"1/s overflows to Inf (s < 2**-128)": 0, "reciprocal rounding near a tie": 0}
    for chunk, x, s, z in _torch_chunks(cases, qname):
        got = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), float(s), z, lo,
                                                    hi).numpy()
        q_model, y_model = _torch_fake_model(x, s, z, width, signed)
        bad = FP32.bits(got) != FP32.bits(y_model)
        assert not bad.any(), f"[{lo}, {hi}] s={s!r} z={z}: {bad.sum()} differ from the " \
            "model of ATen's kernel, e.g. " + _examples(bad, x=x, torch=got, model=y_model)
        y_golden = dequantize_linear(chunk.golden, s, z, in_width=width, in_signed=signed)
        differ = FP32.bits(got) != FP32.bits(y_golden)
        assert not (differ & (q_model == chunk.golden)).any()
        assert not (differ & np.isnan(x)).any()             # NaN -> qmin in both
        with np.errstate(all="ignore"):
            huge_inv = np.isinf(np.float32(1) / s)
        near = differ & ~huge_inv
        assert np.all(np.abs(q_model[near] - chunk.golden[near]) == 1)
        counts["1/s overflows to Inf (s < 2**-128)"] += int((differ & huge_inv).sum())
        counts["reciprocal rounding near a tie"] += int(near.sum())
        expected += int((FP32.bits(y_model) != FP32.bits(y_golden)).sum())
        compared += x.size
    total = sum(counts.values())
    print(f"\ntorch.fake_quantize_per_tensor_affine [{lo}, {hi}]: {compared} values; "
          f"{total} differ from qdp: {counts}")
    assert total == expected, (total, expected, counts)


# --- volumes ---------------------------------------------------------------------------

def test_volumes():
    """At least a million generated values per runtime per operator: FP32 in for
    QuantizeLinear, FP32 out for DequantizeLinear (FP16 and BF16 come on top), and for
    each PyTorch function."""
    def size(op, fname, qname, layout):
        return int(np.prod(_geometry(layout, _size(op, fname, qname, layout))[0]))
    q32 = sum(size("q", "fp32", q, lay) for q in QUANTIZE_TYPES for lay in LAYOUTS)
    dq32 = 2 * sum(size("dq", "fp32", q, lay) for q in DEQUANTIZE_TYPES
                   for lay in DQ_LAYOUTS[q])                # with and without a zero point
    torch_q = sum(size("q", "fp32", q, "tensor") for q in TORCH_DTYPES.values())
    fake = sum(size("q", "fp32", q, "tensor") for q in FAKE_RANGES)
    print(f"\nper runtime: QuantizeLinear FP32 {q32}, DequantizeLinear FP32 out {dq32}; "
          f"torch.quantize_per_tensor {torch_q}, fake_quantize_per_tensor_affine {fake}")
    assert min(q32, dq32, torch_q, fake) >= MILLION


def test_onnxruntime_cannot_feed_4_bit_tensors():
    """Why 4-bit tensors travel through Cast nodes: onnxruntime has the int4 / uint4
    kernels, but its Python binding cannot take or return ml_dtypes' 4-bit arrays."""
    _need("onnx", "onnxruntime")
    case = Case("dq", "fp32", "int4", "tensor", [Chunk((4,), None, None, np.arange(4),
                                                       np.asarray(FP32.bits(np.float32(1))),
                                                       np.asarray(0))])
    T = TensorProto
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])], "g",
        [helper.make_tensor_value_info("x", T.INT4, [None]),
         helper.make_tensor_value_info("s", T.FLOAT, []),
         helper.make_tensor_value_info("z", T.INT4, [])],
        [helper.make_tensor_value_info("y", T.FLOAT, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    session = _session(model)
    feeds = {"x": np.arange(4).astype(ml_dtypes.int4), "s": np.asarray(np.float32(1)),
             "z": np.asarray(0, dtype=ml_dtypes.int4)}
    with pytest.raises(RuntimeError, match="can't be converted to MLDataType"):
        session.run(None, feeds)
    # ...while the same operator behind Cast nodes runs:
    assert _run("onnxruntime", case).tolist() == FP32.bits(np.arange(4, dtype=np.float32)).tolist()
