"""Write the reports: ``reports/table_<ID>.md`` and ``.html`` with their plots, and ``reports/index.html``.

Everything is generated from the records (:mod:`cfin.records`); nothing is edited by hand.
The HTML is rendered from the jinja2 templates in ``cfin/report/templates`` (no network
resources: styles and the one small script are inline, plots are PNG files beside the page).
"""
from __future__ import annotations

import os
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from cfin.atomic import atomic_write_text
from cfin.errors import CFINError
from cfin.records import RELEASED, check_results_folder, load_known_records, slug
from cfin.paths import REPO_ROOT, Folders
from cfin.report.compare import Section, build_sections, rebuild_command
from cfin.report.complexity import COMPLEXITY_DIR
from cfin.report.fmt import code_spans
from cfin.report.grids import legend
from cfin.report.markdown import table_markdown
from cfin.report.plots import curves_plot, psnr_params_plot, row_scale
from cfin.tables import Table, get_table, table_ids

DEFAULT_REPORTS = Path(Folders().reports)
AUDIT_PAGES = ("audit.html", "audit.md")  # cfin audit writes both; the Markdown is committed


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("cfin.report", "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(enabled_extensions=("html.j2",)), trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["code"] = code_spans
    return env


def render_template(name: str, **context) -> str:
    return _environment().get_template(name).render(**context)


def table_stem(table_id: str) -> str:
    return f"table_{slug(table_id)}"


def write_plots(table: Table, sections: list[Section], out_dir: Path) -> None:
    """Draw each section's figures beside the report and note their file names in the section."""
    stem = table_stem(table.id)
    for sec in sections:
        ours_sets = list(dict.fromkeys(d for rr in sec.results for r in rr.records for d in r.get("metrics", {})))
        dataset = next((d for d in table.datasets if d in ours_sets), ours_sets[0] if ours_sets else None)
        # a mixed-scale table (Table I) gets one figure per scale, largest first (Fig. 8 is x4)
        scales = [None] if table.scale else sorted({row_scale(table, r) for r in table.rows} - {None}, reverse=True)
        for scale in scales:
            tag = f"_x{scale}" if scale else ""
            name = f"{stem}_{sec.key}_psnr_params{tag}.png"
            if dataset and psnr_params_plot(table, sec.results, dataset, out_dir / name, scale, sec.statement):
                sec.plots[f"PSNR against Params{f' at x{scale}' if scale else ''}, paper and ours "
                          f"({sec.budget} budget, {sec.dataset})"] = name
        name = f"{stem}_{sec.key}_curves.png"
        if curves_plot(table, sec.results, out_dir / name, sec.statement):
            sec.plots[f"Training curves per row ({sec.budget} budget, {sec.dataset})"] = name


def committed_page(out_dir: Path, *names: str) -> str | None:
    """A link from ``out_dir`` to the first of the pages ``names`` (``complexity/table_VII.md``;
    ``audit.html``, ``audit.md``) in ``out_dir``, else in the repository's ``reports/`` (the
    committed ones, for reports written elsewhere with ``--reports``); None where none exists."""
    for folder in (out_dir, REPO_ROOT / DEFAULT_REPORTS):
        for name in names:
            if (folder / name).is_file():
                return Path(os.path.relpath(folder / name, out_dir)).as_posix()
    return None


def write_table_report(table: Table, records: list[dict], out_dir: str | Path = DEFAULT_REPORTS,
                       plots: bool = True, folders: Folders = Folders()) -> dict[str, Path]:
    """``{"md": ..., "html": ...}`` for one table with records; plots beside them."""
    out_dir = Path(out_dir)
    if not records:
        raise CFINError(f"no records for Table {table.id}; run python run_all.py --table {table.id} first")
    sections = build_sections(table, records, folders=folders)
    if plots:
        write_plots(table, sections, out_dir)
    stem = table_stem(table.id)
    rebuild = rebuild_command(table.id, folders)
    md = atomic_write_text(out_dir / f"{stem}.md", table_markdown(table, sections, folders.results, rebuild))
    html = atomic_write_text(out_dir / f"{stem}.html", render_template(
        "table.html.j2", table=table, sections=sections, results=folders.results, rebuild=rebuild,
        notes=[(r.id, r.note) for r in table.rows if r.note], legend=legend(),
        complexity_link=committed_page(out_dir, f"{COMPLEXITY_DIR}/{stem}.md")))
    return {"md": md, "html": html}


def write_index(records: list[dict], out_dir: str | Path = DEFAULT_REPORTS, folders: Folders = Folders()) -> Path:
    """``index.html``: every table that has records, the committed complexity reports, the audit."""
    out_dir = Path(out_dir)
    entries = []
    for tid in table_ids():
        mine = [r for r in records if r["table"] == tid]
        if not mine:
            continue
        table = get_table(tid)
        stem = table_stem(tid)
        # a released-weights section holds the rebuilt rows only; the others every row, the quoted ones never run
        sections = [{"key": s.key, "statement": s.statement, "done": sum(1 for rr in s.results if rr.records),
                     "total": len(s.results) if s.budget == RELEASED else len(table.reproducible_rows)}
                    for s in build_sections(table, mine)]
        entries.append({"id": tid, "title": table.title, "html": f"{stem}.html", "md": f"{stem}.md",
                        "sections": sections})
    complexity = [(tid, link) for tid in table_ids()
                  if (link := committed_page(out_dir, f"{COMPLEXITY_DIR}/{table_stem(tid)}.md"))]
    audit = committed_page(out_dir, *AUDIT_PAGES)
    comparison = committed_page(out_dir, f"{COMPLEXITY_DIR}/comparison.md")
    return atomic_write_text(out_dir / "index.html", render_template(
        "index.html.j2", entries=entries, complexity=complexity, audit=audit, comparison=comparison,
        results=folders.results,
        rebuild=rebuild_command(None, folders)))


def records_by_table(records: list[dict], tables: list[str]) -> dict[str, list[dict]]:
    """``{table id: its records}`` for each of ``tables`` (ids in any case, as :func:`get_table` takes them)."""
    by_table: dict[str, list[dict]] = {}
    for tid in tables:
        table_id = get_table(tid).id
        by_table[table_id] = [r for r in records if r["table"] == table_id]
    return by_table


def build_reports(results: str | Path, out_dir: str | Path = DEFAULT_REPORTS, tables: list[str] | None = None,
                  require: bool = True, runs: str | Path = "runs") -> list[Path]:
    """Rebuild the reports of ``tables`` (default: every table with records) and the index.

    Every record under ``results`` is read and checked first (:func:`cfin.records.load_known_records`).
    With ``require``, a CFINError before anything is written when ``results`` is not a folder,
    when there are no records at all, or none for a table asked for.
    """
    folders = Folders(str(results), str(runs), str(out_dir))
    if require:
        check_results_folder(results)
    records = load_known_records(results)
    if require and not records:
        raise CFINError(f"no records under {results}/: nothing to report; run python run_all.py --table VII "
                        f"(or --table all) first")
    wanted = tables if tables is not None else list(dict.fromkeys(r["table"] for r in records))
    by_table = records_by_table(records, wanted)
    missing = [tid for tid, mine in by_table.items() if not mine]
    if require and missing:
        ids, tables_word = " ".join(missing), "Tables" if len(missing) > 1 else "Table"
        raise CFINError(f"no records for {tables_word} {', '.join(missing)} under {results}/ (nothing written); "
                        f"run python run_all.py --table {ids} first, or leave {ids} out of --table")
    written = []
    for tid, mine in by_table.items():
        if mine:
            written += list(write_table_report(get_table(tid), mine, out_dir, folders=folders).values())
    written.append(write_index(records, out_dir, folders))
    return written
