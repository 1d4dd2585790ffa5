"""The streams of a block with a scale and a zero point per tensor or per lane, constant
or arriving with every beat, or one per block on a stream of their own
(QuantizeLinear, DequantizeLinear); also the join of a block's scale with its beats, and
the whole datapath of a block built on it (the blockwise and MX dequantizers)."""

import types

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ._checks import check_bool
from .pipeline import Pipeline

__all__ = ["scaled_layout", "lane_inputs", "join_block_scale", "check_block_scale",
           "ScaledStreams", "block_scaled_module"]


def scaled_layout(element, scale, zero_point, *, lanes, runtime, per_lane):
    """``data.ArrayLayout(element, lanes)``; with ``runtime`` a ``data.StructLayout`` of
    ``data``, ``scale`` and ``zero_point`` (one each, or arrays of ``lanes`` when
    ``per_lane``)."""
    in_data = data.ArrayLayout(element, lanes)
    if not runtime:
        return in_data
    return data.StructLayout({"data": in_data, **_scale_fields(scale, zero_point,
                                                               lanes, per_lane)})


def _scale_fields(scale, zero_point, lanes, per_lane):
    def per(shape):
        return data.ArrayLayout(shape, lanes) if per_lane else shape
    return {"scale": per(scale), "zero_point": per(zero_point)}


def check_block_scale(block_scale, runtime_scale):
    """``block_scale``, checked: a bool, and only with a run-time scale."""
    block_scale = check_bool("block_scale", block_scale)
    if block_scale and not runtime_scale:
        raise ValueError("block_scale: a scale per block arrives at run time, on its own "
                         "stream; it needs runtime_scale=True")
    return block_scale


def _marked(layout):
    """A beat of ``layout`` with the block marks ``first`` and ``last``."""
    return data.StructLayout({"data": layout, "first": 1, "last": 1})


def lane_inputs(payload, *, lanes, runtime, per_lane, scale, zero_point):
    """Per lane ``(element, scale, zero point)``: payload fields, or the constants
    ``scale`` and ``zero_point`` (one, or one per lane; a ``None`` zero point is 0)."""
    elements = payload.data if runtime else payload
    result = []
    for lane in range(lanes):
        if runtime:
            s, z = ((payload.scale[lane], payload.zero_point[lane]) if per_lane
                    else (payload.scale, payload.zero_point))
        else:
            s, z = ((scale[lane], None if zero_point is None else zero_point[lane])
                    if per_lane else (scale, zero_point))
        result.append((elements[lane], s, 0 if z is None else z))
    return result


def join_block_scale(m, i, scale, advance):
    """Join a stream of blocks with the stream of their scales: ``(valid, value)``.

    A beat of ``i`` with ``first`` set starts a block and moves only together with the
    next beat of ``scale``; the block's other beats use that scale, held. ``value`` is
    the scale of the beat offered (a ``data.View`` of ``scale``'s layout, or its
    ``Value``), ``valid`` whether that beat moves when ``advance`` is high. Both
    ``ready`` follow ``advance`` (no skid buffer)."""
    first = i.p.first
    take = ~first | scale.valid
    m.d.comb += [i.ready.eq(advance & take), scale.ready.eq(advance & i.valid & first)]
    held = Signal(Value.cast(scale.p).shape())
    with m.If(scale.valid & scale.ready):
        m.d.sync += held.eq(scale.p)
    value = Mux(first, Value.cast(scale.p), held)
    layout = scale.p.shape()
    if isinstance(layout, data.Layout):
        value = data.View(layout, value)
    return i.valid & take, value


def block_scaled_module(component, stages, output, *, scale_bits=None, special=None,
                        scale=None):
    """The module of a block with blocks on ``i`` and one scale per block on ``scale``
    (:func:`join_block_scale`), each lane run through ``stages`` in a
    :class:`~qdp.hdl.pipeline.Pipeline` that stalls as one, into ``o`` one beat per
    beat, ``first``/``last`` riding along.

    A lane starts as ``{"q": its element, "s": the scale}`` (``scale_bits``: a slice of
    it); ``output(v)`` gives its result from the last stage's dict; ``special(m, pipe)``
    gives the pipeline's ``special`` markers (a multiplier that registers itself);
    ``scale`` is the scale stream to join, if not ``component.scale`` (a submodule's
    output, which the caller adds to the module returned)."""
    m = Module()
    advance = Signal()
    m.d.comb += advance.eq(~component.o.valid | component.o.ready)
    valid, scale = join_block_scale(m, component.i,
                                    component.scale if scale is None else scale, advance)
    if scale_bits is not None:
        scale = Value.cast(scale)[scale_bits]
    pipe = Pipeline(m, advance, valid)
    lanes = [{"q": component.i.p.data[lane], "s": scale} for lane in range(component.lanes)]
    lanes, marks = pipe.run(stages, lanes, special=special(m, pipe) if special else None,
                            riders={"first": component.i.p.first,
                                    "last": component.i.p.last})
    with m.If(advance):
        m.d.sync += [component.o.valid.eq(pipe.valid),
                     component.o.p.first.eq(marks["first"]),
                     component.o.p.last.eq(marks["last"])]
        m.d.sync += [component.o.p.data[lane].eq(output(v)) for lane, v in enumerate(lanes)]
    return m


class ScaledStreams:
    """The ports of an element-wise block whose scale and zero point are constant, arrive
    with every beat (``runtime``), or arrive one per block on a ``scales`` stream of their
    own (``block``: ``i`` and ``o`` then carry ``first`` and ``last``), and their
    plumbing in ``elaborate``.

    Members
    -------
    members : dict
        The component's signature members: ``i``, ``scales`` (with ``block``), ``o``.
    ready_dependencies : dict
        Every input's ``ready`` follows ``o.ready`` (no skid buffer).
    """

    def __init__(self, element, result, scale, zero_point, *, lanes, runtime, per_lane,
                 block):
        self.lanes, self.runtime, self.per_lane, self.block = lanes, runtime, per_lane, block
        i_layout = scaled_layout(element, scale, zero_point, lanes=lanes,
                                 runtime=runtime and not block, per_lane=per_lane)
        o_layout = data.ArrayLayout(result, lanes)
        self.members = {"i": In(stream.Signature(_marked(i_layout) if block else i_layout))}
        if block:
            self.members["scales"] = In(stream.Signature(data.StructLayout(
                _scale_fields(scale, zero_point, lanes, per_lane))))
        self.members["o"] = Out(stream.Signature(_marked(o_layout) if block else o_layout))
        self.ready_dependencies = {name: ("o",) for name in self.members if name != "o"}

    def inputs(self, m, component, advance, *, scale, zero_point):
        """``(valid, lanes, flags)``: whether the offered beat moves on ``advance``, per
        lane ``(element, scale, zero point)`` (:func:`lane_inputs`; ``scale`` and
        ``zero_point`` the constants), and the block marks to carry along (none without
        ``block``). Drives the inputs' ``ready``."""
        i = component.i
        if not self.block:
            m.d.comb += i.ready.eq(advance)
            return i.valid, lane_inputs(i.p, lanes=self.lanes, runtime=self.runtime,
                                        per_lane=self.per_lane, scale=scale,
                                        zero_point=zero_point), {}
        valid, joined = join_block_scale(m, i, component.scales, advance)
        payload = types.SimpleNamespace(data=i.p.data, scale=joined.scale,
                                        zero_point=joined.zero_point)
        return valid, lane_inputs(payload, lanes=self.lanes, runtime=True,
                                  per_lane=self.per_lane, scale=None, zero_point=None), \
            {"first": i.p.first, "last": i.p.last}

    def output(self, m, component, results, flags):
        """The statements that put the lanes' ``results`` and the block marks on ``o``
        (inside the caller's ``advance``)."""
        o = component.o
        lanes = o.p.data if self.block else o.p
        m.d.sync += [lanes[lane].eq(r) for lane, r in enumerate(results)]
        m.d.sync += [getattr(o.p, name).eq(value) for name, value in flags.items()]
