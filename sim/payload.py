"""Pack and unpack stream payloads, vectorized over beats.

A payload is described by its scalar fields ``(path, offset, width, signed)``: from a
manifest's field list (:func:`manifest_fields`, what the cocotb benches use) or walked
from an Amaranth layout (:func:`qdp.blocks.leaves`, for the Amaranth-simulator tests).
``path`` is the tuple of struct field names and array indices from the top.

Values are given per field: a NumPy array whose first axis counts beats, with a trailing
axis for each array level (lane 0 at the least significant bits), or a dict of such arrays
for a struct. The manifest names a bare lane array ``data`` (as the ``data`` field of a
struct payload) and a bare scalar ``value``, so with a field list such payloads are
``{"data": array}`` and ``{"value": array}``. Packed payloads are rows of 64-bit limbs
(:func:`pack_limbs`, what the bulk driver's memory files hold); :func:`limbs_to_ints` and
:func:`ints_to_limbs` turn them into and from the Python ints cocotb writes and reads.
"""

import numpy as np

from ..blocks.layout import leaves

__all__ = ["manifest_fields", "unpack", "pack_limbs", "unpack_limbs", "bit_field",
           "limbs_to_ints", "ints_to_limbs"]


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


def _limb_count(spec):
    return max(1, -(-max((offset + width for _, offset, width, _ in spec), default=1) // 64))


def _as_u64(field, width):
    """``field`` modulo ``2**width`` as uint64 (``width <= 64``), from any integer dtype or
    Python ints."""
    field = np.asarray(field)
    mask = (1 << width) - 1
    if field.dtype.kind == "O":
        return (field & mask).astype(np.uint64)
    return field.astype(np.int64).view(np.uint64) & np.uint64(mask)


def pack_limbs(spec, values):
    """Pack ``values`` (see module docstring) into 64-bit limbs: a uint64 array of shape
    ``(beats, limbs)``, limb 0 holding bits 0..63. ``spec`` is a field list or an Amaranth
    layout."""
    spec = _fields(spec)
    limbs = None
    for path, offset, width, _ in spec:
        if width > 64:
            raise ValueError(f"field {path}: {width} bits; fields of at most 64 are packed")
        field = _as_u64(_select(values, path), width).reshape(-1)
        if limbs is None:
            limbs = np.zeros((len(field), _limb_count(spec)), dtype=np.uint64)
        k, bit = divmod(offset, 64)
        limbs[:, k] |= field << np.uint64(bit)
        if bit + width > 64:
            limbs[:, k + 1] |= field >> np.uint64(64 - bit)
    return limbs


def unpack_limbs(spec, limbs):
    """Unpack the limbs of :func:`pack_limbs` into the nested dict/array form, signed
    fields sign-extended, as int64 arrays."""
    limbs = np.asarray(limbs, dtype=np.uint64)
    if limbs.ndim != 2:
        limbs = limbs.reshape(len(limbs), -1) if len(limbs) else \
            np.zeros((0, _limb_count(_fields(spec))), dtype=np.uint64)
    result = {}
    for path, offset, width, signed in _fields(spec):
        result[path] = bit_field(limbs, offset, width, signed)
    return _nest(result)


def bit_field(limbs, offset, width, signed=False):
    """Bits ``offset .. offset + width - 1`` (``width <= 64``) of each row of ``limbs``, as
    int64 (two's complement when ``signed``; unsigned 64-bit fields as Python ints)."""
    k, bit = divmod(offset, 64)
    field = limbs[:, k] >> np.uint64(bit) if k < limbs.shape[1] else \
        np.zeros(len(limbs), dtype=np.uint64)
    if bit + width > 64 and k + 1 < limbs.shape[1]:
        field = field | (limbs[:, k + 1] << np.uint64(64 - bit))
    if width < 64:
        field = field & np.uint64((1 << width) - 1)
    if signed and width < 64:
        sign = np.uint64(1 << (width - 1))
        return (field ^ sign).astype(np.int64) - np.int64(1 << (width - 1))
    return field.view(np.int64) if signed or width < 64 else field.astype(object)


def limbs_to_ints(limbs):
    """The limbs of each row as one Python int: an object array."""
    limbs = np.asarray(limbs, dtype=np.uint64)
    words = np.zeros(len(limbs), dtype=object)
    for k in range(limbs.shape[1]):
        words = words | (limbs[:, k].astype(object) << (64 * k))
    return words


def ints_to_limbs(words, limbs):
    """Python ints as ``limbs`` 64-bit limbs per row (the inverse of
    :func:`limbs_to_ints`)."""
    words = np.asarray(words, dtype=object).reshape(-1)
    out = np.zeros((len(words), limbs), dtype=np.uint64)
    for k in range(limbs):
        out[:, k] = ((words >> (64 * k)) & 0xFFFFFFFFFFFFFFFF).astype(np.uint64)
    return out


def unpack(spec, words):
    """Unpack ints (one per beat) into the nested dict/array form, with signed fields
    sign-extended. Returns int64 arrays (object for unsigned 64-bit fields)."""
    spec = _fields(spec)
    return unpack_limbs(spec, ints_to_limbs(words, _limb_count(spec)))


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
