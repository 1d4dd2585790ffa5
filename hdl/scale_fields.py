"""The input payload of a block with a scale and a zero point per tensor or per lane,
constant or arriving with every beat (QuantizeLinear, DequantizeLinear)."""

from amaranth.lib import data

__all__ = ["scaled_layout", "lane_inputs"]


def scaled_layout(element, scale, zero_point, *, lanes, runtime, per_lane):
    """``data.ArrayLayout(element, lanes)``; with ``runtime`` a ``data.StructLayout`` of
    ``data``, ``scale`` and ``zero_point`` (one each, or arrays of ``lanes`` when
    ``per_lane``)."""
    in_data = data.ArrayLayout(element, lanes)
    if not runtime:
        return in_data

    def per(shape):
        return data.ArrayLayout(shape, lanes) if per_lane else shape
    return data.StructLayout({"data": in_data, "scale": per(scale),
                              "zero_point": per(zero_point)})


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
