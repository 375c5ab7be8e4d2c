"""The paper's table and ours side by side, built from records: the data every report renders.

Records of one table are grouped into sections by (budget, dataset); within a section the
records of a row (one per seed) are averaged. Every column is paper | ours | delta with the
delta judged against the row's :class:`~cfin.tables.Tolerance`. Accuracy is compared only on
the same dataset: on the embedded pictures our PSNR stands in its own column, without a delta.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from cfin.complexity import CONVENTIONS
from cfin.records import config_hash, slug
from cfin.report import fmt
from cfin.paths import Folders
from cfin.report.fmt import Cell
from cfin.tables import Row, Table, Tolerance

# Sections in this order: the most faithful budget and data first.
BUDGET_ORDER = ("paper", "short", "smoke")
DATASET_ORDER = ("div2k", "embedded")
FULL_CONVENTION = "full"
PAPER_CONVENTION = "paper"


def is_comparable(budget: str, dataset: str) -> bool:
    """Whether accuracy compares with the paper's: its budget, on its data."""
    return budget == "paper" and dataset != "embedded"


def comparability(budget: str, dataset: str) -> str:
    """The sentence at the top of a section: what was run and whether accuracy compares."""
    if dataset == "embedded":
        return f"{budget} budget on embedded images: accuracy not comparable to the paper"
    if budget != "paper":
        return f"{budget} budget on DIV2K: accuracy not comparable to the paper (shorter training)"
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
    """The command that rebuilds a report (``table_id``) or the index (None) from the records."""
    table = ["--table", table_id] if table_id else []
    return " ".join(["python run_all.py", "--report-only", *table, *folders.args("results", "reports")])


@dataclass
class Stat:
    mean: float
    std: float | None
    n: int


def _stat(values) -> Stat | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return Stat(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))


@dataclass
class RowResult:
    """A row and its records in one section (one record per seed)."""

    row: Row
    records: list[dict] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return sorted(r["seed"] for r in self.records)

    @property
    def stale(self) -> bool:
        """A record was made from a config other than the row's current one."""
        return self.row.config is not None and any(r.get("config_hash") != config_hash(self.row.config)
                                                   for r in self.records)

    def metric(self, dataset: str, key: str) -> Stat | None:
        return _stat(r.get("metrics", {}).get(dataset, {}).get(key) for r in self.records)

    def complexity(self, convention: str, key: str):
        for r in self.records:
            v = r.get("complexity", {}).get(convention, {}).get(key)
            if v is not None:
                return v
        return None

    def measured(self, what: str, key: str) -> Stat | None:
        return _stat((r.get(what) or {}).get(key) for r in self.records)


@dataclass
class Grid:
    """One rendered table: ``groups`` of paper | ours | delta, then single ``extras`` columns."""

    title: str
    groups: list[str]
    extras: list[str]
    rows: list[tuple[str, list[Cell], list[str], str]]  # (row label, cells, extra values, css class)
    caption: str = ""
    deltas: bool = True  # False: paper | ours only (nothing to compare them by)

    @property
    def empty(self) -> bool:
        return not self.rows


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


def _label(rr: RowResult) -> str:
    return rr.row.id + (" (quoted)" if rr.row.quoted else "")


def _ours_text(stat: Stat | None, f) -> str | None:
    if stat is None:
        return None
    text = f(stat.mean)
    if stat.n > 1 and stat.std is not None:
        text += f" ± {f(stat.std)} ({stat.n} seeds)"
    return text


DEFAULT_TOLERANCE = Tolerance()
_TOLERANCE_UNITS = {"params": ("%", 100), "multi_adds": ("%", 100), "psnr": (" dB", 1), "ssim": ("", 1)}


def tolerance_text(field_name: str, tolerance: Tolerance | None = None) -> str:
    """``±7%``, ``±0.1 dB``: a tolerance as the reports print it (the default one's without a row)."""
    unit, factor = _TOLERANCE_UNITS[field_name]
    return f"±{getattr(tolerance or DEFAULT_TOLERANCE, field_name) * factor:g}{unit}"


def _own_tolerance(row: Row, field_name: str) -> str:
    """The row's tolerance for ``field_name`` where it is not the default (its note says why), else ""."""
    own = getattr(row.tolerance, field_name) != getattr(DEFAULT_TOLERANCE, field_name)
    return tolerance_text(field_name, row.tolerance) if own else ""


def legend() -> str:
    """What a delta's mark means, with the default tolerances."""
    defaults = ", ".join(f"{name} {tolerance_text(f)}" for name, f in
                         (("Params", "params"), ("Multi-Adds", "multi_adds"), ("PSNR", "psnr"), ("SSIM", "ssim")))
    return (f"Δ: ✓ within the row's tolerance ({defaults}; a cell that names its own tolerance belongs to a row "
            "whose note says why); ✗ outside it (counts: either way; PSNR/SSIM: below the paper); ▲ PSNR/SSIM "
            "above the paper by more than it. Accuracy is judged only where the budget and data are the paper's.")


def complexity_grid(results: list[RowResult], size: str) -> Grid:
    rows = []
    for rr in results:
        tol, paper = rr.row.tolerance, rr.row.paper
        p_ours, m_ours = rr.complexity(PAPER_CONVENTION, "params"), rr.complexity(PAPER_CONVENTION, "multi_adds")
        quoted = "quoted" if rr.row.quoted else None
        cells = [fmt.relative_cell(paper.params, p_ours, tol.params, fmt.count_k, quoted,
                                   paper.text("params", fmt.count_k), _own_tolerance(rr.row, "params")),
                 fmt.relative_cell(paper.multi_adds, m_ours, tol.multi_adds, fmt.macs_g, quoted,
                                   paper.text("multi_adds", fmt.macs_g), _own_tolerance(rr.row, "multi_adds"))]
        extras = [fmt.count_exact(rr.complexity(FULL_CONVENTION, "params")),
                  fmt.macs_g(rr.complexity(FULL_CONVENTION, "multi_adds"))]
        rows.append((_label(rr), cells, extras, "quoted" if rr.row.quoted else ""))
    return Grid("Complexity", ["Params, paper rule", "Multi-Adds, paper rule"],
                ["Params (full)", "Multi-Adds (full)"], rows,
                f"Counted at {size}. Paper rule: the torchsummaryX rule the paper's numbers come from; "
                "full: every parameter the forward uses and every multiply-add (MACs).")


def conventions_grid(results: list[RowResult]) -> Grid:
    found = {n for rr in results for r in rr.records for n in r.get("complexity", {})}
    names = [n for n in CONVENTIONS if n in found] + sorted(found - set(CONVENTIONS))
    rows = []
    for rr in results:
        if rr.row.quoted:
            continue
        vals = [f"{fmt.count_exact(rr.complexity(n, 'params'))} / {fmt.macs_g(rr.complexity(n, 'multi_adds'))}"
                for n in names]
        rows.append((_label(rr), [], vals, ""))
    labels = {}
    for rr in results:
        for r in rr.records:
            for n, c in r.get("complexity", {}).items():
                labels.setdefault(n, c.get("label", n))
    caption = "Params / Multi-Adds under every counting convention. " + " ".join(
        f"{labels[n]}." if labels[n].startswith(n) else f"{n}: {labels[n]}." for n in names)
    return Grid("Every counting convention", [], names, rows if names else [], caption)


def accuracy_grid(table: Table, results: list[RowResult], judged: bool = True) -> Grid:
    """PSNR / SSIM per dataset, paper | ours | delta. ``judged``: mark each delta against the
    row's tolerance (only where the section's budget and data are the paper's). A column
    in which neither the paper nor ours has a number is left out."""
    ours_sets: list[str] = []
    for rr in results:
        for r in rr.records:
            ours_sets += [d for d in r.get("metrics", {}) if d not in ours_sets]
    datasets = list(table.datasets) + [d for d in ours_sets if d not in table.datasets]
    groups = [f"{d} {m}" for d in datasets for m in ("PSNR", "SSIM")]
    rows = []
    for rr in results:
        tol, cells = rr.row.tolerance, []
        for d in datasets:
            printed = rr.row.paper.metrics.get(d) if d in table.datasets else None
            p_psnr, p_ssim = (printed if printed else (None, None))
            s_psnr, s_ssim = rr.metric(d, "psnr"), rr.metric(d, "ssim")
            q = "quoted" if rr.row.quoted else None
            cells.append(fmt.absolute_cell(p_psnr, s_psnr.mean if s_psnr else None, tol.psnr if judged else None,
                                           fmt.psnr, " dB", q or _ours_text(s_psnr, fmt.psnr),
                                           _own_tolerance(rr.row, "psnr")))
            cells.append(fmt.absolute_cell(p_ssim, s_ssim.mean if s_ssim else None, tol.ssim if judged else None,
                                           fmt.ssim, "", q or _ours_text(s_ssim, fmt.ssim),
                                           _own_tolerance(rr.row, "ssim")))
        rows.append((_label(rr), cells, [], "quoted" if rr.row.quoted else ""))
    keep = [i for i in range(len(groups))
            if any((c := cells[i]).paper != fmt.DASH or c.ours not in (fmt.DASH, "quoted") for _, cells, _, _ in rows)]
    groups = [groups[i] for i in keep]
    rows = [(label, [cells[i] for i in keep], extras, css) for label, cells, extras, css in rows]
    caption = ("PSNR (dB) / SSIM on the Y channel, `scale` border pixels cropped. A delta is given only "
               "where ours is measured on the paper's dataset" +
               ("." if judged else ", and not judged: this section's training or data is not the paper's."))
    return Grid("Accuracy", groups, [], rows, caption)


def gaps_grid(table: Table, results: list[RowResult], judged: bool = True) -> Grid:
    """Whether the ablation holds: each row's PSNR gap to the paper's best reproducible row of its
    scale, as printed and as reproduced, on every paper dataset we measured. Ours is paired by
    seed (the gap of each seed's two records) and given with its std over seeds; "holds" where
    both gaps have the same sign. ``judged``: colour it (the paper's budget and data only)."""
    reproduced = [rr for rr in results if rr.row.config is not None and rr.records]
    datasets = [d for d in table.datasets
                if sum(1 for rr in reproduced if rr.row.paper.metrics.get(d) and rr.metric(d, "psnr")) > 1]
    if not datasets:
        return Grid("Does the ablation hold?", [], [], [])
    rows = []
    for rr in reproduced:
        cells, against = [], set()
        for d in datasets:
            peers = [o for o in reproduced if o.row.config.scale == rr.row.config.scale
                     and o.row.paper.metrics.get(d) and o.metric(d, "psnr")]
            if rr not in peers or len(peers) < 2:
                cells.append(Cell())
                continue
            ref = max(peers, key=lambda o: o.row.paper.metrics[d][0])
            against.add(ref.row.id)
            cells.append(_gap_cell(rr, ref, d, judged))
        rows.append((_label(rr), cells, [", ".join(sorted(against)) or fmt.DASH], ""))
    caption = ("PSNR gap (dB) of each row to the row the paper scores best among those reproduced (same scale), "
               "as printed and as reproduced; ours paired by seed, ± its std over seeds. \"holds\": the same "
               "sign; \"reversed\": the ablation's conclusion does not reproduce"
               + ("." if judged else "; not judged here (this section's training or data is not the paper's)."))
    return Grid("Does the ablation hold?", [f"{d} PSNR gap" for d in datasets], ["against"], rows, caption)


def _gap_cell(rr: RowResult, ref: RowResult, dataset: str, judged: bool) -> Cell:
    paper = rr.row.paper.metrics[dataset][0] - ref.row.paper.metrics[dataset][0]
    if rr is ref:
        return Cell(fmt.DASH, "(reference)")
    mine = {r["seed"]: r["metrics"][dataset]["psnr"] for r in rr.records if dataset in r.get("metrics", {})}
    theirs = {r["seed"]: r["metrics"][dataset]["psnr"] for r in ref.records if dataset in r.get("metrics", {})}
    paired = [mine[s] - theirs[s] for s in sorted(mine.keys() & theirs.keys())]
    if not paired:
        return Cell(f"{paper:+.2f}")
    gap = _stat(paired)
    ours = f"{gap.mean:+.2f}" + (f" ± {gap.std:.2f} ({gap.n} seeds)" if gap.std is not None else "")
    if paper == 0 or gap.mean == 0:
        return Cell(f"{paper:+.2f}", ours)
    holds = (paper > 0) == (gap.mean > 0)
    return Cell(f"{paper:+.2f}", ours, "holds" if holds else "reversed",
                ("ok" if holds else "off") if judged else "na")


def resources_grid(results: list[RowResult]) -> Grid:
    """Memory and time, when the paper prints them or records measured them."""
    has_paper = any(rr.row.paper.memory_mb is not None or rr.row.paper.time_s is not None for rr in results)
    if not (has_paper or _measured(results, "memory") or _measured(results, "latency")):
        return Grid("Memory and time", [], [], [])
    rows = []
    for rr in results:
        paper, q = rr.row.paper, ("quoted" if rr.row.quoted else None)
        mem = rr.measured("memory", "peak_mb")
        cells = [Cell(paper.text("memory_mb", fmt.megabytes), q or _ours_text(mem, fmt.megabytes) or fmt.DASH),
                 Cell(paper.text("time_s", fmt.seconds), q or _latency_text(rr.records))]
        rows.append((_label(rr), cells, [], "quoted" if rr.row.quoted else ""))
    conditions = sorted({(r.get("memory") or {}).get("condition", "") for rr in results for r in rr.records}
                        | {(r.get("latency") or {}).get("condition", "") for rr in results for r in rr.records}
                        - {""})
    caption = ("The paper's memory is GPU memory and its time a GPU forward; ours: "
               + ("; ".join(conditions) if conditions else "not measured") + ". No delta: the conditions differ. "
               "Time: the median forward with its interquartile range; over several records (seeds), the "
               "median of their medians and their range, since a latency depends on the machine, not the seed.")
    return Grid("Memory and time", ["Memory", "Time"], [], rows, caption, deltas=False)


def _latency_text(records: list[dict]) -> str:
    """A row's measured forward time: one record's median and IQR, or several records' median and range."""
    lat = [r["latency"] for r in records if (r.get("latency") or {}).get("seconds") is not None]
    if not lat:
        return fmt.DASH
    if len(lat) == 1:
        raw = lat[0].get("raw") or {}
        spread = f" (IQR {fmt.seconds(raw['iqr_ms'] / 1e3)}, {raw.get('runs')} runs)" if "iqr_ms" in raw else ""
        return fmt.seconds(lat[0]["seconds"]) + spread
    values = sorted(x["seconds"] for x in lat)
    return (f"{fmt.seconds(statistics.median(values))} ({fmt.seconds(values[0])} to {fmt.seconds(values[-1])}, "
            f"{len(values)} records)")


def _measured(results, what) -> bool:
    return any(r.get(what) for rr in results for r in rr.records)


def _recipe_text(records: list[dict]) -> str:
    rec = records[0].get("recipe", {})
    return (f"recipe {rec.get('name')}: {rec.get('iterations', 0):,} iterations, batch {rec.get('batch_size')}, "
            f"{rec.get('patch_size')}x{rec.get('patch_size')} LR patches, Adam lr {rec.get('lr')} "
            f"{rec.get('scheduler')} to {rec.get('eta_min')}, {rec.get('loss', '').upper()} loss")


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
    training = f"; training time of their {len(runs)} run(s), every segment: {sum(runs.values()):,.0f} s" if runs else ""
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


def build_sections(table: Table, records: list[dict], size: str = "", folders: Folders = Folders()) -> list[Section]:
    """One :class:`Section` per (budget, dataset) found in ``table``'s records."""
    keys = sorted({(r["budget"], r["dataset"]) for r in records},
                  key=lambda k: (_order(k[0], BUDGET_ORDER), _order(k[1], DATASET_ORDER)))
    sections = []
    for budget, dataset in keys:
        mine = [r for r in records if (r["budget"], r["dataset"]) == (budget, dataset)]
        results = [RowResult(row, [r for r in mine if r["row"] == row.id]) for row in table.rows]
        seeds = sorted({r["seed"] for r in mine})
        root = next((r.get("data", {}).get("root") for r in mine if r.get("data", {}).get("root")), None)
        section_size = size or _size_text(mine)
        judged = is_comparable(budget, dataset)
        grids = [complexity_grid(results, section_size), accuracy_grid(table, results, judged),
                 gaps_grid(table, results, judged), resources_grid(results), conventions_grid(results)]
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
    return sections


def _size_text(records: list[dict]) -> str:
    for r in records:
        c = r.get("complexity", {}).get(PAPER_CONVENTION)
        if c and c.get("input"):
            b, ch, h, w = c["input"]
            s = r["scale"]
            return f"{b}x{ch}x{h}x{w} LR -> {h * s}x{w * s} output (x{s})"
    return "the paper's input size"
