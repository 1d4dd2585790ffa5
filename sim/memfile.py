"""``$readmemh`` / ``$writememh`` files of packed words, written and read vectorized.

Words are rows of 64-bit limbs (:func:`qdp.sim.payload.pack_limbs`). A file holds one word
per line as exactly ``ceil(width / 4)`` hex digits, which is what both Icarus and
Verilator write; the ``// 0x<address>`` comment lines that Icarus adds every 16 words are
skipped.
A digit that is not hex (``x`` or ``z`` from a four-state simulator) is an error naming
the line.
"""

import re
from pathlib import Path

import numpy as np

__all__ = ["write_words", "read_words"]

_COMMENT = re.compile(rb"//[^\n]*\n")
_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_VALUES = np.full(256, 255, dtype=np.uint8)
_VALUES[_DIGITS] = np.arange(16, dtype=np.uint8)
_VALUES[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)


def _digits(width):
    return max(1, -(-width // 4))


def write_words(path, limbs, width):
    """Write ``limbs`` (shape ``(words, limbs)``) as a ``$readmemh`` file of ``width``-bit
    words."""
    limbs = np.ascontiguousarray(limbs, dtype=np.uint64)
    n, digits = len(limbs), _digits(width)
    # Most significant limb first, each big-endian: the bytes in reading order.
    octets = limbs[:, ::-1].astype(">u8").view(np.uint8).reshape(n, -1)
    nibbles = np.empty((n, octets.shape[1] * 2 + 1), dtype=np.uint8)
    nibbles[:, 0:-1:2] = _DIGITS[octets >> 4]
    nibbles[:, 1:-1:2] = _DIGITS[octets & 15]
    nibbles[:, -1] = ord("\n")
    Path(path).write_bytes(nibbles[:, -digits - 1:].tobytes())


def read_words(path, width):
    """The ``width``-bit words of a ``$writememh`` file, as uint64 limbs of shape
    ``(words, ceil(width / 64))``."""
    data = _COMMENT.sub(b"", Path(path).read_bytes())
    digits, limbs = _digits(width), max(1, -(-width // 64))
    if len(data) % (digits + 1):
        raise ValueError(f"{path}: not {digits}-digit lines")
    chars = np.frombuffer(data, dtype=np.uint8).reshape(-1, digits + 1)
    if np.any(chars[:, -1] != ord("\n")):
        raise ValueError(f"{path}: not {digits}-digit lines")
    values = _VALUES[chars[:, :-1]]
    bad = np.flatnonzero(np.any(values == 255, axis=1))
    if bad.size:
        line = chars[bad[0], :-1].tobytes().decode(errors="replace")
        raise ValueError(f"{path}: word {bad[0]} is {line!r}, not a hex number "
                         f"(an undriven or unknown bit)")
    padded = np.zeros((len(values), limbs * 16), dtype=np.uint8)
    padded[:, limbs * 16 - digits:] = values
    octets = (padded[:, 0::2] << 4) | padded[:, 1::2]
    return np.ascontiguousarray(octets).view(">u8").astype(np.uint64)[:, ::-1].copy()
