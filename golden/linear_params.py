"""Scale and zero-point layouts of ONNX QuantizeLinear / DequantizeLinear.

A parameter is per tensor (a scalar or one value), per axis (a 1-D array of
``x.shape[axis]`` values) or per block (ONNX opset 21's ``block_size``: the shape of
``x`` but ``ceil(x.shape[axis] / block_size)`` along ``axis``, each value serving
``block_size`` consecutive elements along ``axis``). :func:`expand` spreads one to ``x``'s
shape, exactly as ``onnx.reference``'s ``reshape_input`` does.

``axis`` is ``None`` or an axis of ``x`` (negative counts from the end). With
``block_size`` and no ``axis`` the blocks run along the last axis, where C-order elements
are consecutive in a stream -- the hardware's blocks. Per axis, ``axis`` is required
unless ``x`` is 1-D.
"""

import numpy as np

__all__ = ["expand", "normalize_axis"]


def normalize_axis(axis, ndim, *, default=None):
    """``axis`` as an index ``0 <= axis < ndim`` (``default`` for ``None``)."""
    if axis is None:
        return default
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) \
            or not -ndim <= axis < ndim:
        raise ValueError(f"axis: {axis!r} is not an axis of a {ndim}-D input "
                         f"(allowed {-ndim}..{ndim - 1})")
    return int(axis) % ndim


def expand(value, shape, axis, block_size, name):
    """``value`` (an array of any dtype) spread to ``shape``; ``ValueError`` naming
    ``name`` when its shape fits none of the three layouts."""
    value = np.asarray(value)
    ndim = len(shape)
    if block_size is not None:
        if not isinstance(block_size, (int, np.integer)) or isinstance(block_size, bool) \
                or block_size < 1:
            raise ValueError(f"block_size: expected an integer >= 1, got {block_size!r}")
        if ndim == 0:
            raise ValueError("block_size: a scalar input has no axis to block")
        axis = normalize_axis(axis, ndim, default=ndim - 1)
        if value.ndim == 0:
            # A scalar is per tensor in every layout (reshape_input returns it as is):
            # the default zero point 0 serves blocked scales.
            return np.broadcast_to(value, shape)
        blocks = -(-shape[axis] // block_size)
        want = tuple(blocks if i == axis else d for i, d in enumerate(shape))
        if value.shape != want:
            raise ValueError(f"{name}: shape {value.shape} does not give one value per "
                             f"block of {block_size} along axis {axis} of {tuple(shape)} "
                             f"(expected {want})")
        return np.repeat(value, block_size, axis=axis).take(range(shape[axis]), axis=axis)
    if value.size == 1 and value.ndim <= 1:
        return np.broadcast_to(value.reshape(()), shape)
    if value.ndim != 1:
        raise ValueError(f"{name}: expected a scalar, one value per index of an axis, or "
                         f"(with block_size) one per block; got shape {value.shape}")
    axis = normalize_axis(axis, ndim, default=0 if ndim == 1 else None)
    if axis is None:
        raise ValueError(f"axis: {name} has {value.size} values; name the axis they run "
                         f"along")
    if value.size != shape[axis]:
        raise ValueError(f"{name}: {value.size} values for axis {axis} of length "
                         f"{shape[axis]}")
    view = [1] * ndim
    view[axis] = value.size
    return np.broadcast_to(value.reshape(view), shape)
