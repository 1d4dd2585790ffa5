"""Float test vectors that force the hard cases of a float-to-integer rounding.

:func:`hard_floats` draws bit patterns of a :class:`~qdp.golden.floats.FloatFormat` for
inputs divided by given scales: a mix of exact ties ``x = (k + 1/2) * s`` and exact
multiples ``k * s`` (with their neighbours one and two ulps away), the values where the
output saturates by one step (on both ends, the zero point counted), subnormals, signed
zeros, the largest finite values, infinities, NaNs (several payloads, both signs), and
uniformly random bit patterns. Every class is present in any draw of a few hundred values.
"""

import numpy as np

from ..golden import floats
from ..golden._intarray import int_range

__all__ = ["hard_floats", "special_floats", "scale_patterns"]


def special_floats(fmt):
    """The bit patterns every draw includes: ±0, the smallest and largest subnormals and
    normals, ±max, ±Inf and NaNs (quiet and signalling, both signs)."""
    top = fmt.inf_bits
    one_sub, max_sub = 1, (1 << fmt.man_bits) - 1
    min_normal = 1 << fmt.man_bits
    magnitudes = [0, one_sub, max_sub, min_normal, fmt.max_bits, top,
                  fmt.nan_bits, top | 1, top | ((1 << fmt.man_bits) - 1)]
    sign = 1 << (fmt.width - 1)
    return np.array(magnitudes + [m | sign for m in magnitudes], dtype=np.int64)


def _near(rng, fmt, sign, significand, exponent):
    """The value rounded to ``fmt`` (toward zero), then moved -2..+2 ulps."""
    bits = floats.round_scaled(sign, significand, exponent, fmt, "trunc")
    step = rng.integers(-2, 3, bits.shape)
    magnitude = bits & ((1 << (fmt.width - 1)) - 1)
    moved = np.clip(magnitude + step, 0, fmt.max_bits)
    return moved | (bits & (1 << (fmt.width - 1)))


def hard_floats(rng, n, fmt, scale_bits, *, zero_point=0, out_width=8, out_signed=True):
    """``n`` bit patterns (int64) of ``fmt``, element ``i`` aimed at ``scale_bits[i]`` and
    ``zero_point[i]`` (both broadcast to ``n``; finite positive scales give the ties)."""
    scale_bits = np.broadcast_to(np.asarray(scale_bits, dtype=np.int64), (n,))
    z = np.broadcast_to(np.asarray(zero_point, dtype=np.int64), (n,))
    qmin, qmax = int_range(out_width, out_signed)
    _, ms, es = floats.decompose(scale_bits, fmt)
    kind = rng.integers(0, 6, n)
    # k + 1/2 (ties), k (multiples), the saturation edges: as 2 * multiple of s.
    span = 1 << (out_width + 1)
    k = rng.integers(-span, span, n)
    twice = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3],
        [2 * k + 1, 2 * k, 2 * (qmax - z) + rng.integers(0, 3, n),
         2 * (qmin - z) - rng.integers(0, 3, n)], 0)
    sign = twice < 0
    near = _near(rng, fmt, sign, np.abs(twice) * ms, es - 1)
    exact = floats.round_scaled(sign, np.abs(twice) * ms, es - 1, fmt, "half_even")
    aimed = np.where(rng.integers(0, 2, n) == 0, exact, near)
    random_bits = rng.integers(0, 1 << fmt.width, n)
    subnormal = rng.integers(0, 1 << fmt.man_bits, n) | \
        (rng.integers(0, 2, n) << (fmt.width - 1))
    bits = np.select([kind < 4, kind == 4], [aimed, subnormal], random_bits)
    specials = special_floats(fmt)
    place = rng.choice(n, size=min(n, specials.size), replace=False)
    bits[place] = specials[: place.size]
    return bits.astype(np.int64)


def scale_patterns(rng, fmt, shape):
    """Run-time scale bit patterns: mostly positive finite (exponents around 2**-4,
    spread wide), a tenth at the edges (smallest and largest subnormal, smallest normal,
    the largest finite values), a tenth special (±0, ±Inf, NaNs, negative), a tenth
    arbitrary bits."""
    exponent = np.clip(rng.normal(fmt.bias - 4, 4, shape).astype(np.int64), 0,
                       (1 << fmt.exp_bits) - 2)
    ordinary = (exponent << fmt.man_bits) | rng.integers(0, 1 << fmt.man_bits, shape)
    edges = np.array([1, (1 << fmt.man_bits) - 1, 1 << fmt.man_bits, fmt.max_bits,
                      fmt.max_bits - (3 << fmt.man_bits)], dtype=np.int64)
    kind = rng.random(shape)
    bits = np.where(kind < 0.7, ordinary, rng.choice(edges, shape))
    bits = np.where(kind >= 0.8, rng.choice(special_floats(fmt), shape), bits)
    return np.where(kind >= 0.9, rng.integers(0, 1 << fmt.width, shape), bits)
