"""The MX dot product on a MAC array: ``C = A @ B`` of two MX-quantized matrices, every
output the exact sum of its products (block scales included) rounded once to FP32, as
:func:`qdp.golden.mx_matmul` states it."""

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..golden.floats import FP32
from ..golden.mx import E8M0_BIAS, E8M0_NAN, element_format
from ._checks import check_choice, check_int
from .floats import Rounded, RoundingStages, encode_rounded
from .dsp import is_ecp5
from .mx_element import decode_element
from .pipeline import Pipeline

__all__ = ["MxMacArray", "LIMB_WIDTHS", "MAX_BLOCK_BITS"]

#: A dot product stays exact up to ``2**MAX_BLOCK_BITS`` blocks (K = 2**21 at blocks of
#: 32): the accumulators carry that many guard bits above the largest block product.
MAX_BLOCK_BITS = 16
#: Widths of the accumulator's limbs, the adder of each column's accumulator ring.
LIMB_WIDTHS = (32, 64, 128)
#: Scale sums of two E8M0 bytes span 0..2 * 254 (a NaN scale's garbage is never read).
_SCALE_SPAN = 2 * (E8M0_NAN - 1)
_EXP_SHAPE = signed(12)


class MxMacArray(wiring.Component):
    """An output-stationary ``rows x cols`` array of MX dot products:
    ``C[r, c] = fl32(sum_k a[r, k] * 2**(sa - 127) * b[k, c] * 2**(sb - 127))``, exact,
    rounded once (half to even), equal to :func:`qdp.golden.mx_matmul` bit for bit.

    OCP MX v1.0 leaves a dot product's internal precision implementation-defined (§6.2);
    qdp's choice is the exactly rounded sum, so the result does not depend on the order
    of the additions.

    Structure. Every PE ``(r, c)`` sums its block's products exactly in
    ``block_width`` bits (a product of two elements is an integer times
    ``2**(2 lsb)``). At a block's end the block sums and the block's scales move into
    shadow registers, and each column's *accumulator ring* adds them into ``rows``
    fixed-point accumulators of ``acc_width`` bits (a Kulisch accumulator: every scale
    sum 0..508 has its place, plus :data:`MAX_BLOCK_BITS` guard bits), shifted by
    ``sa + sb``. The ring stores its accumulators as ``limb_width``-bit limbs in one
    memory (LUT RAM) that turns every cycle past a single adder, least significant limb
    first (the first turn after a reset writes zeros), so the carry ripples through a
    whole accumulator in one turn of ``rows * limbs`` cycles (``ring_period``) and no
    adder is wider than a limb. On a
    tile's last block the ring streams each finished accumulator, least significant
    limb first, into a window finder (the topmost limb that is not sign extension, the
    limb below it, a sticky OR of the rest), writes zeros behind it, and one FP32
    rounder per column (:class:`~qdp.hdl.floats.RoundingStages`) rounds the window.

    Special values: a NaN scale (``0xFF``) or NaN element in a row of A or a column of B
    makes that output NaN; ``fp8_e5m2``'s Inf products follow IEEE (``Inf * 0`` and
    ``Inf - Inf`` give NaN, else the signed Inf); an exact zero sum is +0.

    Throughput. One k-step per cycle while ``block_size >= ring_period + 5``; shorter
    blocks wait at their last beat for the ring to take the previous block's sums
    (``block_size / (ring_period + 5)`` k-steps per cycle). Tiles of one block drain
    through the same ring.

    Parameters
    ----------
    rows, cols : int
        Array shape, 1..16: ``rows`` elements of A and ``cols`` of B per beat, a
        ``rows x cols`` FP32 result tile.
    element : str
        The element format of both operands: ``"int8"``, ``"fp8_e4m3"``,
        ``"fp8_e5m2"``, ``"fp6_e3m2"``, ``"fp6_e2m3"`` or ``"fp4_e2m1"``.
    block_size : int
        Elements of K per shared scale, 1..256 (OCP MX: 32).
    limb_width : int
        Bits of the accumulator ring's adder, 32, 64 or 128: wider limbs make a shorter
        ring (more throughput at small blocks) and a longer carry chain.

    Members
    -------
    i : ``In(stream.Signature(data.StructLayout(...)))``
        One k-step per beat: ``a`` (``ArrayLayout(unsigned(element width), rows)``, the
        k-th column of A's codes), ``b`` (``cols`` codes, the k-th row of B),
        ``a_scale`` (``rows`` E8M0 bytes, the scale of each row's current block),
        ``b_scale`` (``cols`` bytes), and ``last``, set on the tile's last beat. Blocks
        are counted from the tile's first beat; the scales are read on each block's last
        beat (hold them for the block). A ``last`` inside a block closes it as a shorter
        block. ``i.ready`` may depend on ``i.payload.last``.
    o : ``Out(stream.Signature(data.StructLayout(...)))``
        The result tile, one row per beat: ``data`` (``ArrayLayout(unsigned(32), cols)``,
        FP32 patterns of row r of C), ``first`` (row 0), ``last`` (row ``rows - 1``).
    latency : int
        The most cycles from taking a tile's last beat to its first row on ``o`` (with
        ``o.ready`` high and the ring free): four front stages, the decision a cycle
        ahead, up to a ring turn to reach row 0's slot, one turn of its limbs, the sum
        and window registers, the magnitude's two stages, the rounder's eight and the
        output buffer.
    """

    RANGES = {"rows": (1, 16), "cols": (1, 16), "block_size": (1, 256)}

    def __init__(self, *, rows=4, cols=4, element="fp8_e4m3", block_size=32, limb_width=64):
        self.rows = check_int("rows", rows, *self.RANGES["rows"])
        self.cols = check_int("cols", cols, *self.RANGES["cols"])
        self.elem = element_format(element)
        self.element = self.elem.name
        self.block_size = check_int("block_size", block_size, *self.RANGES["block_size"])
        self.limb_width = check_choice("limb_width", check_int("limb_width", limb_width, 1, 128),
                                       LIMB_WIDTHS)
        elem = self.elem
        if elem.exp_bits == 0:
            max_sig, max_step = 128, 0
        else:
            max_sig, max_step = (2 << elem.man_bits) - 1, (elem.max_field >> elem.man_bits) - 1
        self.step_width = max(1, max_step.bit_length())
        max_product = max_sig * max_sig << 2 * max_step
        self.product_width = max_product.bit_length() + 1
        self.block_width = (block_size * max_product).bit_length() + 1
        self.limbs = -(-(self.block_width + _SCALE_SPAN + MAX_BLOCK_BITS) // limb_width)
        self.acc_width = self.limbs * limb_width
        #: The exponent of an accumulator's least significant bit.
        self.acc_lsb = 2 * (elem.lsb - E8M0_BIAS)
        width = elem.width
        fields = {"a": data.ArrayLayout(unsigned(width), rows),
                  "b": data.ArrayLayout(unsigned(width), cols),
                  "a_scale": data.ArrayLayout(unsigned(8), rows),
                  "b_scale": data.ArrayLayout(unsigned(8), cols), "last": 1}
        result = data.StructLayout({"data": data.ArrayLayout(unsigned(FP32.width), cols),
                                    "first": 1, "last": 1})
        super().__init__({
            "i": In(stream.Signature(data.StructLayout(fields))),
            "o": Out(stream.Signature(result)),
        })

    @property
    def lanes(self):
        """Elements per output beat (one row of the result tile)."""
        return self.cols

    @property
    def ring_period(self):
        """Cycles of one turn of a column's accumulator ring: ``rows * limbs``."""
        return self.rows * self.limbs

    @property
    def throughput(self):
        """Sustained k-steps per cycle (each ``rows * cols`` MACs), at least."""
        return min(1.0, self.block_size / (self.ring_period + 5))

    def _rounding(self):
        return RoundingStages(precision=FP32.precision, fmt=FP32, exp_shape=_EXP_SHAPE)

    @property
    def latency(self):
        return 5 + self.ring_period + self.limbs + 2 + 2 + len(self._rounding().stages()) + 1

    latency_definition = {
        "from_stream": "i",
        "from": "the cycle in which a tile's last beat (last = 1) is accepted on i",
        "to_stream": "o",
        "to": "at most this many cycles later, that tile's first row (first = 1) is "
              "valid on o; its other rows follow at most one ring turn apart",
        "when": "o.ready held high and the previous tile drained",
    }
    ready_dependencies = {"i": ()}
    #: No instantiated multiplier tiles: the element products are a few bits wide (Yosys
    #: may still map them to DSPs; the synthesis report counts what it did).
    dsp_tiles = 0

    def elaborate(self, platform):
        m = Module()
        ring = _RingControl(m, self.rows, self.limbs)
        s1 = self._input(m, ring)
        s3 = self._products(m, s1)
        shadow = self._accumulate(m, s3, ring)
        ring.wire(shadow["final"])
        # On ECP5 the rings go to LUT RAM, not block RAM: a block RAM's read data (4.1
        # ns) would feed the adder. The attribute means nothing to other families.
        attrs = {"ram_style": "distributed"} if is_ecp5(platform) else {}
        captures = [self._column(m, ring, shadow, c, attrs) for c in range(self.cols)]
        rounded, valid, row = self._round(m, ring, captures)
        self._output(m, ring, rounded, valid, row)
        return m

    # -- Front: block counting, decode, products, block sums -------------------------------

    def _input(self, m, ring):
        """Take a beat unless it ends a block while the shadow registers are taken; the
        decoded operands behind one register."""
        pos = Signal(range(self.block_size), name="block_pos")
        payload = self.i.payload
        ends = (pos == self.block_size - 1) | payload.last
        in_flight = Signal(name="end_in_flight")
        m.d.comb += self.i.ready.eq(~ends | (~ring.pending.any() & ~in_flight))
        take = self.i.valid & self.i.ready
        with m.If(take):
            m.d.sync += pos.eq(Mux(ends, 0, pos + 1))
        s1 = dict(valid=Signal(name="s1_valid"), end=Signal(name="s1_end"),
                  tile=Signal(name="s1_tile"))
        m.d.sync += [s1["valid"].eq(take), s1["end"].eq(take & ends),
                     s1["tile"].eq(take & payload.last)]
        for name, count in (("a", self.rows), ("b", self.cols)):
            parts = []
            for k in range(count):
                part = decode_element(payload[name][k], self.elem)
                regs = dict(sign=Signal(), sig=Signal(len(part.significand)),
                            step=Signal(self.step_width), nan=Signal(), inf=Signal(),
                            scale=Signal(8))
                m.d.sync += [regs["sign"].eq(part.sign), regs["sig"].eq(part.significand),
                             regs["step"].eq(part.step), regs["nan"].eq(part.nan),
                             regs["inf"].eq(part.inf),
                             regs["scale"].eq(payload[f"{name}_scale"][k])]
                for key, reg in regs.items():
                    reg.name = f"s1_{name}{k}_{key}"
                parts.append(regs)
            s1[name] = parts
        self._in_flight = in_flight
        return s1

    def _products(self, m, s1):
        """Every PE's exact product (an integer times ``2**(2 lsb)``, zero for the
        special codes) and its IEEE flags: the significands' product and the exponent
        steps' sum behind one register, the product shifted into place behind the next
        (its sign beside it: the accumulator adds or subtracts)."""
        stages = []
        for n, prev in ((2, s1), (3, None)):
            stage = {k: Signal(name=f"s{n}_{k}") for k in ("valid", "end", "tile")}
            prev = prev or stages[-1]
            m.d.sync += [stage[k].eq(prev[k]) for k in stage]
            for side in ("a", "b"):
                stage[f"{side}_scale"] = [
                    self._register(m, v["scale"] if n == 2 else v, f"s{n}_s{side}{k}")
                    for k, v in enumerate(prev[side] if n == 2 else prev[f"{side}_scale"])]
            stages.append(stage)
        s2, s3 = stages
        m.d.comb += self._in_flight.eq(
            Cat(s["valid"] & s["end"] for s in (s1, s2, s3)).any())
        s2["pe"], s3["pe"] = {}, {}
        for r, a in enumerate(s1["a"]):
            for c, b in enumerate(s1["b"]):
                special = a["nan"] | a["inf"] | b["nan"] | b["inf"]
                a_zero, b_zero = ((x["sig"] == 0) & ~x["nan"] & ~x["inf"] for x in (a, b))
                infinite = (a["inf"] | b["inf"]) & ~a["nan"] & ~b["nan"]
                negative = a["sign"] ^ b["sign"]
                values = dict(
                    product=Mux(special, 0, a["sig"] * b["sig"]), step=a["step"] + b["step"],
                    negative=negative, pinf=infinite & ~negative, ninf=infinite & negative,
                    nan=a["nan"] | b["nan"] | (a["inf"] & b_zero) | (a_zero & b["inf"]))
                pe = {k: self._register(m, v, f"s2_{k}{r}_{c}") for k, v in values.items()}
                s2["pe"][r, c] = pe
                shifted = (pe["product"] << pe["step"])[:self.product_width - 1]
                s3["pe"][r, c] = dict(
                    magnitude=self._register(m, shifted, f"s3_p{r}_{c}"),
                    **{k: self._register(m, pe[k], f"s3_{k}{r}_{c}")
                       for k in ("negative", "nan", "pinf", "ninf")})
        return s3

    @staticmethod
    def _register(m, value, name, shape=None):
        reg = Signal(shape if shape is not None else len(value), name=name)
        m.d.sync += reg.eq(value)
        return reg

    def _accumulate(self, m, s2, ring):
        """Every PE's block sum and tile flags; at a block's end the sums, the block's
        scales and (at the tile's end) the flags move into the shadow registers, and
        every row of the ring becomes pending."""
        load = s2["valid"] & s2["end"]
        shadow = dict(sum={}, shift={}, flags={}, final=Signal(name="shadow_final"))
        with m.If(load):
            m.d.sync += [shadow["final"].eq(s2["tile"]), ring.pending.eq(-1)]
        for (r, c), pe in s2["pe"].items():
            acc = Signal(signed(self.block_width), name=f"acc{r}_{c}")
            addend = Cat(pe["magnitude"], Const(0, 1)).as_signed()
            total = (acc + Mux(pe["negative"], ~addend, addend) + pe["negative"]) \
                [:self.block_width].as_signed()
            shadow["sum"][r, c] = Signal(signed(self.block_width), name=f"shadow{r}_{c}")
            shadow["shift"][r, c] = Signal(9, name=f"shadow_shift{r}_{c}")
            scale_nan = (s2["a_scale"][r] == E8M0_NAN) | (s2["b_scale"][c] == E8M0_NAN)
            flags, merged, shadow_flags = {}, {}, {}
            for key in ("nan", "pinf", "ninf"):
                flags[key] = Signal(name=f"{key}{r}_{c}")
                merged[key] = flags[key] | pe[key] | (scale_nan & s2["end"]
                                                     if key == "nan" else 0)
                shadow_flags[key] = Signal(name=f"shadow_{key}{r}_{c}")
            shadow["flags"][r, c] = shadow_flags
            with m.If(s2["valid"]):
                m.d.sync += acc.eq(Mux(s2["end"], 0, total))
                m.d.sync += [flags[k].eq(Mux(s2["tile"], 0, merged[k])) for k in flags]
            with m.If(load):
                m.d.sync += [shadow["sum"][r, c].eq(total),
                             shadow["shift"][r, c].eq(s2["a_scale"][r] + s2["b_scale"][c])]
                m.d.sync += [shadow_flags[k].eq(merged[k]) for k in flags]
        return shadow

    # -- The accumulator rings -------------------------------------------------------------

    def _column(self, m, ring, shadow, c, attrs):
        """Column ``c``'s accumulator ring: the block sum of the row whose turn it is,
        shifted into place limb by limb, added with a carry that ripples one limb per
        cycle; on a tile's last block the finished accumulator's window and flags."""
        limb, rows = self.limb_width, self.rows
        # The operand of the pass starting next cycle: the block sum shifted by the
        # scale sum's low bits, and how many limbs to wait for its first.
        nxt = ring.next_row
        chosen = {"sum": Signal(signed(self.block_width), name=f"ring{c}_chosen_sum"),
                  "shift": Signal(9, name=f"ring{c}_chosen_shift")}
        chosen.update({k: Signal(name=f"ring{c}_chosen_{k}") for k in ("nan", "pinf", "ninf")})
        with m.If(ring.decide):
            m.d.sync += [chosen[k].eq(Array(shadow[k][r, c] for r in range(rows))[nxt])
                         for k in ("sum", "shift")]
            m.d.sync += [chosen[k].eq(Array(shadow["flags"][r, c][k] for r in range(rows))
                                      [nxt]) for k in ("nan", "pinf", "ninf")]
        s = chosen["shift"]
        shift_bits = limb.bit_length() - 1
        operand = Signal(signed(self.block_width + limb), name=f"ring{c}_operand")
        wait = Signal(range(_SCALE_SPAN // limb + 2), name=f"ring{c}_wait")
        flags = {k: Signal(name=f"ring{c}_{k}") for k in ("nan", "pinf", "ninf")}
        # The limb the adder takes, a register ahead: the operand's next limb once its
        # wait is over, else 0.
        addend = Signal(limb, name=f"ring{c}_addend")
        with m.If(ring.active):
            with m.If(wait == 0):
                m.d.sync += [operand.eq(operand >> limb),
                             addend.eq((operand >> limb)[:limb])]
            with m.Else():
                m.d.sync += [wait.eq(wait - 1), addend.eq(Mux(wait == 1, operand[:limb], 0))]
        # After the pass above: a pass's last limb is the cycle the next one loads in.
        with m.If(ring.last_limb):
            m.d.sync += addend.eq(0)
        with m.If(ring.take):
            shifted = chosen["sum"] << s[:shift_bits]
            m.d.sync += [operand.eq(shifted), wait.eq(s[shift_bits:]),
                         addend.eq(Mux(s[shift_bits:] == 0, shifted[:limb], 0))]
            m.d.sync += [flags[k].eq(chosen[k]) for k in flags]
        # The ring: a memory of `ring.length` limbs, the limb of the turn's phase read a
        # cycle ahead and written back behind the adder.
        m.submodules[f"ring{c}"] = store = Memory(shape=unsigned(limb), depth=ring.length,
                                                  init=[], attrs=attrs)
        head, back = store.read_port(transparent_for=()), store.write_port()
        carry = Signal(name=f"ring{c}_carry")
        total = head.data + addend + carry
        added = Signal(limb, name=f"ring{c}_sum")
        m.d.comb += [added.eq(total[:limb]), head.addr.eq(ring.next_phase),
                     back.addr.eq(ring.phase), back.en.eq(1),
                     back.data.eq(Mux(ring.final | ring.clearing, 0, added))]
        m.d.sync += carry.eq(Mux(ring.last_limb, 0, total[limb]))
        # The window finder works a cycle behind, on the registered sum.
        # With it, which of its nibbles are not all zeros and not all ones: the window
        # finder's two tests, half done here so that neither cycle holds a whole OR tree.
        summed = Signal(limb, name=f"ring{c}_summed")
        nibbles = range(0, limb, 4)
        marks = {"pos": Signal(len(nibbles), name=f"ring{c}_nonzero"),
                 "neg": Signal(len(nibbles), name=f"ring{c}_nonones")}
        m.d.sync += [summed.eq(added),
                     marks["pos"].eq(Cat(added[k:k + 4] != 0 for k in nibbles)),
                     marks["neg"].eq(Cat(added[k:k + 4] != 0xF for k in nibbles))]
        behind = {k: Signal(name=f"ring{c}_{k}_behind") for k in flags}
        m.d.sync += [behind[k].eq(flags[k]) for k in flags]
        return self._window(m, ring.behind, summed, marks, behind, c)

    def _window(self, m, turn, added, marks, flags, c):
        """The finished accumulator's window as its limbs pass, least significant first,
        for either sign (chosen by the top bit at the end): the topmost limb that is
        not sign extension (``marks``: its nibbles that are not), the limb below it, a
        sticky OR of the limbs below those."""
        limb = self.limb_width
        first = turn.first
        prev = Signal(limb, name=f"win{c}_prev")
        below = Signal(name=f"win{c}_below")
        prev_now, below_now = Mux(first, 0, prev), Mux(first, 0, below)
        m.d.sync += [prev.eq(added), below.eq(below_now | (prev_now != 0))]
        found = {}
        for key in ("pos", "neg"):
            here = dict(hi=added, lo=prev_now, sticky=below_now, top=turn.limb)
            kept = {k: Signal(len(v), name=f"win{c}_{key}_{k}") for k, v in here.items()}
            take = first | marks[key].any()
            with m.If(turn.final):
                m.d.sync += [kept[k].eq(Mux(take, here[k], kept[k])) for k in kept]
            found[key] = {k: Mux(take, here[k], kept[k]) for k in kept}
        negative = added[limb - 1]
        capture = {k: Mux(negative, found["neg"][k], found["pos"][k]) for k in found["pos"]}
        return dict(capture, negative=negative, **flags)

    # -- Rounding and the output tile ------------------------------------------------------

    def _round(self, m, ring, captures):
        """Each column's window as a significand and exponent (a negative accumulator's
        magnitude: the window's complement, plus one unless a bit below it is set),
        rounded to FP32."""
        limb = self.limb_width
        valid = Signal(name="window_valid")
        row = Signal(range(self.rows), name="window_row")
        turn = ring.behind
        m.d.sync += [valid.eq(turn.final & turn.last_limb), row.eq(turn.row)]
        lanes = []
        for c, cap in enumerate(captures):
            regs = {k: Signal(len(v), name=f"window{c}_{k}") for k, v in cap.items()}
            with m.If(turn.final & turn.last_limb):
                m.d.sync += [regs[k].eq(cap[k]) for k in regs]
            exponent = (regs["top"] << (limb.bit_length() - 1)) + (self.acc_lsb - limb - 1)
            lanes.append(dict(regs, sign=regs["negative"], inf=Const(0, 1),
                              exponent=exponent.as_signed()[:_EXP_SHAPE.width].as_signed()))
        pipe = Pipeline(m, Const(1, 1), valid)
        stages = [self._complement, self._carry] + self._rounding().stages()
        lanes, riders = pipe.run(stages, lanes, riders=dict(row=row))
        out = []
        for v in lanes:
            bits = encode_rounded(Rounded(v["sign"], v["significand"], v["exponent"],
                                          v["inf"]), FP32)
            nan = v["nan"] | (v["pinf"] & v["ninf"])
            out.append(Mux(nan, FP32.nan_bits,
                           Mux(v["pinf"], FP32.inf_bits,
                               Mux(v["ninf"], FP32.inf_bits | (1 << 31), bits))))
        return out, pipe.valid, riders["row"]

    @staticmethod
    def _complement(v):
        """A negative window's complement, plus one unless a bit below it is set: the low
        limb's half of the increment (the carry into the high limb kept)."""
        flip = v["negative"]
        low = Mux(flip, ~v["lo"], v["lo"]) + (flip & ~v["sticky"])
        rest = {k: x for k, x in v.items() if k not in ("lo", "hi", "negative", "top")}
        return dict(rest, low=low, high=Mux(flip, ~v["hi"], v["hi"]))

    @staticmethod
    def _carry(v):
        """The high limb's half: the magnitude, the sticky bit below it."""
        limb = len(v["high"])
        magnitude = Cat(v["low"][:limb], v["high"] + v["low"][limb])
        rest = {k: x for k, x in v.items() if k not in ("low", "high")}
        return dict(rest, significand=Cat(v["sticky"], magnitude))

    def _output(self, m, ring, rounded, valid, row):
        """One buffer row per tile row, written as its result arrives (in any order) and
        sent in row order; a row's next result waits in the ring until it has left."""
        rows = self.rows
        data_rows = [Signal(data.ArrayLayout(unsigned(FP32.width), self.cols),
                            name=f"out_row{r}") for r in range(rows)]
        full = Signal(rows, name="out_full")
        with m.If(valid):
            for r in range(rows):
                with m.If(row == r):
                    m.d.sync += [data_rows[r][c].eq(v) for c, v in enumerate(rounded)]
                    m.d.sync += full[r].eq(1)
        send = Signal(range(rows), name="out_row")
        m.d.comb += [self.o.valid.eq(full.bit_select(send, 1)),
                     self.o.payload.data.eq(Array(data_rows)[send]),
                     self.o.payload.first.eq(send == 0),
                     self.o.payload.last.eq(send == rows - 1)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [full.bit_select(send, 1).eq(0), ring.busy.bit_select(send, 1).eq(0),
                         send.eq(Mux(send == rows - 1, 0, send + 1))]


@dataclass
class _Turn:
    """Where a ring's turn is: the limb and row at the adder, whether its pass is a
    tile's last."""

    limb: Signal
    row: Signal
    final: Signal
    last_limb: object
    first: object = None


class _RingControl:
    """The accumulator rings' shared control: the turn (the row and limb at the adders),
    which rows have a block sum waiting (``pending``) and which rows' results are on
    their way out (``busy``); ``take`` starts a row's pass next cycle."""

    def __init__(self, m, rows, limbs):
        self.length = rows * limbs
        self.limb = Signal(range(limbs), name="ring_limb")
        self.row = Signal(range(rows), name="ring_row")
        self.pending = Signal(rows, name="ring_pending")
        self.busy = Signal(rows, name="ring_busy")
        self.active = Signal(name="ring_active")
        self.final = Signal(name="ring_final")
        # Registered a cycle ahead (the limb counts up every cycle): each drives a wide
        # load.
        self.last_limb = Signal(name="ring_last_limb")
        #: The limb before the last: the next pass is decided and its operand selected.
        self.decide = Signal(name="ring_decide")
        m.d.sync += [self.last_limb.eq(self.limb == limbs - 2),
                     self.decide.eq(self.limb == limbs - 3)]
        self.next_row = Signal(range(rows), name="ring_next_row")
        m.d.comb += self.next_row.eq(Mux(self.row == rows - 1, 0, self.row + 1))
        self.take = Signal(name="ring_take")
        self.phase = Signal(range(self.length), name="ring_phase")
        self.next_phase = Signal(range(self.length), name="ring_next_phase")
        # The memory holds whatever it held before a reset: the first turn clears it.
        self.clearing = Signal(init=1, name="ring_clearing")
        self.last_phase = last_phase = self.phase == self.length - 1
        m.d.comb += self.next_phase.eq(Mux(last_phase, 0, self.phase + 1))
        m.d.sync += self.phase.eq(self.next_phase)
        with m.If(last_phase):
            m.d.sync += self.clearing.eq(0)
        m.d.sync += self.limb.eq(Mux(self.last_limb, 0, self.limb + 1))
        with m.If(self.last_limb):
            m.d.sync += self.row.eq(self.next_row)
        self._m = m
        #: The turn a cycle later: the window finder's view.
        self.behind = _Turn(*(Signal(len(v), name=f"{name}_behind") for name, v in
                              (("ring_limb", self.limb), ("ring_row", self.row),
                               ("ring_final", self.final))), None)
        self.behind.last_limb = Signal(name="ring_last_limb_behind")
        self.behind.first = Signal(name="ring_first_behind")
        m.d.sync += [self.behind.last_limb.eq(self.last_limb),
                     self.behind.first.eq(self.limb == 0)]
        m.d.sync += [self.behind.limb.eq(self.limb), self.behind.row.eq(self.row),
                     self.behind.final.eq(self.final)]

    def wire(self, shadow_final):
        """Connect the decision to the shadow's ``final`` flag."""
        m, nxt = self._m, self.next_row
        waiting = self.pending.bit_select(nxt, 1)
        free = ~self.busy.bit_select(nxt, 1)
        # Decided a cycle ahead, at the limb before the last (nothing it reads can become
        # true in that cycle but by a load, which finds no row pending: a missed slot at
        # worst). The clearing turn's last cycle may take row 0: its pass starts on
        # cleared limbs.
        decided = Signal(name="ring_decided")
        cleared = ~self.clearing | (self.phase == self.length - 2)
        with m.If(self.decide):
            m.d.sync += decided.eq(cleared & waiting & (~shadow_final | free))
        m.d.comb += self.take.eq(self.last_limb & decided)
        with m.If(self.last_limb):
            m.d.sync += [self.active.eq(self.take), self.final.eq(self.take & shadow_final)]
        with m.If(self.take):
            m.d.sync += self.pending.bit_select(nxt, 1).eq(0)
            with m.If(shadow_final):
                m.d.sync += self.busy.bit_select(nxt, 1).eq(1)
