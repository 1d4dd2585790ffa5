"""Pack and unpack stream payloads, vectorized over beats.

Values are given per layout field: a NumPy array whose first axis counts beats, with a
trailing axis for each ``ArrayLayout`` level (lane 0 at the least significant bits), or a
dict of such arrays for a ``StructLayout``. Packed payloads are Python ints.
"""

import numpy as np

from ..blocks.layout import leaves

__all__ = ["pack", "unpack"]


def _select(values, path):
    for key in path:
        values = values[key] if isinstance(key, str) else values[..., key]
    return values


def pack(layout, values):
    """Pack ``values`` (see module docstring) into one int per beat: an object array."""
    packed = None
    for path, offset, shape in leaves(layout):
        field = np.asarray(_select(values, path)).astype(object)
        bits = (field & ((1 << shape.width) - 1)) << offset
        packed = bits if packed is None else packed | bits
    return packed


def unpack(layout, words):
    """Unpack ints into the nested dict/array form of :func:`pack`, with signed fields
    sign-extended. Returns int64 arrays (widths here never exceed 64 bits)."""
    words = np.asarray(words, dtype=object)
    result = {}
    for path, offset, shape in leaves(layout):
        field = (words >> offset) & ((1 << shape.width) - 1)
        if shape.signed:
            field = np.where(field >= 1 << (shape.width - 1), field - (1 << shape.width), field)
        result[path] = field.astype(np.int64)
    return _nest(result)


def _nest(flat):
    """Turn ``{path: array}`` back into nested dicts with lane axes stacked last."""
    if list(flat) == [()]:
        return flat[()]
    groups = {}
    for path, value in flat.items():
        groups.setdefault(path[0], {})[path[1:]] = value
    if all(isinstance(key, int) for key in groups):
        return np.stack([_nest(groups[k]) for k in sorted(groups)], axis=-1)
    return {key: _nest(sub) for key, sub in groups.items()}
