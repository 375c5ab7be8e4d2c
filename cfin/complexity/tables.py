"""A paper table's complexity columns: printed | ours under the paper's rule | ours, full count.

:func:`table_complexity` counts every reproducible row of a table (``ablations/``) under the
``paper`` convention (the torchsummaryX rule that produced the printed numbers) and the
``full`` one (every used parameter and multiply-add), at the paper's input for the row's
scale (1280 x 720 output). ``cfin complexity --table VII [--json]`` prints it.
"""
from __future__ import annotations

from cfin.complexity.conventions import CONVENTIONS, default_lr_size

CONVENTIONS_SHOWN = ("paper", "full")


def table_complexity(table_id: str, progress: bool = False) -> dict:
    """The complexity columns of one paper table, as plain data.

    Returns ``{"table": id, "rows": [{"id", "quoted", "paper": {"params", "multi_adds"},
    "ours": {"paper": {...}, "full": {...}}}]}``: counts are ints (177.8K is 177800); a key is
    left out where the paper prints nothing, and ``ours`` where the row is quoted (another
    paper's method) and its network is not rebuilt; a rebuilt one (``peer``) is counted. A
    CFINError lists the valid table ids for an unknown one.
    """
    from tqdm import tqdm

    from cfin.complexity import count
    from cfin.tables import get_table

    table = get_table(table_id)
    cache: dict = {}
    rows = []
    for row in tqdm(table.rows, desc=f"Table {table.id}", disable=not progress, unit="row"):
        entry = {"id": row.id, "quoted": row.quoted,
                 "paper": {k: v for k, v in (("params", row.paper.params), ("multi_adds", row.paper.multi_adds))
                           if v is not None},
                 "printed": {k: v for k, v in row.paper.printed.items() if k in ("params", "multi_adds")}}
        if row.peer is not None:
            from cfin.runner.measure import peer_complexity

            counted = peer_complexity(row.peer, table.row_scale(row), CONVENTIONS_SHOWN)
            entry["ours"] = {conv: {k: counted[conv][k] for k in ("params", "multi_adds")}
                             for conv in CONVENTIONS_SHOWN}
            entry["peer"] = row.peer
        elif row.config is not None:
            if row.config not in cache:
                lr = default_lr_size(row.config.scale)
                cache[row.config] = {}
                for conv in CONVENTIONS_SHOWN:
                    c = count(row.config, lr, conv)
                    cache[row.config][conv] = {"params": c.params, "multi_adds": c.multi_adds}
            entry["ours"] = {conv: dict(v) for conv, v in cache[row.config].items()}
        rows.append(entry)
    return {"table": table.id, "rows": rows}


def _fmt(value: int | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if unit == "params" else f"{value / 1e9:.4f}G"


def _delta(ours: int | None, printed: int | None) -> str:
    if ours is None or printed is None:
        return ""
    return f" ({ours / printed - 1:+.1%})"


def render_table_complexity(result: dict) -> str:
    """A text table: printed, ours under the paper's rule and under the full count, with deltas to the printed."""
    from cfin.tables import get_table

    table = get_table(result["table"])
    header = ["row", "printed Params", "printed Multi-Adds", "ours (paper rule) Params", "Multi-Adds",
              "ours (full) Params", "Multi-Adds"]
    lines = []
    for r in result["rows"]:
        printed, text = r["paper"], r.get("printed", {})
        cells = [r["id"] + (" [rebuilt]" if r.get("peer") else " [quoted]" if r["quoted"] else ""),
                 text.get("params") or _fmt(printed.get("params"), "params"),
                 text.get("multi_adds") or _fmt(printed.get("multi_adds"), "multi_adds")]
        for conv in CONVENTIONS_SHOWN:
            ours = r.get("ours", {}).get(conv)
            if ours is None:
                cells += ["-", "-"]
                continue
            cells.append(_fmt(ours["params"], "params") + _delta(ours["params"], printed.get("params")))
            cells.append(_fmt(ours["multi_adds"], "multi_adds") + _delta(ours["multi_adds"], printed.get("multi_adds")))
        lines.append(cells)
    widths = [max(len(c) for c in col) for col in zip(header, *lines)]
    out = [f"Table {table.id}: {table.title}" + (f" (x{table.scale})" if table.scale else ""),
           "  ".join(h.ljust(w) for h, w in zip(header, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)) for cells in lines]
    out.append("")
    out.append("deltas: ours / printed - 1. Multi-Adds are MACs at 1280 x 720 output.")
    for conv in CONVENTIONS_SHOWN:
        out.append(f"{CONVENTIONS[conv].label}")
    return "\n".join(out)
