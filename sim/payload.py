"""Pack and unpack stream payloads, vectorized over beats.

A payload is described by its scalar fields ``(path, offset, width, signed)``: from a
manifest's field list (:func:`manifest_fields`, what the cocotb benches use) or walked
from an Amaranth layout (:func:`qdp.blocks.leaves`, for the Amaranth-simulator tests).
``path`` is the tuple of struct field names and array indices from the top.

Values are given per field: a NumPy array whose first axis counts beats, with a trailing
axis for each array level (lane 0 at the least significant bits), or a dict of such arrays
for a struct. The manifest names a bare lane array ``data`` (as the ``data`` field of a
struct payload) and a bare scalar ``value``, so with a field list such payloads are
``{"data": array}`` and ``{"value": array}``. Packed payloads are Python ints.
"""

import numpy as np

from ..blocks.layout import leaves

__all__ = ["manifest_fields", "pack", "unpack"]


def manifest_fields(rows):
    """The ``fields`` of a manifest port as ``(path, offset, width, signed)`` tuples:
    ``"data.3"`` is the path ``("data", 3)``."""
    return [(tuple(int(p) if p.isdigit() else p for p in row["field"].split(".")),
             row["offset"], row["width"], row["signed"]) for row in rows]


def _fields(spec):
    if isinstance(spec, (list, tuple)):
        return spec
    return [(path, offset, shape.width, shape.signed) for path, offset, shape in leaves(spec)]


def _select(values, path):
    for key in path:
        values = values[key] if isinstance(key, str) else values[..., key]
    return values


def pack(spec, values):
    """Pack ``values`` (see module docstring) into one int per beat: an object array.
    ``spec`` is a field list or an Amaranth layout."""
    packed = None
    for path, offset, width, _ in _fields(spec):
        field = np.asarray(_select(values, path)).astype(object)
        bits = (field & ((1 << width) - 1)) << offset
        packed = bits if packed is None else packed | bits
    return packed


def unpack(spec, words):
    """Unpack ints into the nested dict/array form of :func:`pack`, with signed fields
    sign-extended. Returns int64 arrays (widths here never exceed 64 bits)."""
    words = np.asarray(words, dtype=object)
    result = {}
    for path, offset, width, signed in _fields(spec):
        field = (words >> offset) & ((1 << width) - 1)
        if signed:
            field = np.where(field >= 1 << (width - 1), field - (1 << width), field)
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
