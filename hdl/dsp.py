"""A registered multiplier tile: the ECP5 MULT18X18D with its own registers, or a
behavioural model of it on every other target."""

from amaranth.hdl import (
    ClockSignal,
    Const,
    Instance,
    Module,
    Shape,
    Signal,
    signed,
    unsigned,
)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_choice

__all__ = ["FAMILIES", "DSPMultiplier", "Target", "is_ecp5", "SIMULATION_MODEL_FILES"]

#: ``{primitive: file name}`` of the simulation model of each primitive the ECP5 export
#: instantiates; :mod:`qdp.sim.ecp5` writes them, the manifest names them.
SIMULATION_MODEL_FILES = {"MULT18X18D": "MULT18X18D_sim.v"}

FAMILIES = ("ecp5", "ice40")
_MAX_WIDTH = 18


class Target:
    """The smallest platform that the components read: a device family.

    ``elaborate(platform)`` of a qdp component only ever reads ``platform.family``, the
    attribute that Amaranth's Lattice platforms (``amaranth.vendor.LatticePlatform``)
    expose. Export with ``amaranth.back.verilog.convert(component, platform=Target("ecp5"))``
    (what ``qdp generate --target ecp5`` and ``qdp synth --target ecp5`` do) to get the
    vendor primitives; a real Amaranth ECP5 platform works the same way.

    Parameters
    ----------
    family : str
        ``"ecp5"`` or ``"ice40"``.

    Members
    -------
    family : str
        The family, as given.
    """

    def __init__(self, family):
        self.family = check_choice("family", family, FAMILIES)

    def __repr__(self):
        return f"Target({self.family!r})"


def is_ecp5(platform):
    """Whether ``platform`` (``None``, a :class:`Target` or an Amaranth platform) is an
    ECP5: the one test that picks vendor primitives over the behavioural models."""
    return getattr(platform, "family", None) == "ecp5"


def _operand_shape(name, shape):
    try:
        shape = Shape.cast(shape)
    except TypeError:
        raise TypeError(f"{name}: expected a shape (e.g. signed(8)), got {shape!r}") from None
    if not 1 <= shape.width <= _MAX_WIDTH:
        raise ValueError(f"{name}: width {shape.width} is out of range "
                         f"(allowed 1..{_MAX_WIDTH}: one 18x18 DSP)")
    return shape


class DSPMultiplier(wiring.Component):
    """``p = a * b`` through three register stages, each held by ``en``.

    Stages: the operand registers (``a`` and ``b``), the pipeline register (the product),
    the output register. All are clocked by ``sync`` and none is reset: the enclosing
    block tracks which products are valid. With ``en`` low every register holds, which is
    how a stalled pipeline waits.

    Target. ``elaborate(platform)`` checks :func:`is_ecp5` (``platform.family ==
    "ecp5"``). On ECP5 it instantiates one ``MULT18X18D`` with ``REG_INPUTA_CLK``,
    ``REG_INPUTB_CLK``, ``REG_PIPELINE_CLK`` and ``REG_OUTPUT_CLK`` set to ``CLK0`` and
    every clock enable on ``CE0`` = ``en`` (reset ``RST0`` tied low, ``GSR`` disabled),
    operands extended to 18 bits and ``SIGNEDA``/``SIGNEDB`` from their shapes. Yosys's
    ``synth_ecp5`` maps ``*`` to a MULT18X18D with all registers off, so a register chain
    around a ``*`` stays in the fabric and its path runs through the bare multiplier;
    the DSP's own registers split that path (the README gives the measured figures). On
    every other platform (and in simulation with
    ``platform=None``) the three stages are ordinary registers around ``*``.

    Checked equal (``tests/test_dsp.py``): the ECP5 export simulated in Icarus Verilog
    against the behavioural export, cycle by cycle, with random operands of every
    signedness and width corner and random ``en`` gaps. Yosys ships no simulation model of
    MULT18X18D (its ``ecp5/cells_sim.v`` lacks it), so qdp ships a model of the
    primitive (``qdp.sim.ecp5``): the subset used here, i.e. 18x18
    multiply with SIGNEDA/SIGNEDB, the four REG_* stages on CLK0/CE0/RST0, written from
    Lattice's documentation (TN1267), independently of this module. This checks the port
    and parameter names, the extension and the latency; it cannot check the silicon.

    Parameters
    ----------
    a_shape, b_shape : shape
        Operand shapes, signed or unsigned, 1..18 bits.

    Members
    -------
    a : ``In(a_shape)``
        First operand, taken when ``en`` is high.
    b : ``In(b_shape)``
        Second operand, taken when ``en`` is high.
    en : ``In(1)``
        Clock enable of all three stages.
    p : ``Out(signed or unsigned(a_width + b_width))``
        The product of the operands taken ``latency`` enabled cycles earlier (signed if
        either operand is); exact.

    Latency: 3 cycles (with ``en`` high).
    """

    latency = 3

    def __init__(self, a_shape, b_shape):
        self.a_shape = _operand_shape("a_shape", a_shape)
        self.b_shape = _operand_shape("b_shape", b_shape)
        width = self.a_shape.width + self.b_shape.width
        self.p_shape = (signed(width) if self.a_shape.signed or self.b_shape.signed
                        else unsigned(width))
        super().__init__({
            "a": In(self.a_shape),
            "b": In(self.b_shape),
            "en": In(1),
            "p": Out(self.p_shape),
        })

    def elaborate(self, platform):
        m = Module()
        if is_ecp5(platform):
            a18 = Signal(_MAX_WIDTH)
            b18 = Signal(_MAX_WIDTH)
            p36 = Signal(2 * _MAX_WIDTH)
            # Amaranth extends by the operand's own signedness.
            m.d.comb += [a18.eq(self.a), b18.eq(self.b), self.p.eq(p36)]
            ports = {}
            for bus, value in (("A", a18), ("B", b18)):
                ports.update({f"i_{bus}{n}": value[n] for n in range(_MAX_WIDTH)})
            ports.update({f"i_C{n}": Const(0, 1) for n in range(_MAX_WIDTH)})
            ports.update({f"o_P{n}": p36[n] for n in range(2 * _MAX_WIDTH)})
            params = {"GSR": "DISABLED", "RESETMODE": "SYNC", "CLK0_DIV": "ENABLED"}
            for reg in ("INPUTA", "INPUTB", "PIPELINE", "OUTPUT"):
                params.update({f"REG_{reg}_CLK": "CLK0", f"REG_{reg}_CE": "CE0",
                               f"REG_{reg}_RST": "RST0"})
            m.submodules.mult = Instance(
                "MULT18X18D",
                **{f"p_{k}": v for k, v in params.items()},
                i_CLK0=ClockSignal("sync"), i_CE0=self.en, i_RST0=Const(0, 1),
                i_SIGNEDA=Const(int(self.a_shape.signed), 1),
                i_SIGNEDB=Const(int(self.b_shape.signed), 1),
                i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
                **ports)
        else:
            a_q = Signal(self.a_shape, reset_less=True)
            b_q = Signal(self.b_shape, reset_less=True)
            pipe = Signal(self.p_shape, reset_less=True)
            out = Signal(self.p_shape, reset_less=True)
            with m.If(self.en):
                m.d.sync += [a_q.eq(self.a), b_q.eq(self.b), pipe.eq(a_q * b_q),
                             out.eq(pipe)]
            m.d.comb += self.p.eq(out)
        return m
