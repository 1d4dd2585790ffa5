"""QLoRA's NF4 quantization in hardware: float elements in, one 4-bit NormalFloat code per
element and one FP32 absmax per block out, exactly as :func:`qdp.golden.nf4_codes` (the
codes of :func:`qdp.golden.nf4_quantize` before packing) states it -- bitsandbytes' CUDA
kernel, ``kQuantizeBlockwise`` with ``dQuantizeNF4``.

A block's constant needs its ``max |x|`` before any element can leave, so the unit stores
one block (:class:`~qdp.hdl.block_store.BlockStore`: one beat per cycle across
back-to-back blocks). The maximum is the kernel's ``fmaxf``: NaN elements are passed
over (:meth:`Nf4Quantize.magnitude` keys them below every number), and a block of NaNs
keeps the kernel's start value ``-FLT_MAX``. Each row read out then goes, with that
maximum, through the stages of :class:`Nf4Stages`:

1. the float32 model's constant, ``c = fl32(1 / absmax)``
   (:class:`~qdp.hdl.absmax_float.Float32Quantize` with ``qmax = 1``: a restoring
   divider, one quotient bit per stage, rounded half to even, subnormal ``c`` exact,
   ``+Inf`` for a zero or tiny absmax, 0 for an Inf one); beside it the absmax widened to
   FP32 (:func:`~qdp.hdl.floats.widen`) for ``scale``;
2. per lane, ``v = fl32(x * c)`` on registered DSP tiles, rounded half to even, IEEE's
   special cases beside it (``0 * Inf`` and NaN elements are NaN);
3. ``v``'s FP32 pattern, then its comparison with each of the kernel's 15 thresholds
   (:data:`qdp.golden.nf4.THRESHOLDS`, strictly greater: a value on a threshold takes the
   lower code; a NaN compares false everywhere);
4. the code: the number of thresholds below ``v``.

The absmax leaves on ``scale`` with the block's first beat on ``o``.

Codes leave one per lane, lane 0 first in the stream; bitsandbytes packs two per byte
with the *first* element in the high nibble, so a two-lane beat read as a byte has its
nibbles in the other order (:func:`qdp.golden.nf4_quantize` packs as the kernel does).
"""

from amaranth.hdl import Cat, Const, Mux, unsigned

from ..golden.floats import FP32, float_format
from ..golden.nf4 import NF4_BLOCK_SIZES, THRESHOLDS, check_block_size as check_nf4_block
from ._checks import check_block_size, check_bool, check_choice, check_int
from .absmax_float import Float32Quantize
from .block_store import BlockStore
from .floats import Rounded, encode_rounded, unpack, widen

__all__ = ["Nf4Quantize", "Nf4Stages", "NF4_IN_FORMATS"]

#: The input formats of bitsandbytes' kernels.
NF4_IN_FORMATS = ("fp32", "bf16", "fp16")
#: ``-FLT_MAX``: the kernel's start value of the max, a block of NaNs' constant.
MINUS_FLT_MAX = 0xFF7FFFFF
#: The thresholds' FP32 patterns, ascending.
_THRESHOLD_BITS = [int(t) for t in THRESHOLDS.view("uint32")]


class Nf4Stages(Float32Quantize):
    """The stages of NF4 quantization on the list of dicts of
    :meth:`~qdp.hdl.block_store.BlockStore.staged_datapath`: the float32 model's divider
    and product with ``qmax = 1``, then the comparisons with the thresholds.

    The block's ``absmax`` comes in as :meth:`Nf4Quantize.magnitude`'s key: the
    magnitude's pattern, its sign bit set when the block holds a number at all.
    """

    def __init__(self, fmt, *, fold=1):
        super().__init__(fmt, out_width=2, fold=fold)   # qmax = 1: c = fl32(1 / absmax)

    def element_stages(self):
        return [self._pattern, self._compare, self._code]

    # -- the block constant ------------------------------------------------------------

    def _unpack(self, values):
        """The key's magnitude for the divider, and whether the block holds a number."""
        block, top = values[0], self.fmt.width - 1
        key = block["absmax"]
        block = dict(block, absmax=Cat(key[:top], Const(0, 1)), seen=key[top])
        return super()._unpack([block] + values[1:])

    def _shift(self, values):
        """Beside the divider's shift, the FP32 absmax for ``scale``: ``-FLT_MAX`` for a
        block of NaNs."""
        block = values[0]
        widened = widen(block["absmax"], unpack(block["absmax"], self.fmt), block["lz"],
                        self.fmt, FP32)
        absmax32 = Mux(block["seen"], widened, MINUS_FLT_MAX)
        out = super()._shift(values)
        rest = {k: v for k, v in out[0].items() if k not in ("absmax", "seen")}
        return [dict(rest, absmax32=absmax32)] + out[1:]

    def _constant(self, values):
        """``c``'s parts for the product; its pattern is not an output here."""
        out = super()._constant(values)
        return [{k: v for k, v in out[0].items() if k != "c"}] + out[1:]

    # -- the elements ------------------------------------------------------------------

    @staticmethod
    def _pattern(v):
        """``v``'s FP32 pattern (its NaN flag beside it)."""
        r = Rounded(v["sign"], v["significand"], v["exponent"], v["inf"])
        return {"v": encode_rounded(r, FP32), "nan": v["nan"]}

    @staticmethod
    def _compare(v):
        """``v > t`` for each threshold ``t`` (nonzero constants): above a positive one
        takes a positive ``v`` of greater magnitude; above a negative one, any positive
        ``v`` (zeros included) or a negative one of smaller magnitude."""
        bits, magnitude = v["v"], v["v"][:FP32.width - 1]
        positive = ~bits[FP32.width - 1]
        above = []
        for t in _THRESHOLD_BITS:
            t_magnitude = t & 0x7FFFFFFF
            above.append(positive & (magnitude > t_magnitude) if t >> 31 == 0
                         else positive | (magnitude < t_magnitude))
        return {"above": Mux(v["nan"], 0, Cat(*above))}

    @staticmethod
    def _code(v):
        """The code: how many thresholds lie below ``v`` (the bits are a thermometer)."""
        return {"q": sum(v["above"][k] for k in range(len(_THRESHOLD_BITS)))[:4]}

    @staticmethod
    def scale(block):
        return block["absmax32"]


class Nf4Quantize(BlockStore):
    """NF4 quantization of a stream of float elements: per block of ``block_size``
    elements one FP32 absmax on ``scale`` and a 4-bit code per element on ``o``, equal to
    :func:`qdp.golden.nf4_codes` bit for bit (see the module for how).

    Parameters
    ----------
    block_size : int
        Elements per block: a power of two from 32 to 4096 (bitsandbytes' block sizes;
        QLoRA's is 64), a multiple of ``lanes``.
    lanes : int
        Elements per beat, 1..32.
    in_format : str
        ``"fp32"``, ``"bf16"`` or ``"fp16"`` (the kernel's inputs).
    read_register : bool
        A register right behind the storage's read data (one cycle more latency): for
        block RAM storage, whose data comes late in its cycle.

    Attributes
    ----------
    latency : int
        Cycles from the acceptance of a block's last input beat to its first output beat
        (``o.ready`` and ``scale.ready`` high, no earlier block draining); one more with
        ``read_register``. The absmax leaves with that beat (``scale_latency``).
    dsp_tiles : int
        Registered multiplier tiles of ``c * x``: ``lanes`` products of 25 x
        ``precision`` bits.

    Members
    -------
    i : :py:`In(stream.Signature(StructLayout({"data": ..., "last": 1})))`
        ``data`` is :py:`ArrayLayout(unsigned(in width), lanes)`, the float patterns;
        ``last`` closes a (short) block.
    o : :py:`Out(stream.Signature(StructLayout({"data": ..., "first": 1, "last": 1})))`
        ``data`` is :py:`ArrayLayout(unsigned(4), lanes)`, the codes (0 is -1.0, 7 is 0,
        15 is 1.0: :data:`qdp.golden.nf4.CODE_VALUES`); ``first`` and ``last`` mark each
        block.
    scale : :py:`Out(stream.Signature(unsigned(32)))`
        One FP32 absmax pattern per block, in block order.
    """

    RANGES = {"lanes": (1, 32), "block_size": NF4_BLOCK_SIZES}
    scale_meaning = "that block's FP32 absmax"

    def __init__(self, block_size=64, *, lanes=1, in_format="fp32", read_register=False):
        try:
            check_int("lanes", lanes, *self.RANGES["lanes"])
            check_nf4_block(block_size)
            check_block_size(block_size, lanes, self.RANGES["block_size"][1])
            fmt = float_format(check_choice("in_format", in_format, NF4_IN_FORMATS))
            check_bool("read_register", read_register)
        except (TypeError, ValueError):
            self._MustUse__used = True      # failed its checks: not "unused"
            raise
        self._build(block_size, lanes, fmt, read_register)

    @classmethod
    def unchecked(cls, block_size, *, lanes, in_format, read_register=False, fold=1):
        """The same logic for any float format and block size that the storage takes,
        outside bitsandbytes' sizes, with a register after every ``fold`` stages only
        (:meth:`~qdp.hdl.absmax_float.Float32Quantize.registered`): the formal proofs'
        blocks of two small patterns in a pipeline short enough to prove."""
        unit = cls.__new__(cls)
        unit._build(block_size, lanes, float_format(in_format), read_register, fold)
        return unit

    def _build(self, block_size, lanes, fmt, read_register, fold=1):
        self.in_format, self.read_register = fmt.name, read_register
        self._stages = Nf4Stages(fmt, fold=fold)
        # issue -> read data [-> register] -> the stages -> FIFO write
        super().__init__(block_size=block_size, lanes=lanes, element=unsigned(fmt.width),
                         fmt=fmt, result=unsigned(4), scale=unsigned(FP32.width),
                         read_register=read_register,
                         pipe_latency=1 + read_register + self._stages.latency,
                         scale_at_drain=False)

    @property
    def dsp_tiles(self):
        return self.lanes * self._stages.tiles_per_lane

    def magnitude(self, x):
        """``fmaxf``'s order: a NaN keys as 0, below every number, which key as their
        magnitude with the top bit set."""
        top = self._fmt.width - 1
        nan = (x[self._fmt.man_bits:top] == (1 << self._fmt.exp_bits) - 1) \
            & (x[:self._fmt.man_bits] != 0)
        return Mux(nan, 0, Cat(x[:top], Const(1, 1)))

    def datapath(self, m, valid, absmax, first, last, row, out_fifo, scale_fifo):
        self.staged_datapath(m, self._stages, valid, absmax, first, last, row, out_fifo,
                             scale_fifo)
