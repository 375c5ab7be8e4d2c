"""Report figures (matplotlib, Agg): PSNR against Params in the style of the paper's Fig. 8, and
training curves per row. Each is a PNG written atomically beside the report."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from cfin.atomic import atomic_write  # noqa: E402
from cfin.report.grids import PAPER_CONVENTION, RowResult  # noqa: E402
from cfin.tables import Table  # noqa: E402

PAPER_STYLE = dict(marker="o", color="#1f4e9a", s=46, zorder=3)
OURS_STYLE = dict(marker="*", color="#c0392b", s=110, zorder=4)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return path


def row_scale(table: Table, row) -> int | None:
    """A row's scale (:meth:`cfin.tables.Table.row_scale`)."""
    return table.row_scale(row)


def _paper_dataset(table: Table) -> str | None:
    """Fig. 8 plots Set5; otherwise the table's first accuracy dataset."""
    return "Set5" if "Set5" in table.datasets else (table.datasets[0] if table.datasets else None)


def _points_paper(results: list[RowResult], dataset: str | None):
    """(Params in K, printed PSNR, row) of each row the paper prints both for on ``dataset``."""
    pts = []
    for rr in results:
        m = rr.row.paper.metrics.get(dataset) if dataset else None
        if rr.row.paper.params is not None and m and m[0] is not None:
            pts.append((rr.row.paper.params / 1e3, m[0], rr.row.id))
    return pts


def _points_ours(results: list[RowResult], dataset: str):
    """(Params in K, mean PSNR, row, std over seeds or None) of each row with records."""
    pts = []
    for rr in results:
        params = rr.complexity(PAPER_CONVENTION, "params")
        stat = rr.metric(dataset, "psnr")
        if params is not None and stat is not None:
            pts.append((params / 1e3, stat.mean, rr.row.id, stat.std))
    return pts


def _scatter(ax, pts, style, label):
    """The points; a point with a spread over seeds gets an error bar of one std. Named by :func:`_annotate`."""
    if not pts:
        return
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
    spread = [p for p in pts if len(p) > 3 and p[3] is not None]
    if spread:
        ax.errorbar([p[0] for p in spread], [p[1] for p in spread], yerr=[p[3] for p in spread], fmt="none",
                    ecolor=style["color"], elinewidth=1, capsize=3, zorder=style["zorder"] - 1,
                    label="± 1 std over seeds")


# Where a point's name may go (offset in points from the point), nearest first; the far ones get a leader line.
LABEL_OFFSETS = ((6, 5), (6, -5), (-6, 5), (-6, -5), (0, 10), (0, -10), (10, 0), (-10, 0), (6, 16), (-6, 16),
                 (6, -16), (-6, -16), (24, 10), (-24, 10), (24, -10), (-24, -10), (0, 24), (0, -24),
                 (30, 24), (-30, 24), (30, -24), (-30, -24))
MARKER_PX = 6  # half the width of a plotted marker and a margin, in pixels at the saved dpi


def _overlap(a, b) -> float:
    return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))


def _annotate(ax, pts, prefix: str = "") -> None:
    """Name each point at the first of :data:`LABEL_OFFSETS` where its label covers no other label, no
    point and not the legend, inside the axes (else where it covers least), so that a crowded table
    such as Table I reads. ``prefix`` is dropped from the names (``x4 `` in a figure of x4 rows).
    Call once the axes' limits, legend and layout are final; the labels stay out of the layout."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    centres = ax.transData.transform([(p[0], p[1]) for p in pts]) if pts else []
    taken = [Bbox.from_extents(x - MARKER_PX, y - MARKER_PX, x + MARKER_PX, y + MARKER_PX) for x, y in centres]
    if ax.get_legend():
        taken.append(ax.get_legend().get_window_extent(renderer))
    for x, y, name, *_ in pts:
        name = name[len(prefix):] if prefix and name.startswith(prefix) else name
        best = None
        for dx, dy in LABEL_OFFSETS:
            far = abs(dx) > 12 or abs(dy) > 12
            ann = ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=8,
                              ha="left" if dx > 0 else "right" if dx < 0 else "center", va="center",
                              arrowprops=dict(arrowstyle="-", lw=0.5, color="0.5", shrinkA=0, shrinkB=4)
                              if far else None)
            ann.set_in_layout(False)
            box = ann.get_window_extent(renderer)
            outside = box.width * box.height - _overlap(box, frame)
            cost = outside + sum(_overlap(box, t) for t in taken)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, ann, box)
            else:
                ann.remove()
            if cost == 0:
                break
        taken.append(best[2])


def _title(fig, text: str, statement: str) -> None:
    """The figure's title and, below it, what its records are (the section's statement: budget, data and
    whether accuracy compares), so that the PNG says so wherever it is shown."""
    fig.suptitle("\n".join([text, *textwrap.wrap(statement, 90)]), fontsize=10)


def psnr_params_plot(table: Table, results: list[RowResult], ours_dataset: str, path: Path,
                     scale: int | None = None, statement: str = "") -> Path | None:
    """PSNR against Params (K, paper rule): the paper's points and ours. On the paper's dataset
    both share one axis; on another dataset (embedded) ours get a panel of their own, since
    PSNR on different images does not compare. ``scale``: only the rows of that scale (for a
    mixed-scale table such as Table I). ``statement``: the section's budget and data, under the
    title. None when there is nothing to plot."""
    if scale is not None:
        results = [rr for rr in results if row_scale(table, rr.row) == scale]
    paper_set = _paper_dataset(table)
    paper = _points_paper(results, paper_set)
    ours = _points_ours(results, ours_dataset)
    if not paper and not ours:
        return None
    shown = scale or table.scale
    scale = f" (x{shown})" if shown else ""
    if ours_dataset == paper_set or not paper or not ours:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        _scatter(ax, paper, PAPER_STYLE, f"paper ({paper_set})")
        _scatter(ax, ours, OURS_STYLE, f"ours ({ours_dataset})")
        panels = [(ax, paper + ours)]
        ax.set_ylabel("PSNR (dB)")
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.4), sharex=True)
        _scatter(axes[0], paper, PAPER_STYLE, f"paper ({paper_set})")
        _scatter(axes[1], ours, OURS_STYLE, f"ours ({ours_dataset})")
        panels = [(axes[0], paper), (axes[1], ours)]
        axes[0].set_ylabel(f"PSNR on {paper_set} (dB), paper")
        axes[1].set_ylabel(f"PSNR on {ours_dataset} (dB), ours")
    for ax, _ in panels:
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_xlabel("Params (K, paper counting rule)")
        ax.grid(True, alpha=0.3)
        ax.margins(x=0.15, y=0.15)
        ax.legend(loc="best", fontsize=8)
    _title(fig, f"Table {table.id}{scale}: PSNR against Params (as in the paper's Fig. 8)", statement)
    fig.tight_layout()
    fig.canvas.draw()  # the final limits, legend and layout, which the labels are placed against
    prefix = f"x{shown} " if table.scale is None and shown else ""  # a figure of one scale's rows
    for ax, pts in panels:
        _annotate(ax, pts, prefix)
    return _save(fig, path)


SEED_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))


def _validation_images(results: list[RowResult]) -> str:
    """What the runs validated on, from the records' data label ("... (validation: DIV2K 896-900)", up
    to a ";" that adds a remark)."""
    for rr in results:
        for r in rr.records:
            m = re.search(r"validation: ([^);]*)[);]", (r.get("data") or {}).get("train", ""))
            if m:
                return m[1]
    return ""


def curves_plot(table: Table, results: list[RowResult], path: Path, statement: str = "") -> Path | None:
    """Training loss and validation PSNR against iteration, one line per row and seed; ``statement``
    (the section's budget and data) under the title."""
    series = [(rr.row.id, r["seed"], r.get("curve") or []) for rr in results for r in rr.records]
    series = [s for s in series if s[2]]
    if not series:
        return None
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10.5, 4.0))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rows = list(dict.fromkeys(s[0] for s in series))
    for row_id, seed, curve in series:
        c = colours[rows.index(row_id) % len(colours)]
        seeds = sorted({s[1] for s in series if s[0] == row_id})
        label = row_id if len(seeds) == 1 else f"{row_id} seed {seed}"
        style = SEED_STYLES[seeds.index(seed) % len(SEED_STYLES)]  # a row's seeds: one colour, a style each
        loss = [(p["iteration"], p["loss"]) for p in curve if p.get("loss") is not None]
        val = [(p["iteration"], p["val_psnr"]) for p in curve if p.get("val_psnr") is not None]
        if loss:
            ax_loss.plot(*zip(*loss), color=c, label=label, lw=1.2, ls=style[0])
        if val:
            ax_val.plot(*zip(*val), color=c, label=label, marker=style[1], ms=4, lw=1.0, ls=style[0])
    ax_loss.set_title("training loss (mean per logging window)", fontsize=9)
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("loss")
    held_out = _validation_images(results)
    ax_val.set_title("validation PSNR (Y)" + (f" on {held_out}" if held_out else ""), fontsize=9)
    ax_val.set_xlabel("iteration")
    ax_val.set_ylabel("PSNR (dB)")
    for ax in (ax_loss, ax_val):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole iterations
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    _title(fig, f"Table {table.id}: training curves", statement)
    return _save(fig, path)
