"""The paper's table and ours side by side, built from records: the data every report renders.

Records of one table are grouped into sections by (budget, dataset); within a section the
records of a row (one per seed) are averaged. Every column is paper | ours | delta with the
delta judged against the row's :class:`~cfin.tables.Tolerance`. Accuracy is compared only on
the same dataset: on the embedded pictures our PSNR stands in its own column, without a delta.
The grids themselves are built in :mod:`cfin.report.grids`; a section adds what was run and how.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cfin.complexity.conventions import size_label
from cfin.paths import Folders
from cfin.records import slug
from cfin.report.grids import (PAPER_CONVENTION, Grid, RowResult, accuracy_grid, complexity_grid, conventions_grid,
                               gaps_grid, protocols_grid, released_grid, resources_grid)
from cfin.tables import Table

# Sections in this order: the most faithful budget and data first.
BUDGET_ORDER = ("paper", "paper-text", "short", "smoke")
DATASET_ORDER = ("div2k", "embedded")
FULL_BUDGETS = ("paper", "paper-text")  # the paper's whole training: as its code ran it, as its text states it


def is_comparable(budget: str, dataset: str) -> bool:
    """Whether accuracy compares with the paper's: its budget, on its data."""
    return budget in FULL_BUDGETS and dataset != "embedded"


def comparability(budget: str, dataset: str) -> str:
    """The sentence at the top of a section: what was run and whether accuracy compares."""
    if dataset == "embedded":
        return f"{budget} budget on embedded images: accuracy not comparable to the paper"
    if budget not in FULL_BUDGETS:
        return f"{budget} budget on DIV2K: accuracy not comparable to the paper (shorter training)"
    if budget == "paper-text":
        return ("paper-text budget on DIV2K: accuracy comparable to the paper (its whole training, with the "
                "learning-rate schedule its text states rather than its code's)")
    return "paper budget on DIV2K: accuracy comparable to the paper"


def reproduce_command(table_id: str, budget: str, seeds, data_root: str | None, impl: str = "faithful",
                      tf32: bool = False, folders: Folders = Folders()) -> str:
    parts = ["python run_all.py", "--table", table_id, "--budget", budget, "--seeds", *map(str, sorted(seeds))]
    if data_root:
        parts += ["--data-root", data_root]
    if impl != "faithful":
        parts += ["--impl", impl]
    if tf32:
        parts.append("--tf32")
    return " ".join([*parts, *folders.args("results", "runs", "reports")])


def rebuild_command(table_id: str | None, folders: Folders = Folders()) -> str:
    """The command that rebuilds a report (``table_id``) or the index (None) from the records; it names
    ``--runs`` too, which the report's Reproduce command names."""
    table = ["--table", table_id] if table_id else []
    return " ".join(["python run_all.py", "--report-only", *table, *folders.args("results", "runs", "reports")])


@dataclass
class Section:
    """Everything about one (budget, dataset) of one table."""

    budget: str
    dataset: str
    statement: str
    command: str
    recipe: str
    evaluation: str
    grids: list[Grid]
    plots: dict[str, str]  # kind -> file name (beside the report)
    environment: list[str]
    results: list[RowResult]
    stale_rows: list[str]
    missing_rows: list[str]

    @property
    def key(self) -> str:
        return f"{slug(self.budget)}_{slug(self.dataset)}"

    @property
    def comparable(self) -> bool:
        """Whether accuracy compares with the paper's (its budget on its data)."""
        return is_comparable(self.budget, self.dataset)


def _recipe_text(records: list[dict]) -> str:
    rec = records[0].get("recipe", {})
    every = rec.get("lr_step_every", 1)  # records from before the field: every iteration
    step = f" stepped every {every:,} iterations" if rec.get("scheduler") == "cosine" and every != 1 else ""
    return (f"recipe {rec.get('name')}: {rec.get('iterations', 0):,} iterations, batch {rec.get('batch_size')}, "
            f"{rec.get('patch_size')}x{rec.get('patch_size')} LR patches, Adam lr {rec.get('lr')} "
            f"{rec.get('scheduler')} to {rec.get('eta_min')}{step}, {rec.get('loss', '').upper()} loss")


def _evaluation_text(records: list[dict]) -> str:
    data = records[0].get("data", {})
    sets = {}
    for r in records:
        for name, m in r.get("metrics", {}).items():
            sets[name] = m.get("images")
    what = ", ".join(f"{n} ({k} images)" if k else n for n, k in sets.items())
    return f"trained on {data.get('train', '?')}; evaluated on {what}; {_scored_text(records)}"


def _scored_text(records: list[dict]) -> str:
    """Which weights scored the records: the best-validated (the official ``model_best``) or the last."""
    kinds = [((r.get("training") or {}).get("scored_weights") or {}).get("weights", "last") for r in records]
    parts = [f"{what} for {kinds.count(kind)} of {len(kinds)} record(s)" for kind, what in
             (("best", "the weights of the best validation PSNR (the official code's model_best)"),
              ("last", "the last iteration's weights")) if kind in kinds]
    return "scored with " + "; ".join(parts)


def _environment(records: list[dict]) -> list[str]:
    def values(key):
        return sorted({str((r.get("env") or {}).get(key)) for r in records})

    wall = sum(r.get("wall_time_s") or 0 for r in records)
    runs = {t["run_dir"]: t.get("elapsed_s") or 0 for r in records if (t := r.get("training") or {}).get("run_dir")}
    training = (f"; training time of their {len(runs)} run(s), every segment: {sum(runs.values()):,.0f} s"
                if runs else "")
    lines = [f"device: {', '.join(values('device_name'))} ({', '.join(values('device'))})",
             f"torch {', '.join(values('torch'))}, Python {', '.join(values('python'))}",
             f"git commit: {', '.join(values('git_commit'))}",
             f"wall time of the calls that wrote the {len(records)} record(s): {wall:,.0f} s (a resumed row's "
             f"earlier training not included){training}"]
    fast = [r for r in records if _impl(r) != "faithful"]
    if fast:
        lines.append(f"trained and evaluated by the fast path (run_all.py --impl fast: the same function, "
                     f"float32 rounding apart): {len(fast)} of {len(records)} record(s); memory and latency "
                     f"are the faithful computation's")
    tf32 = [r for r in records if r.get("tf32")]
    if tf32:
        lines.append(f"trained and evaluated with TF32 matmuls and convolutions (run_all.py --tf32; not the "
                     f"float32 function): {len(tf32)} of {len(records)} record(s)")
    recounted = [r["recounted"] for r in records if isinstance(r.get("recounted"), dict)]
    if recounted:
        by = sorted({f"{c.get('commit') or 'unknown commit'}, {c.get('at', '?')}" for c in recounted})
        lines.append(f"Params / Multi-Adds recounted after training by run_all.py --recount ({'; '.join(by)}): "
                     f"{len(recounted)} of {len(records)} record(s)")
    return lines


def _impl(record: dict) -> str:
    """The implementation that made a record (those made before run_all.py --impl: faithful)."""
    return record.get("impl", "faithful")


def _common_impl(records: list[dict]) -> str:
    """The implementation every record was made by; "faithful" where they differ."""
    impls = {_impl(r) for r in records}
    return impls.pop() if len(impls) == 1 else "faithful"


def _order(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    return (order.index(value) if value in order else len(order), value)


def released_section(table: Table, records: list[dict], folders: Folders = Folders()) -> Section:
    """The rebuilt rows re-scored from their authors' released weights (``run_all.py --peer-weights``)."""
    from cfin.peers import spec
    from cfin.runner.released import BENCHMARK, RELEASED

    # the rebuilt rows whose authors released weights (those without have nothing to re-score)
    results = [rr for row in table.peer_rows
               if (rr := RowResult(row, [r for r in records if r["row"] == row.id])).records
               or spec(row.peer).weights.get(table.row_scale(row))]
    root = next((r.get("data", {}).get("root") for r in records if r.get("data", {}).get("root")), None)
    sets = ", ".join(dict.fromkeys(f"{d} ({m.get('images')} images)" for r in records
                                   for d, m in r.get("metrics", {}).items()))
    command = " ".join(["python run_all.py", "--table", table.id, "--peer-weights", "DIR",
                        *(["--data-root", root] if root else []), *folders.args("results", "runs", "reports")])
    grids = [released_grid(table, results), protocols_grid(results)]
    return Section(
        budget=RELEASED, dataset=BENCHMARK,
        statement="released weights of the rebuilt networks, scored by the suite (nothing trained): accuracy "
                  "compares with the printed rows",
        command=command, recipe="none: the authors' released weights, loaded strictly into the rebuilt networks",
        evaluation=f"evaluated on {sets}; weights: " + ", ".join(
            f"{r['weights']['file']} (sha256 {r['weights']['sha256'][:16]})" for r in records if r.get("weights")),
        grids=[g for g in grids if not g.empty], plots={}, environment=_environment(records), results=results,
        stale_rows=[], missing_rows=[rr.row.id for rr in results if not rr.records])


def build_sections(table: Table, records: list[dict], size: str = "", folders: Folders = Folders()) -> list[Section]:
    """One :class:`Section` per (budget, dataset) found in ``table``'s records; the released weights'
    records (``run_all.py --peer-weights``) last, in a section of their own."""
    from cfin.runner.released import RELEASED

    keys = sorted({(r["budget"], r["dataset"]) for r in records if r["budget"] != RELEASED},
                  key=lambda k: (_order(k[0], BUDGET_ORDER), _order(k[1], DATASET_ORDER)))
    sections = []
    released = [r for r in records if r["budget"] == RELEASED]
    for budget, dataset in keys:
        mine = [r for r in records if (r["budget"], r["dataset"]) == (budget, dataset)]
        results = [RowResult(row, [r for r in mine if r["row"] == row.id]) for row in table.rows]
        seeds = sorted({r["seed"] for r in mine})
        root = next((r.get("data", {}).get("root") for r in mine if r.get("data", {}).get("root")), None)
        section_size = size or _size_text(mine)
        judged = is_comparable(budget, dataset)
        accuracy, gaps = accuracy_grid(table, results, judged), gaps_grid(table, results, judged)
        if gaps.empty and not accuracy.empty and len(table.reproducible_rows) > 1:
            accuracy = dataclasses.replace(accuracy, caption=accuracy.caption + (
                " \"Does the ablation hold?\" (each row's PSNR gap to the row the paper scores best, as printed and "
                "as reproduced) needs two rows scored on a dataset the paper prints: none here"
                + ("" if dataset != "embedded" else " (the bundled pictures; run with --data-root)") + "."))
        grids = [complexity_grid(results, section_size), accuracy, gaps, resources_grid(results),
                 conventions_grid(results)]
        sec = Section(
            budget=budget, dataset=dataset, statement=comparability(budget, dataset),
            command=reproduce_command(table.id, budget, seeds, root, impl=_common_impl(mine),
                                      tf32=all(r.get("tf32") for r in mine), folders=folders),
            recipe=_recipe_text(mine),
            evaluation=_evaluation_text(mine), grids=[g for g in grids if not g.empty], plots={},
            environment=_environment(mine), results=results,
            stale_rows=[rr.row.id for rr in results if rr.stale],
            missing_rows=[rr.row.id for rr in results if not rr.row.quoted and not rr.records])
        sections.append(sec)
    if released:
        sections.append(released_section(table, released, folders))
    return sections


def _size_text(records: list[dict]) -> str:
    """The inputs the records' counts were made at, one per scale (Table I mixes x2, x3 and x4),
    labelled as every count is (:func:`size_label`)."""
    sizes = {}
    for r in records:
        c = r.get("complexity", {}).get(PAPER_CONVENTION)
        if c and c.get("input"):
            b, _, h, w = c["input"]
            sizes.setdefault(r["scale"], size_label((h, w), r["scale"], b))
    return "; ".join(sizes[s] for s in sorted(sizes)) or "the paper's input size"
