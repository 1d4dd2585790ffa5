"""Saturation of integers into an output range.

======== ==================================================================
name     result for an integer r and the output range [qmin, qmax]
======== ==================================================================
sat      clip(r, qmin, qmax)
sat_sym  clip(r, max(qmin, -qmax), qmax): int8 gives [-127, 127]
sat_zero r if qmin <= r <= qmax, else 0
wrap     r modulo 2**width, read back as a width-bit (un)signed integer
======== ==================================================================
"""

import numpy as np

from ._intarray import as_exact, int_range

__all__ = ["SATURATION_MODES", "check_saturation", "saturate"]

SATURATION_MODES = ("sat", "sat_sym", "sat_zero", "wrap")


def check_saturation(saturation, name="saturation"):
    """Raise ``ValueError`` unless ``saturation`` names a mode of :data:`SATURATION_MODES`."""
    if saturation not in SATURATION_MODES:
        raise ValueError(f"{name}: unknown saturation mode {saturation!r}; "
                         f"expected one of {', '.join(SATURATION_MODES)}")


def saturate(values, *, width, signed, saturation):
    """Bring exact integers into the ``width``-bit (un)signed range.

    Returns an object array of Python ints.
    """
    check_saturation(saturation)
    r = as_exact(values)
    shape = r.shape
    # On 0-d object arrays np.minimum returns an int64 scalar that overflows past 63 bits;
    # 1-d arrays keep Python ints.
    r = r.reshape(-1)
    qmin, qmax = int_range(width, signed)
    if saturation == "wrap":
        wrapped = r % (1 << width)
        if signed:
            wrapped = np.where(wrapped > qmax, wrapped - (1 << width), wrapped)
        out = wrapped
    elif saturation == "sat_zero":
        out = np.where((r < qmin) | (r > qmax), 0, r)
    else:
        if saturation == "sat_sym":
            qmin = max(qmin, -qmax)
        out = np.minimum(np.maximum(r, qmin), qmax)
    return out.astype(object).reshape(shape)
