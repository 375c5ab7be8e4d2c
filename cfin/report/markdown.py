"""Markdown reports: pipe tables, one per grid, with paper | ours | delta columns."""
from __future__ import annotations

from cfin.report.compare import Section, rebuild_command
from cfin.report.grids import Grid, legend
from cfin.tables import Table


def _escape(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def pipe_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` holds ``l`` or ``r`` per column."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(_escape(c) for c in line) + " |" for line in lines)


def grid_markdown(grid: Grid) -> str:
    header = ["Row"]
    for g in grid.groups:
        header += [f"{g}: paper", "ours"] + (["Δ"] if grid.deltas else [])
    header += grid.extras
    rows = []
    for label, cells, extras, _ in grid.rows:
        line = [label]
        for c in cells:
            line += [c.paper, c.ours] + ([c.delta_marked] if grid.deltas else [])
        rows.append(line + list(extras))
    text = f"### {grid.title}\n\n{pipe_table(header, rows)}\n"
    if grid.caption:
        text += f"\n{grid.caption}\n"
    return text


def table_markdown(table: Table, sections: list[Section], results: str = "results",
                   rebuild: str = "") -> str:
    """The whole report of one table: a section per (budget, dataset), then the table's notes."""
    scale = f" (x{table.scale})" if table.scale else ""
    rebuild = rebuild or rebuild_command(table.id)
    out = [f"# Table {table.id}: {table.title}{scale}\n",
           f"Generated from the records in `{results}/` by cfin-bench; do not edit. Rebuild: `{rebuild}`.\n"]
    for sec in sections:
        out.append(f"## {sec.statement}\n")
        out.append(f"Reproduce: `{sec.command}`\n")
        out.append(f"Training: {sec.recipe}.\n")
        out.append(f"Data: {sec.evaluation}.\n")
        if sec.missing_rows:
            out.append(f"Not yet run: {', '.join(sec.missing_rows)}.\n")
        if sec.stale_rows:
            out.append(f"Stale (the row's config changed since it was recorded; the reproduce command above "
                       f"recomputes it): {', '.join(sec.stale_rows)}.\n")
        out += [grid_markdown(g) for g in sec.grids]
        out.append(legend() + "\n")
        if sec.plots:
            out.append("### Plots\n")
            out += [f"![{title}]({name})\n" for title, name in sec.plots.items()]
        out.append("### Environment\n")
        out.append("\n".join(f"- {line}" for line in sec.environment) + "\n")
    out += notes_markdown(table)
    return "\n".join(out)


def notes_markdown(table: Table) -> list[str]:
    """The "## Notes" section of a table report: the table's notes, then each row's."""
    notes = [f"- {r.id}: {r.note}" for r in table.rows if r.note]
    if not (table.notes or notes):
        return []
    out = ["## Notes\n"]
    if table.notes:
        out.append(table.notes.strip() + "\n")
    if notes:
        out.append("\n".join(notes) + "\n")
    return out
