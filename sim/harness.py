"""The bench top: the module under test inside a Verilog harness that can drive its
streams itself, so that a bench moves millions of beats without Python touching a cycle.

:func:`harness` writes, from a module's manifest, a top module with exactly the DUT's
ports (``clk``, ``rst``, ``<stream>__valid/ready/payload``) plus ``bulk_*`` control
ports. With ``bulk_mode`` low the DUT's ports pass straight through, so the per-cycle
cocotb driver (:mod:`qdp.sim.stream`) runs on the same build. With ``bulk_mode`` high the
harness drives every stream:

- per input stream, a player offers the beats of a stimulus memory (``$readmemh`` of
  ``bulk_<stream>.hex`` at a ``load`` command, for the inputs whose ``bulk_reload_<stream>``
  is high) in order, with valid gaps drawn from its own LFSR; once
  ``valid`` is high it stays high until the beat moves, as the stream rules require;
- per output stream, a capture applies backpressure from its own LFSR and writes every
  beat that moves, with the cycle it moved in, to a capture memory
  (``$writememh`` to ``bulk_<stream>.out.hex``), and checks the DUT's side of the stream
  rules: a stalled beat (``valid & ~ready``) must stay valid with the same payload; it
  counts violations and keeps the cycle and kind of the first;
- per input stream, the cycle of every accepted beat is captured too when
  ``bulk_stamp_inputs`` is high.

The controller (:mod:`qdp.sim.bulk`) loads memories, sets goals and waits for
``bulk_attention``, which rises when every stream named in ``bulk_goal_en`` has moved its
``bulk_goal_<stream>`` beats since the last start, when the phase's cycle count reaches
``bulk_deadline``, when an input memory with more to come is used up, or when a capture
memory is full (its stream is then held back, which the stream rules allow). ``rst``
reaches the DUT in both modes; while it is high no beat moves and the stall check
restarts.

Pause probabilities are 16-bit thresholds: a stream pauses in a cycle when the top 16
bits of its LFSR (xorshift32, stepped every cycle) are below the threshold.
"""

from .module import Module

__all__ = ["harness", "bench_top", "COMMANDS", "DEPTH", "lfsr_seeds"]

#: Beats per stimulus and capture memory.
DEPTH = 1 << 14

# bulk_cmd bits, acted on at the next rising edge of bulk_clk; any command, even a bare ``ack``,
# holds bulk_attention low in the cycle after it.
COMMANDS = {"seed": 1, "load": 2, "dump": 4, "start": 8, "ack": 16}


def bench_top(manifest):
    """The harness's module name for the module of ``manifest``."""
    return manifest["module"] + "_bench"


def lfsr_seeds(seed, count):
    """Nonzero 32-bit LFSR seeds, one per stream, from the bench seed."""
    seeds = []
    for k in range(count):
        x = (seed * 0x9E3779B1 + (k + 1) * 0x85EBCA77) & 0xFFFFFFFF
        x ^= x >> 15
        seeds.append(x or 0x1234567)
    return seeds


def _ports(module):
    lines = ["input wire clk", "input wire rst"]
    for n in module.streams:
        w = f"[{module.widths[n] - 1}:0] "
        if n in module.inputs:
            lines += [f"input wire {n}__valid", f"output wire {n}__ready",
                      f"input wire {w}{n}__payload",
                      f"input wire [31:0] bulk_count_{n}",
                      f"input wire bulk_more_{n}",
                      f"input wire bulk_reload_{n}"]
        else:
            lines += [f"output wire {n}__valid", f"input wire {n}__ready",
                      f"output wire {w}{n}__payload",
                      f"output reg [31:0] bulk_violations_{n}",
                      f"output reg [31:0] bulk_first_violation_{n}",
                      f"output reg bulk_violation_kind_{n}"]
        lines += [f"input wire [15:0] bulk_pause_{n}",
                  f"input wire [31:0] bulk_goal_{n}",
                  f"input wire [31:0] bulk_seed_{n}",
                  f"output reg [31:0] bulk_moved_{n}",
                  f"output reg [31:0] bulk_captured_{n}"]
    count = len(module.streams)
    lines += ["input wire bulk_mode", "input wire [4:0] bulk_cmd", "input wire bulk_stamp_inputs",
              f"input wire [{count - 1}:0] bulk_goal_en", "input wire [31:0] bulk_deadline",
              "output reg [31:0] bulk_cycle", "output reg bulk_attention",
              "output reg bulk_clk",
              f"output wire [{count - 1}:0] bulk_status"]
    return lines


def _lfsr(n):
    return f"""
    reg [31:0] lfsr_{n};
    wire [31:0] lfsr_{n}_a = lfsr_{n} ^ (lfsr_{n} << 13);
    wire [31:0] lfsr_{n}_b = lfsr_{n}_a ^ (lfsr_{n}_a >> 17);
    wire pause_{n} = lfsr_{n}[31:16] < bulk_pause_{n};
    always @(posedge clock)
        if (cmd_seed) lfsr_{n} <= bulk_seed_{n};
        else lfsr_{n} <= lfsr_{n}_b ^ (lfsr_{n}_b << 5);
"""


def _player(n, w, depth):
    return f"""
    // input {n}: play mem_{n}[0 .. bulk_count_{n}-1], capture the cycle of each beat taken
    reg [{w - 1}:0] mem_{n} [0:{depth - 1}];
    reg [31:0] stamp_{n} [0:{depth - 1}];
    reg [31:0] ptr_{n};
    reg drive_{n};
    wire fire_{n} = live & drive_{n} & dut_{n}__ready;
    wire [31:0] next_{n} = ptr_{n} + fire_{n};
    wire need_{n} = bulk_more_{n} & ~drive_{n} & (ptr_{n} >= bulk_count_{n});
    wire full_{n} = bulk_captured_{n} >= {depth};
    wire [{_bits(depth)}:0] slot_{n} = cmd_dump ? 0 : bulk_captured_{n}[{_bits(depth)}:0];
    assign dut_{n}__valid = bulk_mode ? live & drive_{n} : {n}__valid;
    assign dut_{n}__payload = bulk_mode ? mem_{n}[ptr_{n}[{_bits(depth)}:0]] : {n}__payload;
    assign {n}__ready = dut_{n}__ready;
    always @(posedge clock) begin
        if (cmd_load & bulk_reload_{n}) begin
            if (bulk_count_{n} != 0) $readmemh("bulk_{n}.hex", mem_{n}, 0, bulk_count_{n} - 1);
            ptr_{n} <= 0;
            drive_{n} <= 0;
        end else if (!live) begin
            drive_{n} <= 0;
            if (rst) ptr_{n} <= bulk_count_{n};     // a reset drops the unsent beats
        end else begin
            ptr_{n} <= next_{n};
            drive_{n} <= (drive_{n} & ~fire_{n}) |
                         ((~drive_{n} | fire_{n}) & (next_{n} < bulk_count_{n}) & ~pause_{n});
        end
        if (cmd_dump & (bulk_captured_{n} != 0))
            $writememh("bulk_{n}.out.hex", stamp_{n}, 0, bulk_captured_{n} - 1);
        // At most bulk_count beats move between two loads, and every load comes with a
        // dump: the stamp memory cannot overflow.
        if (fire_{n} & bulk_stamp_inputs) stamp_{n}[slot_{n}] <= bulk_cycle;
        bulk_captured_{n} <= (cmd_dump ? 0 : bulk_captured_{n}) + (fire_{n} & bulk_stamp_inputs);
        if (cmd_start) bulk_moved_{n} <= 0;
        else if (fire_{n}) bulk_moved_{n} <= bulk_moved_{n} + 1;
    end
"""


def _capture(n, w, depth):
    return f"""
    // output {n}: take beats with backpressure, capture {{cycle, payload}}, check stalls
    reg [{w + 31}:0] mem_{n} [0:{depth - 1}];
    wire full_{n} = bulk_captured_{n} >= {depth};
    wire need_{n} = 1'b0;
    // No output beat moves at a dump or start edge: each beat belongs to one capture
    // and one phase.
    wire ready_{n} = live & ~pause_{n} & ~full_{n} & ~cmd_dump & ~cmd_start;
    wire fire_{n} = dut_{n}__valid & ready_{n};
    reg stalled_{n};
    reg [{w - 1}:0] held_{n};
    assign dut_{n}__ready = bulk_mode ? ready_{n} : {n}__ready;
    assign {n}__valid = dut_{n}__valid;
    assign {n}__payload = dut_{n}__payload;
    always @(posedge clock) begin
        if (cmd_dump & (bulk_captured_{n} != 0))
            $writememh("bulk_{n}.out.hex", mem_{n}, 0, bulk_captured_{n} - 1);
        if (fire_{n}) mem_{n}[bulk_captured_{n}[{_bits(depth)}:0]] <= {{bulk_cycle, dut_{n}__payload}};
        bulk_captured_{n} <= cmd_dump ? 0 : bulk_captured_{n} + fire_{n};
        if (cmd_start) bulk_moved_{n} <= 0;
        else if (fire_{n}) bulk_moved_{n} <= bulk_moved_{n} + 1;
        if (cmd_seed) begin
            bulk_violations_{n} <= 0;
            bulk_first_violation_{n} <= 0;
            bulk_violation_kind_{n} <= 0;
        end else if (live & stalled_{n} & (~dut_{n}__valid | (dut_{n}__payload != held_{n}))) begin
            if (bulk_violations_{n} == 0) begin
                bulk_first_violation_{n} <= bulk_cycle;
                bulk_violation_kind_{n} <= dut_{n}__valid;   // 0: valid fell, 1: payload changed
            end
            bulk_violations_{n} <= bulk_violations_{n} + 1;
        end
        stalled_{n} <= live & dut_{n}__valid & ~ready_{n};
        held_{n} <= dut_{n}__payload;
    end
"""


def _bits(depth):
    return max(1, (depth - 1).bit_length()) - 1


def harness(manifest, depth=DEPTH):
    """The harness Verilog for the module of ``manifest``, memories ``depth`` beats deep;
    its module is :func:`bench_top`."""
    if depth < 2 or depth & (depth - 1):
        raise ValueError(f"depth: {depth} is not a power of two >= 2")
    module = Module(manifest)
    names, widths = module.streams, module.widths
    # Only the ports are public: the DUT's internals stay free for Verilator to optimize.
    ports = ",\n    ".join(f"{p} /*verilator public_flat_rw*/" for p in _ports(module))
    wires = "".join(f"    wire dut_{n}__valid, dut_{n}__ready;\n"
                    f"    wire [{widths[n] - 1}:0] dut_{n}__payload;\n" for n in names)
    connect = ",\n        ".join(
        [".clk(clock)", ".rst(rst)"] + [f".{n}__{r}(dut_{n}__{r})"
                                      for n in names for r in ("valid", "ready", "payload")])
    goals = " & ".join(f"(~bulk_goal_en[{k}] | (bulk_moved_{n} >= bulk_goal_{n}))"
                       for k, n in enumerate(names))
    body = "".join(_lfsr(n) + (_player if n in module.inputs else _capture)(n, widths[n], depth)
                   for n in names)
    status = ", ".join(f"need_{n} | full_{n}" for n in reversed(names))
    return f"""// qdp bench harness around {manifest["module"]}: see qdp.sim.harness
module {bench_top(manifest)} (
    {ports}
);
    // In bulk mode the harness makes its own 100 MHz clock: a clock driven through VPI
    // costs a callback into the simulator's interface at every edge.
    initial bulk_clk = 0;
    always begin
        wait (bulk_mode);
        #5 bulk_clk = ~bulk_clk;
    end
    wire clock = bulk_mode ? bulk_clk : clk;
    wire live = bulk_mode & ~rst;
    wire cmd_seed = bulk_mode & bulk_cmd[0];
    wire cmd_load = bulk_mode & bulk_cmd[1];
    wire cmd_dump = bulk_mode & bulk_cmd[2];
    wire cmd_start = bulk_mode & bulk_cmd[3];
{wires}
    {manifest["module"]} dut (
        {connect}
    );
{body}
    wire goals_met = (bulk_goal_en != 0) & {goals};
    assign bulk_status = {{{status}}};
    // Registered, and low in the cycle after any command, so that a controller that has
    // just issued one can wait for its rising edge.
    always @(posedge clock) begin
        bulk_attention <= live & ~(|bulk_cmd) &
            (goals_met | (bulk_cycle >= bulk_deadline) | (|bulk_status));
        if (cmd_start) bulk_cycle <= 0;
        else if (bulk_mode) bulk_cycle <= bulk_cycle + 1;
    end
endmodule
"""
