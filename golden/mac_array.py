"""Golden model of the MAC array: an integer matrix product with zero points, a bias and
an ``acc_width``-bit accumulator that wraps or saturates.

What :class:`qdp.hdl.MacArray` computes, per output tile, is::

    acc[i][j] = acc_K          with  acc_0 = 0,
                                     acc_{k+1} = R(acc_k + (a[i][k] - a_zero[i]) * (b[k][j] - b_zero[j]))

in k order (k = 0, 1, ..., K-1), where ``R`` brings an integer into the ``acc_width``-bit
two's complement range:

* ``saturate=False`` -- ``R`` wraps modulo ``2**acc_width``. Wrapping is a ring
  homomorphism, so wrapping every partial sum equals wrapping the exact final sum once:
  the result does not depend on the order of k, and ``matmul_int`` computes it as
  ``wrap(exact sum)``.
* ``saturate=True`` -- ``R`` clips to ``[-2**(acc_width-1), 2**(acc_width-1) - 1]`` after
  **every** step (a saturating accumulator, like a DSP's saturating MAC or ARM's
  ``QADD``). This is *not* the saturated exact sum: once a partial sum has clipped, later
  products of the other sign walk it back from the rail. The result depends on the order
  of k, which is fixed: the order in which the hardware receives the k-steps. (Saturating
  the exact final sum instead would need an accumulator as wide as ``acc_width +
  log2(K)`` for unbounded K; a per-step saturating accumulator is what ``acc_width`` bits
  of hardware can do.)

The optional ``bias[j]`` is added after the K-sum with the same rule ``R``:
``out[i][j] = R(acc[i][j] + bias[j])``, so the output is an ``acc_width``-bit tile, as
ONNX/TFLite add an int32 bias into the int32 accumulator. With ``saturate=False`` this
equals ``wrap(exact sum + bias)``.

Zero points follow ONNX ``MatMulInteger``: ``a_zero`` is a scalar or one value per row of
A (length M), ``b_zero`` a scalar or one value per column of B (length N).
"""


import numpy as np

from ._intarray import as_exact, as_output, check_fits, int_range

__all__ = ["matmul_int"]

ACC_WIDTH_RANGE = (2, 64)


def _matrix(name, value):
    try:
        array = as_exact(value)
    except TypeError as error:
        raise TypeError(f"{name}: {error}") from None
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D integer matrix, got shape {array.shape}")
    return array


def _per_axis(name, value, length, what):
    """A scalar or a 1-D vector of ``length``, as an exact 1-D vector of ``length``."""
    if value is None:
        value = 0
    try:
        array = as_exact(value)
    except TypeError as error:
        raise TypeError(f"{name}: {error}") from None
    if array.ndim == 0:
        return np.full(length, array[()], dtype=object)
    if array.shape != (length,):
        raise ValueError(f"{name}: expected a scalar or one value per {what} "
                         f"(shape ({length},)), got shape {array.shape}")
    return array


def _abs_max(a):
    """``max |a|`` of an exact integer array as a Python int (0 when empty)."""
    return int(np.abs(a).max()) if a.size else 0


def _exact_matmul(a, b):
    """``a @ b`` exactly: int64 when the sum cannot overflow, Python ints otherwise."""
    k = a.shape[1]
    if _abs_max(a) * _abs_max(b) * max(k, 1) < 1 << 62:
        return (a.astype(np.int64) @ b.astype(np.int64)).astype(object)
    return a @ b


def matmul_int(a, b, *, a_zero=0, b_zero=0, bias=None, acc_width=32, saturate=False):
    """``R(sum_k (a[i][k] - a_zero) * (b[k][j] - b_zero) + bias[j])`` -- see the module
    docstring for ``R`` (wrap, or saturate every partial sum).

    Parameters
    ----------
    a : array_like of int, shape (M, K)
        Left operand, one row per output row.
    b : array_like of int, shape (K, N)
        Right operand, one column per output column.
    a_zero : int or array_like of int, shape (M,)
        Zero point of A, per tensor or per row.
    b_zero : int or array_like of int, shape (N,)
        Zero point of B, per tensor or per column.
    bias : None, int or array_like of int, shape (N,)
        Added per column after the K-sum; each value fits ``acc_width`` signed bits.
    acc_width : int
        Accumulator width, 2..64 (the hardware takes 16..48).
    saturate : bool
        Saturate every partial sum (and the bias addition) instead of wrapping.

    Returns
    -------
    numpy.ndarray of int64, shape (M, N)
        (Python ints in an object array when ``acc_width`` is 64.)
    """
    if not isinstance(acc_width, int) or isinstance(acc_width, bool) or \
            not ACC_WIDTH_RANGE[0] <= acc_width <= ACC_WIDTH_RANGE[1]:
        raise ValueError(f"acc_width: expected an integer in "
                         f"{ACC_WIDTH_RANGE[0]}..{ACC_WIDTH_RANGE[1]}, got {acc_width!r}")
    if not isinstance(saturate, (bool, np.bool_)):
        raise ValueError(f"saturate: expected True or False, got {saturate!r}")
    a, b = _matrix("a", a), _matrix("b", b)
    m, k = a.shape
    if b.shape[0] != k:
        raise ValueError(f"b: has {b.shape[0]} rows but a has {k} columns (shapes "
                         f"{a.shape} @ {b.shape})")
    n = b.shape[1]
    if k == 0:
        raise ValueError("a: K (columns of a, rows of b) must be at least 1")
    a_zero = _per_axis("a_zero", a_zero, m, "row of a")
    b_zero = _per_axis("b_zero", b_zero, n, "column of b")
    bias = _per_axis("bias", bias, n, "column of b")
    check_fits("bias", bias, acc_width, signed=True)
    da = a - a_zero[:, None]
    db = b - b_zero[None, :]
    lo, hi = int_range(acc_width, signed=True)
    if not saturate:
        total = _exact_matmul(da, db) + bias[None, :]
        wrapped = total % (1 << acc_width)
        out = np.where(wrapped > hi, wrapped - (1 << acc_width), wrapped)
        return as_output(out, acc_width)

    # Per-step saturation: walk k in order. int64 suffices whenever one product plus a
    # clipped partial sum fits in 63 bits; otherwise fall back to Python ints.
    pmax = _abs_max(da) * _abs_max(db)
    exact = acc_width > 61 or pmax >= 1 << 61
    dtype = object if exact else np.int64
    da, db = da.astype(dtype), db.astype(dtype)
    acc = np.zeros((m, n), dtype=dtype)
    for step in range(k):
        acc = np.clip(acc + da[:, step, None] * db[None, step, :], lo, hi)
        if exact:
            acc = acc.astype(object)
    acc = np.clip(acc + bias[None, :].astype(dtype), lo, hi)
    return as_output(acc.astype(object), acc_width)
