"""A wide pipelined multiplier built from DSP-sized tiles and a registered adder tree."""

from amaranth.hdl import Cat, Const, Module, Shape, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_bool, check_int
from .dsp import DSPMultiplier

__all__ = ["TiledMultiplier", "adder_levels", "limbs", "tiles", "registered_multiplier",
           "pipeline_products", "MULTIPLY"]

#: Marks, in a component's list of pipeline stages, where :func:`pipeline_products` runs.
MULTIPLY = "multiply"

# A MULT18X18D multiplies 18-bit operands, each signed or not as a whole: a low limb of
# a signed operand is unsigned, so low limbs are 17 bits and only the top limb takes 18.
LOW_LIMB_BITS = 17


def limbs(shape, low_limb_bits=LOW_LIMB_BITS):
    """The limbs ``[(offset, shape), ...]`` that ``shape`` splits into, lowest first: low
    limbs of ``low_limb_bits`` unsigned bits, a top limb of up to one bit more with the
    operand's signedness."""
    result, offset = [], 0
    while shape.width - offset > low_limb_bits + 1:
        result.append((offset, unsigned(low_limb_bits)))
        offset += low_limb_bits
    rest = shape.width - offset
    return result + [(offset, signed(rest) if shape.signed else unsigned(rest))]


def tiles(a_shape, b_shape):
    """Multiplier tiles (MULT18X18D on ECP5) of one ``a_shape x b_shape`` product."""
    return len(limbs(a_shape)) * len(limbs(b_shape))


def registered_multiplier(a_shape, b_shape):
    """The blocks' product: a :class:`TiledMultiplier` with every adder level registered."""
    return TiledMultiplier(a_shape, b_shape, registered_levels=adder_levels(a_shape, b_shape))


def adder_levels(a_shape, b_shape, low_limb_bits=LOW_LIMB_BITS):
    """Levels of the adder tree that sums the tiles of ``a_shape x b_shape``."""
    terms = len(limbs(a_shape, low_limb_bits)) * len(limbs(b_shape, low_limb_bits))
    levels = 0
    while terms > 1:
        terms, levels = (terms + 1) // 2, levels + 1
    return levels


class TiledMultiplier(wiring.Component):
    """``p = a * b`` exactly, for operands wider than one DSP.

    Each operand splits into limbs (:func:`limbs`); every pair of limbs is one
    :class:`~qdp.hdl.dsp.DSPMultiplier` tile (registered inside the MULT18X18D on ECP5,
    a behavioural model of the same registers elsewhere). The weighted tile products are
    summed pairwise, nearest weights first, so each adder only spans the bits where its
    two terms overlap (the lower term's bits under the upper term's weight pass by on
    wires). The last ``registered_levels`` adder levels end in a register.

    Parameters
    ----------
    a_shape, b_shape : Shape
        Operand shapes, signed or unsigned, 1..64 bits.
    registered_levels : int
        Registered adder levels, 0..:func:`adder_levels`, counted from the output.
    register_tiles : bool
        A fabric register after every tile as well, before the adder tree: the DSPs of
        many multipliers spread over the device, and the route from a DSP to its adder
        then needs a cycle of its own.
    low_limb_bits : int
        Width of the low limbs, 2..17 (narrower limbs only serve to test the tree with
        many tiles at small widths).

    Members
    -------
    a, b : ``In(a_shape)``, ``In(b_shape)``
        Operands.
    en : ``In(1)``
        Clock enable of every register: low holds the whole pipeline.
    p : ``Out(signed(...) or unsigned(...))``
        The exact product, ``latency`` enabled cycles after its operands.

    The latency is ``DSPMultiplier.latency + registered_levels + register_tiles`` cycles
    (``latency``).
    """

    def __init__(self, a_shape, b_shape, *, registered_levels=0, register_tiles=False,
                 low_limb_bits=LOW_LIMB_BITS):
        a_shape, b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        for name, shape in (("a_shape", a_shape), ("b_shape", b_shape)):
            check_int(f"{name} width", shape.width, 1, 64)
        self.a_shape, self.b_shape = a_shape, b_shape
        self.low_limb_bits = check_int("low_limb_bits", low_limb_bits, 2, LOW_LIMB_BITS)
        self.levels = adder_levels(a_shape, b_shape, low_limb_bits)
        self.registered_levels = check_int("registered_levels", registered_levels, 0,
                                           self.levels)
        self.register_tiles = check_bool("register_tiles", register_tiles)
        self.latency = DSPMultiplier.latency + self.registered_levels + self.register_tiles
        p_shape = (signed if a_shape.signed or b_shape.signed else unsigned)(
            a_shape.width + b_shape.width)
        super().__init__({"a": In(a_shape), "b": In(b_shape), "en": In(1), "p": Out(p_shape)})

    def elaborate(self, platform):
        m = Module()
        terms = []
        for i, (a_off, a_shape) in enumerate(limbs(self.a_shape, self.low_limb_bits)):
            for j, (b_off, b_shape) in enumerate(limbs(self.b_shape, self.low_limb_bits)):
                tile = DSPMultiplier(a_shape, b_shape)
                m.submodules[f"tile_{i}_{j}"] = tile
                m.d.comb += [
                    tile.a.eq(self.a[a_off:a_off + a_shape.width]),
                    tile.b.eq(self.b[b_off:b_off + b_shape.width]),
                    tile.en.eq(self.en),
                ]
                product = tile.p
                if self.register_tiles:
                    product = self._register(m, product, f"tile{i}_{j}")
                terms.append((a_off + b_off, product))

        levels = self.levels
        for level in range(levels):
            terms.sort(key=lambda term: term[0])
            summed = [_add(low, high) for low, high in zip(terms[::2], terms[1::2])]
            if len(terms) % 2:
                summed.append(terms[-1])
            if level >= levels - self.registered_levels:
                summed = [(weight, self._register(m, value, f"sum{level}_{k}"))
                          for k, (weight, value) in enumerate(summed)]
            terms = summed
        (weight, value), = terms
        assert weight == 0
        m.d.comb += self.p.eq(value)
        return m

    def _register(self, m, value, name):
        reg = Signal(value.shape(), name=name)
        with m.If(self.en):
            m.d.sync += reg.eq(value)
        return reg


def _add(low, high):
    """The sum of two weighted terms ``(weight, value)``, at the lower weight.

    The lower term's bits below the upper term's weight cannot carry: they pass by."""
    (w_low, v_low), (w_high, v_high) = low, high
    d = w_high - w_low
    is_signed = v_low.shape().signed
    if len(v_low) <= d:
        fill = v_low[-1] if is_signed else Const(0, 1)
        v_low = Cat(v_low, fill.replicate(d + 1 - len(v_low)))
        v_low = v_low.as_signed() if is_signed else v_low
    upper = v_low[d:].as_signed() if is_signed else v_low[d:]
    value = Cat(v_low[:d], upper + v_high)
    return w_low, value.as_signed() if is_signed or v_high.shape().signed else value


def pipeline_products(m, pipe, lanes, make, *, name="multiplier"):
    """Each lane's exact product ``a * b`` from a :class:`TiledMultiplier` that ``make()``
    builds, moving on the :class:`~qdp.hdl.pipeline.Pipeline` ``pipe``'s ``advance``; the
    lane's other values (and lanes without ``a``) wait as many cycles beside it. Returns
    the lanes with the product as ``significand`` in place of ``a`` and ``b``."""
    products, sides, latency = [], [], 0
    for lane, v in enumerate(lanes):
        if "a" not in v:
            products.append(None)
            sides.append(v)
            continue
        mul = make()
        m.submodules[f"{name}{lane}"] = mul
        m.d.comb += [mul.a.eq(v["a"]), mul.b.eq(v["b"]), mul.en.eq(pipe.advance)]
        products.append(mul.p)
        sides.append({k: val for k, val in v.items() if k not in ("a", "b")})
        latency = mul.latency
    for _ in range(latency):
        sides = pipe.register(True, sides)
    return [side if p is None else dict(side, significand=p)
            for side, p in zip(sides, products)]
