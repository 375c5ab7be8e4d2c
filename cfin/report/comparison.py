"""The "same ruler" report: Tables I, II and IX ranked by their printed counts and by the full count.

CFIN's headline claims are comparisons (Table I: "less parameters and computation than most
methods"; Table II: fewer Params, Multi-Adds and time than SwinIR*, ESRT, LBNet; Table IX: OnlyT
against PAN, MAFFSRN, RFDN, FDIWN-M). Each printed count comes from its own method's paper and
tool; this report puts every row whose network the suite builds (CFIN's rows, the rebuilt peers
of :mod:`cfin.peers`) on one ruler, the full count at the same 1280 x 720 output, ranks the rows
by the printed Multi-Adds and by the full ones, and says where CFIN stands under each. A plot per
scale draws each rebuilt network's printed Set5 PSNR against its Multi-Adds, an arrow from the
printed count to the full one.

Generated with the complexity reports (``python run_all.py --complexity-only --table all``):
``reports/complexity/comparison.md`` and ``comparison_x{s}.png``; a pure function of the code.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cfin.report import fmt
from cfin.report.markdown import pipe_table
from cfin.tables import Row, Table, get_table

TABLES = ("I", "II", "IX")
STEM = "comparison"


@dataclass(frozen=True)
class Entry:
    """One row of a comparison: what is printed and what the suite counts (None where it cannot)."""

    table: str
    row: str
    method: str
    scale: int
    printed_params: int | None
    printed_multi_adds: int | None
    printed_text: tuple[str, str]
    paper_rule: tuple[int, int] | None
    full: tuple[int, int] | None
    set5_psnr: float | None
    counted_as: str  # "CFIN", "rebuilt" or "quoted"


def _method(table: Table, row: Row) -> str:
    scale = table.row_scale(row)
    return row.id[len(f"x{scale} "):] if table.scale is None and row.id.startswith(f"x{scale} ") else row.id


def entries(table: Table) -> list[Entry]:
    """The rows of ``table`` that print a count (CFIN+ repeats CFIN's network: left out; another method's
    "+" row is the only row of its network)."""
    from cfin.runner.measure import complexity, peer_complexity

    out = []
    for row in table.rows:
        if (row.self_ensemble and not row.quoted) or (row.paper.params is None and row.paper.multi_adds is None):
            continue
        scale = table.row_scale(row)
        counts = (peer_complexity(row.peer, scale) if row.peer else
                  complexity(row.config) if row.config is not None else None)
        pick = (lambda c: (counts[c]["params"], counts[c]["multi_adds"])) if counts else (lambda c: None)
        set5 = row.paper.metrics.get("Set5")
        out.append(Entry(table.id, row.id, _method(table, row), scale, row.paper.params, row.paper.multi_adds,
                         (row.paper.text("params", fmt.count_k), row.paper.text("multi_adds", fmt.macs_g)),
                         pick("paper"), pick("full"), set5[0] if set5 else None,
                         "rebuilt" if row.peer else "CFIN" if row.config is not None else "quoted"))
    return out


def _ranks(items: list[Entry], key) -> dict[str, int]:
    """1-based rank by ``key`` ascending (cheapest first) among the entries that have it; ties share."""
    have = sorted((key(e), e.row) for e in items if key(e) is not None)
    return {row: 1 + sum(1 for v, _ in have if v < value) for value, row in have}


def _is_cfin(e: Entry) -> bool:
    """CFIN's row of a section (Table IX's is OnlyT, CFIN's Transformer part)."""
    return e.counted_as == "CFIN" and e.method in ("CFIN", "OnlyT")


def _standing(items: list[Entry]) -> list[str]:
    """Where CFIN stands by printed and by full Multi-Adds and Params, among all and among the counted rows."""
    cfin = next((e for e in items if _is_cfin(e)), None)
    if cfin is None:
        return []
    counted = [e for e in items if e.full is not None]
    lines = []
    keys = (("Multi-Adds", lambda e: e.printed_multi_adds, lambda e: e.full[1] if e.full else None),
            ("Params", lambda e: e.printed_params, lambda e: e.full[0] if e.full else None))
    for what, printed_key, full_key in keys:
        all_printed = _ranks(items, printed_key)
        same_printed, same_full = _ranks(counted, printed_key), _ranks(counted, full_key)
        n_all = sum(1 for e in items if printed_key(e) is not None)
        n_same = len(counted)
        if cfin.row not in all_printed:
            continue
        line = f"- {what}: {cfin.method} is {_place(all_printed[cfin.row])} of {n_all} by the printed numbers"
        if n_same > 1:
            line += (f"; among the {n_same} networks counted here it is {_place(same_printed[cfin.row])} by the "
                     f"printed numbers and {_place(same_full[cfin.row])} by the full count")
        lines.append(line + ".")
    return lines


def _place(rank: int) -> str:
    """1 -> "the lowest", 3 -> "the 3rd lowest"."""
    return "the lowest" if rank == 1 else f"the {_ordinal(rank)} lowest"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _g(n: int | None) -> str:
    return fmt.DASH if n is None else f"{n / 1e9:,.1f}G"


def _section(table: Table, scale: int, items: list[Entry], plot: str | None) -> str:
    by_printed = _ranks(items, lambda e: e.printed_multi_adds)
    by_full = _ranks(items, lambda e: e.full[1] if e.full else None)
    order = sorted(items, key=lambda e: (by_full.get(e.row, 10 ** 6), by_printed.get(e.row, 10 ** 6), e.row))
    rows = []
    for e in order:
        ratio = (f"{e.full[1] / e.printed_multi_adds:.1f}x" if e.full and e.printed_multi_adds else fmt.DASH)
        rows.append([e.method + ("" if e.counted_as != "quoted" else " (quoted)"),
                     e.printed_text[0], e.printed_text[1],
                     fmt.count_exact(e.full[0]) if e.full else fmt.DASH, _g(e.full[1]) if e.full else fmt.DASH,
                     ratio, str(by_printed.get(e.row, fmt.DASH)), str(by_full.get(e.row, fmt.DASH)),
                     fmt.psnr(e.set5_psnr) if e.set5_psnr is not None else fmt.DASH])
    header = ["Method", "printed Params", "printed Multi-Adds", "Params (full)", "Multi-Adds (full)",
              "full / printed", "rank, printed", "rank, full", "Set5 PSNR (printed)"]
    out = [f"## Table {table.id}, x{scale}\n", pipe_table(header, rows), ""]
    out += _standing(items)
    if plot:
        out += ["", f"![Table {table.id} x{scale}: printed Set5 PSNR against Multi-Adds, printed and full]({plot})"]
    return "\n".join(out) + "\n"


def _scales(table: Table) -> list[int]:
    return sorted({table.row_scale(r) for r in table.rows} - {None}, reverse=True)


def comparison_markdown(plots: dict[tuple[str, int], str] | None = None) -> str:
    """The report (deterministic); ``plots`` names each (table, scale)'s figure file."""
    plots = plots or {}
    out = ["# The same ruler: CFIN and the methods its tables compare with\n",
           "Generated by `python run_all.py --complexity-only --table all`; do not edit "
           "(tests/test_committed_reports.py checks it against the code).\n",
           "Every printed count is its own method's paper's, made with its own tool; the full count is this suite's: "
           "every parameter the forward uses and every multiply-add of every convolution, linear layer and matrix "
           "product, at the same 1280 x 720 output (LR 640x360 at x2, 426x240 at x3, 320x180 at x4). Rows are "
           "ranked cheapest first; a row without a full count is another method's network the suite does not "
           "build (its note in the table's report says why). The rebuilt networks' notes say which counting "
           "reproduces their printed numbers. Accuracy (Set5 PSNR) is as printed.\n"]
    for tid in TABLES:
        table = get_table(tid)
        items = entries(table)
        for scale in _scales(table):
            mine = [e for e in items if e.scale == scale]
            if mine:
                out.append(_section(table, scale, mine, plots.get((tid, scale))))
    return "\n".join(out)


def comparison_plot(scale: int, path: Path) -> Path | None:
    """Printed Set5 PSNR against Multi-Adds (G, log scale) of every counted network at ``scale`` in
    Tables I, II and IX: a hollow marker at the printed count, a filled one at the full count, an
    arrow between them. None where nothing at that scale is counted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cfin.report.plots import _annotate, _save

    seen, pts = set(), []
    for tid in TABLES:
        for e in entries(get_table(tid)):
            if e.scale == scale and e.full and e.printed_multi_adds and e.set5_psnr and e.method not in seen:
                seen.add(e.method)
                pts.append(e)
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    for e in pts:
        color = "#c0392b" if e.counted_as == "CFIN" else "#1f4e9a"
        ax.annotate("", (e.full[1] / 1e9, e.set5_psnr), (e.printed_multi_adds / 1e9, e.set5_psnr),
                    arrowprops=dict(arrowstyle="->", color=color, lw=0.8, alpha=0.6))
        ax.scatter([e.printed_multi_adds / 1e9], [e.set5_psnr], facecolors="none", edgecolors=color, s=36, zorder=3)
        ax.scatter([e.full[1] / 1e9], [e.set5_psnr], color=color, s=40, zorder=4)
    ax.scatter([], [], facecolors="none", edgecolors="0.3", label="printed Multi-Adds")
    ax.scatter([], [], color="0.3", label="full count (this suite)")
    ax.set_xscale("log")
    ax.set_xlabel("Multi-Adds (G, 1280 x 720 output; log scale)")
    ax.set_ylabel("Set5 PSNR (dB), as printed")
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.12, y=0.12)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"x{scale}: the same networks on the printed ruler and on the full count", fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()
    _annotate(ax, [(e.full[1] / 1e9, e.set5_psnr, e.method) for e in pts])
    return _save(fig, path)


def plot_files() -> dict[tuple[str, int], str]:
    """``{(table, scale): file name}`` of the figures the report shows (one per scale, shown under
    the first table section of that scale)."""
    names, first = {}, set()
    for tid in TABLES:
        table = get_table(tid)
        for scale in _scales(table):
            if scale not in first and any(e.scale == scale and e.full for e in entries(table)):
                first.add(scale)
                names[(tid, scale)] = f"{STEM}_x{scale}.png"
    return names


def write_comparison(out_dir: Path) -> list[Path]:
    """Write ``comparison.md`` and its figures into ``out_dir``."""
    from cfin.atomic import atomic_write_text

    names = plot_files()
    written = []
    for (_, scale), name in names.items():
        if comparison_plot(scale, out_dir / name) is not None:
            written.append(out_dir / name)
    written.append(atomic_write_text(out_dir / f"{STEM}.md", comparison_markdown(names)))
    return written
