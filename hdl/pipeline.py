"""Registers of a pipeline that stalls as one: every stage moves on one ``advance``."""

from amaranth.hdl import Signal

__all__ = ["Pipeline", "BEAT_LATENCY", "STALL_TOGETHER_READY", "on_block", "on_lanes"]

#: What ``latency`` counts for a one-beat-out-per-beat-in pipeline (the manifest's
#: ``latency``), as the benches and ``tests/test_manifest.py`` measure it.
BEAT_LATENCY = {
    "from_stream": "i",
    "from": "the cycle in which a beat is accepted on i (i.valid & i.ready)",
    "to_stream": "o",
    "to": "the cycle in which that beat's result is valid on o (one result beat per "
          "input beat, in order)",
    "when": "o.ready held high",
}
#: ``i.ready`` is ``~o.valid | o.ready``: a pipeline without a skid buffer.
STALL_TOGETHER_READY = {"i": ("o",)}


def on_block(stage):
    """A stage function of one dict as a stage of a blockwise list of dicts (the block's
    values first, one dict per lane after them): applied to the block's dict."""
    return lambda values: [stage(values[0])] + values[1:]


def on_lanes(stage):
    """The same, applied to every lane's dict; the block's passes through."""
    return lambda values: values[:1] + [stage(v) for v in values[1:]]


class Pipeline:
    """Pipeline registers of a datapath that stalls as one: ``valid`` and, per lane, a
    dict of named values, all moving on ``advance``. Stage n's registers are ``valid_<n>`` and ``stage<n>_<k>``,
    k counting the values of all lanes in order (a constant takes a number but no
    register)."""

    def __init__(self, m, advance, valid):
        self.m, self.advance, self.valid = m, advance, valid
        self.depth = 0

    def register(self, present, lanes, inits=None):
        """``lanes`` behind a register stage if ``present``, with reset values by name
        from ``inits`` (one dict per lane; others reset to 0); ``valid`` moves along."""
        if not present:
            return lanes
        m, n = self.m, self.depth
        registered, k = [], 0
        for lane, values in enumerate(lanes):
            registered.append({})
            for name, value in values.items():
                if isinstance(value, int):
                    registered[lane][name] = value
                else:
                    init = inits[lane].get(name, 0) if inits else 0
                    reg = Signal(value.shape(), name=f"stage{n}_{k}", init=init)
                    with m.If(self.advance):
                        m.d.sync += reg.eq(value)
                    registered[lane][name] = reg
                k += 1
        valid = Signal(name=f"valid_{n}")
        with m.If(self.advance):
            m.d.sync += valid.eq(self.valid)
        self.valid, self.depth = valid, n + 1
        return registered

    def wire(self, lanes):
        """``lanes`` through named wires, no register: a stage's values stay one net
        each however often later stages read them (an expression read twice by each of
        many unregistered stages would otherwise be copied at every read)."""
        m, n = self.m, self.depth
        wired = []
        for lane, values in enumerate(lanes):
            wired.append({})
            for name, value in values.items():
                if isinstance(value, int):
                    wired[lane][name] = value
                    continue
                net = Signal(value.shape(), name=f"wire{n}_{lane}_{name}")
                m.d.comb += net.eq(value)
                wired[lane][name] = net
        return wired

    def run(self, stages, lanes, *, riders=None, special=None):
        """``lanes`` through ``stages``, a register after each: every stage maps each
        lane's dict to the next. ``riders``, a dict that no stage reads (block marks,
        say), rides along as one more lane; ``special`` maps a marker among ``stages`` to
        a function of all the lanes, riders last, that registers them itself. Returns
        ``(lanes, riders)``."""
        n = len(lanes)
        lanes = lanes + ([riders] if riders else [])
        for stage in stages:
            if special and stage in special:
                lanes = special[stage](lanes)
                continue
            lanes = self.register(True, [stage(v) for v in lanes[:n]] + lanes[n:])
        return lanes[:n], (lanes[n] if riders else {})
