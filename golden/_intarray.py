"""Exact integer arrays: int64 where it is wide enough, Python ints otherwise."""

import numpy as np

__all__ = ["as_exact", "as_output", "int_range", "check_fits", "check_count"]


def as_exact(values):
    """Return ``values`` as an object array of Python ints (exact at any width).

    Floats are refused: every hardware-facing golden function takes integers only.
    """
    array = np.asarray(values)
    if array.dtype.kind == "O":
        # One pass over the element types (not over the elements) decides.
        types = set(map(type, array.flat))
        if types <= {int}:
            return array
        for v in array.flat:
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise TypeError(f"expected integers, got {type(v).__name__} {v!r}")
        return np.vectorize(int, otypes=[object])(array) if array.size else array.astype(object)
    if array.dtype.kind not in "iu":
        raise TypeError(f"expected an integer array, got dtype {array.dtype}")
    return array.astype(object)


def as_output(values, width):
    """Return exact results as int64 when ``width`` fits in 63 bits, else as object ints."""
    array = np.asarray(values, dtype=object)
    if width <= 63:
        return array.astype(np.int64)
    return array


def int_range(width, signed):
    """``(lo, hi)``, the inclusive range of a ``width``-bit integer, signed (two's
    complement) or unsigned. Public as :func:`qdp.golden.int_range`."""
    if signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


def check_fits(name, values, width, signed):
    """Raise ``ValueError`` naming ``name`` unless every value fits ``width`` bits."""
    lo, hi = int_range(width, signed)
    array = np.asarray(values, dtype=object)
    if array.size == 0:
        return
    vmin, vmax = min(array.flat), max(array.flat)
    if vmin < lo or vmax > hi:
        kind = "signed" if signed else "unsigned"
        bad = vmin if vmin < lo else vmax
        raise ValueError(f"{name}: value {bad} does not fit {width}-bit {kind} "
                         f"(allowed {lo}..{hi})")


def check_count(name, value, lo=1, hi=None):
    """``value`` if it is an int (not a bool) in ``lo..hi`` (no upper bound for
    ``None``); else a ``ValueError`` naming the parameter, the value and what is allowed."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo \
            or (hi is not None and value > hi):
        allowed = "a positive int" if (lo, hi) == (1, None) else f"an int from {lo} to {hi}"
        raise ValueError(f"{name}: {value!r} is not allowed ({allowed})")
    return value
