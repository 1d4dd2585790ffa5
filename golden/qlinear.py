"""Golden model of the quantized linear layer: the MAC array's integer matrix product,
an int32 bias per column, then the Quantizer per column.

::

    acc = matmul_int(a, w, a_zero=a_zero, b_zero=w_zero, bias=bias,
                     acc_width=acc_width, saturate=saturate)
    y[i][j] = quantize(acc[i][j], multiplier[j], shift[j], zero_point=zero_point[j], ...)

Both steps are exact integer arithmetic (see :mod:`qdp.golden.mac_array` and
:mod:`qdp.golden.quantizer`). ``multiplier``, ``shift`` and ``zero_point`` are scalars
(per tensor) or one value per output column (per channel, the usual layout of a
per-channel-quantized weight matrix).
"""


from ._intarray import as_exact
from .mac_array import matmul_int
from .quantizer import quantize

__all__ = ["qlinear"]


def _per_column(name, value, n):
    try:
        array = as_exact(value)
    except TypeError as error:
        raise TypeError(f"{name}: {error}") from None
    if array.ndim == 0:
        return array[()]
    if array.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or one value per output column "
                         f"(shape ({n},)), got shape {array.shape}")
    return array[None, :]


def qlinear(a, w, *, a_zero=0, w_zero=0, bias=None, multiplier, shift, zero_point=0,
            out_width=8, out_signed=True, rounding="half_even", saturation="sat",
            acc_width=32, saturate=False, mult_width=32):
    """A quantized linear layer ``y = quantize(matmul_int(a, w) + bias)``, exactly.

    Parameters
    ----------
    a : array_like of int, shape (M, K)
        Activations, one row per output row.
    w : array_like of int, shape (K, N)
        Weights, one column per output channel.
    a_zero, w_zero : int or array_like of int
        Zero points: per tensor, per row of ``a`` (M,) and per column of ``w`` (N,).
    bias : None, int or array_like of int, shape (N,)
        Per-column bias, added in the accumulator (fits ``acc_width`` signed bits).
    multiplier, shift, zero_point : int or array_like of int, shape (N,)
        Requantization ``round(acc * multiplier / 2**shift) + zero_point``, per tensor or
        per column; ``multiplier`` fits ``mult_width`` unsigned bits.
    out_width, out_signed, rounding, saturation, mult_width
        As for :func:`qdp.golden.quantize`.
    acc_width : int
        Accumulator width (the quantizer's ``in_width``).
    saturate : bool
        Saturating accumulator instead of wrapping (see :func:`matmul_int`).

    Returns
    -------
    numpy.ndarray of int64, shape (M, N)
    """
    acc = matmul_int(a, w, a_zero=a_zero, b_zero=w_zero, bias=bias, acc_width=acc_width,
                     saturate=saturate)
    n = acc.shape[1]
    m, s, z = (_per_column(name, v, n) for name, v in
               (("multiplier", multiplier), ("shift", shift), ("zero_point", zero_point)))
    return quantize(acc, m, s, zero_point=z, in_width=acc_width, in_signed=True,
                    mult_width=mult_width, out_width=out_width, out_signed=out_signed,
                    rounding=rounding, saturation=saturation)
