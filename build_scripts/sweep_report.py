"""A sweep's report: its rows as a Markdown table, and the Pareto plot of Fmax against
LUTs and against DSPs, the front marked.

A row is on a front when no other row on the same target reaches at least its Fmax with
at most its LUTs (or DSPs), better in one of the two. Only ``ok`` rows take part; the
table lists every row, with the fronts it is on.

    qdp sweep --report s.sqlite              # the table on stdout, s-pareto.png
"""

from pathlib import Path

from .sweep_db import SweepDB

__all__ = ["COSTS", "default_plot_path", "pareto_front", "report_markdown", "plot_pareto",
           "write_report"]

#: Cost column -> its name on the table and the plot.
COSTS = {"luts": "LUT", "dsps": "DSP"}


def default_plot_path(db_path):
    """``s.sqlite`` -> ``s-pareto.png``, beside it."""
    db_path = Path(db_path)
    return db_path.with_name(f"{db_path.stem}-pareto.png")


def _measured(rows):
    return [r for r in rows if r["status"] == "ok" and r["fmax_mhz"] is not None]


def pareto_front(rows, cost):
    """The ``id()`` of every row on the Fmax-against-``cost`` front of its target."""
    front = set()
    rows = _measured(rows)
    for r in rows:
        dominated = any(q["target"] == r["target"] and q[cost] <= r[cost]
                        and q["fmax_mhz"] >= r["fmax_mhz"]
                        and (q[cost] < r[cost] or q["fmax_mhz"] > r["fmax_mhz"])
                        for q in rows)
        if not dominated:
            front.add(id(r))
    return front


def _common(rows):
    """Per block, the parameters every one of its rows gives with the same value."""
    common = {}
    for row in rows:
        params = row["params"]
        if row["block"] not in common:
            common[row["block"]] = dict(params)
        else:
            shared = common[row["block"]]
            for name in list(shared):
                if name not in params or params[name] != shared[name]:
                    del shared[name]
    return common


def _shown(value):
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _varying(row, common):
    shared = common[row["block"]]
    return {k: v for k, v in row["params"].items() if k not in shared}


def _sort_key(row, common):
    # Numbers in numeric order, everything else by its text, so latency 10 follows 6.
    values = tuple((0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool)
                   else (1, 0, _shown(v)) for v in _varying(row, common).values())
    return row["block"], row["target"], values, row["seed"]


def report_markdown(rows, *, title=None):
    """``rows`` (:meth:`SweepDB.rows`) as Markdown: a count line, each block's shared
    parameters, and one table row per stored row with the fronts it is on."""
    common = _common(rows)
    fronts = {cost: pareto_front(rows, cost) for cost in COSTS}
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "does-not-fit", "failed")}
    lines = [f"{title or 'Sweep'}: {len(rows)} rows ("
             + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")", ""]
    for block, shared in common.items():
        lines.append(f"- {block}, every row: "
                     + (", ".join(f"{k}={_shown(v)}" for k, v in shared.items())
                        or "no shared parameters"))
    lines += ["", "| block | parameters | target | seed | status | LUTs | FFs | DSPs | BRAMs "
                  "| Fmax (MHz) | Pareto front | verified | reason |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda row: _sort_key(row, common)):
        params = ", ".join(f"{k}={_shown(v)}" for k, v in _varying(r, common).items())
        on = ", ".join(name for cost, name in COSTS.items() if id(r) in fronts[cost])
        figures = ["-"] * 5
        if r["status"] == "ok":
            fmax = "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}" + \
                ("" if r["timing_met"] else " (missed)")
            figures = [r["luts"], r["ffs"], r["dsps"], r["brams"], fmax]
        cells = [r["block"], params or "-", r["target"], r["seed"], r["status"], *figures,
                 on or "-", r["verified"] or "-", (r["reason"] or "-").replace("|", "/")]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


def plot_pareto(rows, path):
    """Write the PNG: Fmax against LUTs (left) and DSPs (right), a colour per target,
    the front's points ringed and joined, each labelled with its swept parameters."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("the Pareto plot needs matplotlib, which is not installed "
                           "(pip install 'qdp[synth]')") from None
    matplotlib.use("Agg")                   # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    common = _common(rows)
    measured = _measured(rows)
    targets = sorted({r["target"] for r in measured})
    fig, axes = plt.subplots(1, len(COSTS), figsize=(12, 4.8), dpi=100)
    for ax, (cost, name) in zip(axes, COSTS.items()):
        front = pareto_front(rows, cost)
        for n, target in enumerate(targets):
            color = f"C{n}"
            mine = [r for r in measured if r["target"] == target]
            ax.scatter([r[cost] for r in mine], [r["fmax_mhz"] for r in mine], s=18,
                       color=color, alpha=0.5, label=target)
            best = sorted((r for r in mine if id(r) in front),
                          key=lambda r: (r[cost], r["fmax_mhz"]))
            ax.plot([r[cost] for r in best], [r["fmax_mhz"] for r in best], "-o",
                    color=color, markersize=9, markerfacecolor="none",
                    drawstyle="steps-post", label=f"{target} front")
            for r in best:
                ax.annotate(", ".join(f"{k}={_shown(v)}" for k, v in
                                      _varying(r, common).items()) or r["block"],
                            (r[cost], r["fmax_mhz"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))     # cells come whole
        ax.set_xlabel(f"{name}s")
        ax.set_ylabel("Fmax (MHz)")
        ax.set_title(f"Fmax against {name}s" + ("" if measured else " (no ok rows)"))
        ax.grid(True, alpha=0.3)
        if measured:
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(db_path, plot_path=None):
    """The Markdown table of ``db_path`` (a qdp sweep file, never created here) and the
    path of the plot written beside it (or at ``plot_path``)."""
    with SweepDB(db_path, create=False) as db:
        rows = db.rows()
    markdown = report_markdown(rows, title=f"Sweep {db_path}")
    return markdown, plot_pareto(rows, plot_path or default_plot_path(db_path))
