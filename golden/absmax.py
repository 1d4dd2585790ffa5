"""Golden model of the blockwise absmax unit: per-block symmetric quantization.

The input is flattened (C order) and cut into contiguous blocks of ``block_size`` elements.
For each block, ``absmax = max |x|`` over the block, and every element of the block becomes,
exactly::

    q = round( qmax * x / absmax )        qmax = 2**(out_width - 1) - 1

with ``round`` one of :data:`~qdp.golden.rounding.ROUNDING_MODES` applied to the exact
rational (:func:`~qdp.golden.rounding.round_div`), and ``q = 0`` for a block whose
absmax is 0. Since ``|x| <= absmax``, ``|qmax * x / absmax| <= qmax`` and every mode
lands in ``[-qmax, qmax]``: no saturation is ever needed, and ``-2**(out_width-1)`` is
never produced. The most negative input ``-2**(in_width-1)`` is an ordinary value whose
magnitude ``2**(in_width-1)`` is why ``absmax`` needs ``in_width`` *unsigned* bits.

Trailing partial block
    When the length is not a multiple of ``block_size``, the short tail is a block of its
    own, with its own absmax. The hardware (:class:`qdp.hdl.BlockwiseAbsmax`) does the
    same thing when the input beat that ends the tensor carries ``last``: a block closes
    after ``block_size`` elements or at ``last``, whichever comes first. A stream made of
    several tensors (packets ending in ``last``) is therefore the concatenation of the
    golden model applied to each packet.

Stochastic rounding
    ``floor(v + r / 2**32)``, with ``r`` given per element in ``random``. The hardware
    draws ``r`` from one LFSR per lane (:mod:`qdp.golden.lfsr`) that steps once per beat,
    counting beats from reset across all blocks and packets; element ``j`` of the stream
    (beat ``j // lanes``, lane ``j % lanes``) therefore uses::

        random = lfsr_values(seed, lanes, n // lanes).reshape(-1)

    which is what :func:`stochastic_random` returns.

Dequantization (:func:`dequantize_blockwise`) is float-facing: ``q * absmax / qmax``.

Float tensors (``in_format`` ``"fp32"``, ``"bf16"``, ``"fp16"`` or a small ``"eXmY"``)
follow :mod:`qdp.golden.absmax_float`: the same exact model, a ``"float32"`` model that
computes the seeds' formula as FP32 code does, and a dequantizer rounded to a float format.
"""

import numpy as np

from ._intarray import as_exact, as_output, check_fits
from . import absmax_float
from .floats import FP32, as_bits, float_format
from .lfsr import DEFAULT_SEED, lfsr_values
from .rounding import check_rounding, round_div

__all__ = ["blockwise_absmax", "dequantize_blockwise", "block_constant", "stochastic_random"]


def _check_int(name, value, lo, hi):
    if (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
            or not lo <= value <= hi):
        raise ValueError(f"{name}: expected an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def _block_index(n, block_size):
    """Block number of each of ``n`` flat elements."""
    return np.arange(n) // block_size


def blockwise_absmax(x, block_size, *, out_width=8, rounding="half_even", in_width=32,
                     random=None, in_format="int", model="exact"):
    """Quantize ``x`` block by block with its absmax, exactly.

    Parameters
    ----------
    x : array_like
        Signed integers, each fitting ``in_width`` bits (``in_format="int"``), or floats of
        ``in_format``: NumPy values of its dtype, or its bit patterns as unsigned integers.
        Any shape; blocks run over the C-order flattening.
    block_size : int
        Elements per block, ``>= 1``. A trailing partial block is its own block.
    out_width : int
        Signed output width, 2..32; ``qmax = 2**(out_width-1) - 1``.
    rounding : str
        A mode of :data:`~qdp.golden.rounding.ROUNDING_MODES`.
    in_width : int
        Signed input width, 2..64 (integer input only).
    in_format : str
        ``"int"``, or a float format: ``"fp32"``, ``"bf16"``, ``"fp16"``, ``"eXmY"``.
    model : str
        Float input only: ``"exact"`` or ``"float32"`` (half to even only), see
        :mod:`qdp.golden.absmax_float`.
    random : array_like of int, optional
        For ``stochastic`` only: the 32-bit ``r`` of each element, in flattened order (see
        :func:`stochastic_random` for the hardware's values).

    Returns
    -------
    q : numpy.ndarray of int64
        The quantized elements, shaped like ``x``.
    absmax : numpy.ndarray
        One ``max |x|`` per block (``ceil(n / block_size)`` of them), int64 when it fits;
        for float input, of ``in_format`` (bit patterns when ``x`` was).
    """
    out_width = _check_int("out_width", out_width, 2, 32)
    block_size = _check_int("block_size", block_size, 1, float("inf"))
    check_rounding(rounding)
    if in_format != "int":
        return absmax_float.float_blockwise_absmax(
            x, block_size, out_width=out_width, rounding=rounding, random=random,
            in_format=in_format, model=model)
    if model != "exact":
        raise ValueError(f"model: {model!r} needs a float in_format; integer input is "
                         f"quantized exactly (model='exact')")
    in_width = _check_int("in_width", in_width, 2, 64)
    x = np.asarray(x)
    # An empty list arrives as float64; it holds no value to refuse.
    x = as_exact(x if x.size else x.astype(np.int64))
    check_fits("x", x, in_width, signed=True)
    shape = x.shape
    flat = x.reshape(-1)
    n = flat.size
    if random is not None:
        random = np.asarray(random)
        random = as_exact(random if random.size else random.astype(np.int64))
        if random.size != n:
            raise ValueError(f"random: expected one value per element ({n}), "
                             f"got {random.size}")
        random = random.reshape(-1)
    qmax = (1 << (out_width - 1)) - 1

    magnitude = np.abs(flat)
    absmax = (np.maximum.reduceat(magnitude, np.arange(0, n, block_size)) if n
              else np.zeros(0, dtype=object))
    den = absmax[_block_index(n, block_size)] if n else np.zeros(0, dtype=object)
    zero = den == 0
    # A zero block holds only zeros, so 0 / 1 rounds to 0 in every mode, r included.
    q = round_div(qmax * flat, np.where(zero, 1, den).astype(object), rounding, random=random)
    q = np.where(zero, 0, q)
    return as_output(q, out_width).reshape(shape), as_output(absmax, in_width)


def dequantize_blockwise(q, absmax, *, block_size, out_width=8, in_format="int",
                         out_format="fp32", model="exact"):
    """Eq. 2 per element, ``q`` shaped, blocks as above.

    Integer ``in_format``: ``q * absmax / qmax`` as float64. Float ``in_format``: ``absmax``
    (``model="exact"``) or the block constants ``c`` (``model="float32"``, FP32, see
    :func:`block_constant`), and the result in ``out_format`` (values, or bit patterns
    when ``absmax`` was given as bit patterns), as :mod:`qdp.golden.absmax_float` states.
    """
    out_width = _check_int("out_width", out_width, 2, 32)
    block_size = _check_int("block_size", block_size, 1, float("inf"))
    if in_format != "int":
        return absmax_float.float_dequantize_blockwise(
            q, absmax, block_size=block_size, out_width=out_width, in_format=in_format,
            out_format=out_format, model=model)
    q = np.asarray(q)
    absmax = np.asarray(absmax).reshape(-1)
    n = q.size
    if absmax.size != -(-n // block_size):
        raise ValueError(f"absmax: expected {-(-n // block_size)} values for {n} elements "
                         f"in blocks of {block_size}, got {absmax.size}")
    qmax = (1 << (out_width - 1)) - 1
    scale = absmax.astype(np.float64)[_block_index(n, block_size)] / qmax
    return (q.reshape(-1).astype(np.float64) * scale).reshape(q.shape)


def block_constant(absmax, *, in_format, out_width=8):
    """The float32 model's block constants ``c = fl32(qmax / absmax)``, as float32 (bit
    patterns when ``absmax`` is given as bit patterns)."""
    out_width = _check_int("out_width", out_width, 2, 32)
    fmt = float_format(in_format, "in_format")
    c = absmax_float.block_constant(as_bits(absmax, fmt, "absmax"), fmt, out_width)
    return absmax_float.as_given(c, FP32, np.asarray(absmax).dtype.kind == "u")


def stochastic_random(n, lanes, *, seed=DEFAULT_SEED):
    """The ``r`` the hardware uses for the first ``n`` elements after reset (flat order).

    ``n`` must be a multiple of ``lanes``: the hardware moves whole beats.
    """
    lanes = _check_int("lanes", lanes, 1, float("inf"))
    n = _check_int("n", n, 0, float("inf"))
    if n % lanes:
        raise ValueError(f"n: {n} elements do not fill whole beats of {lanes} lanes")
    return lfsr_values(seed, lanes, n // lanes).reshape(-1)
