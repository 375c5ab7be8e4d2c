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
from cfin.report.fmt import Cell
from cfin.tables import Row, Table

# Sections in this order: the most faithful budget and data first.
BUDGET_ORDER = ("paper", "short", "smoke")
DATASET_ORDER = ("div2k", "embedded")
FULL_CONVENTION = "full"
PAPER_CONVENTION = "paper"


def comparability(budget: str, dataset: str) -> str:
    """The sentence at the top of a section: what was run and whether accuracy compares."""
    if dataset == "embedded":
        return f"{budget} budget on embedded images: accuracy not comparable to the paper"
    if budget != "paper":
        return f"{budget} budget on DIV2K: accuracy not comparable to the paper (shorter training)"
    return "paper budget on DIV2K: accuracy comparable to the paper"


def reproduce_command(table_id: str, budget: str, seeds, data_root: str | None, report_only: bool = False,
                      impl: str = "faithful", tf32: bool = False) -> str:
    parts = ["python run_all.py", "--table", table_id, "--budget", budget, "--seeds", *map(str, sorted(seeds))]
    if data_root:
        parts += ["--data-root", data_root]
    if impl != "faithful":
        parts += ["--impl", impl]
    if tf32:
        parts.append("--tf32")
    if report_only:
        parts.append("--report-only")
    return " ".join(parts)


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
        return self.budget == "paper" and self.dataset != "embedded"


def _label(rr: RowResult) -> str:
    return rr.row.id + (" (quoted)" if rr.row.quoted else "")


def _ours_text(stat: Stat | None, f) -> str | None:
    if stat is None:
        return None
    text = f(stat.mean)
    if stat.n > 1 and stat.std is not None:
        text += f" ± {f(stat.std)} ({stat.n} seeds)"
    return text


def complexity_grid(results: list[RowResult], size: str) -> Grid:
    rows = []
    for rr in results:
        tol, paper = rr.row.tolerance, rr.row.paper
        p_ours, m_ours = rr.complexity(PAPER_CONVENTION, "params"), rr.complexity(PAPER_CONVENTION, "multi_adds")
        quoted = "quoted" if rr.row.quoted else None
        cells = [fmt.relative_cell(paper.params, p_ours, tol.params, fmt.count_k, quoted),
                 fmt.relative_cell(paper.multi_adds, m_ours, tol.multi_adds, fmt.macs_g, quoted)]
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


def accuracy_grid(table: Table, results: list[RowResult]) -> Grid:
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
            cells.append(fmt.absolute_cell(p_psnr, s_psnr.mean if s_psnr else None, tol.psnr, fmt.psnr, " dB",
                                           q or _ours_text(s_psnr, fmt.psnr)))
            cells.append(fmt.absolute_cell(p_ssim, s_ssim.mean if s_ssim else None, tol.ssim, fmt.ssim,
                                           "", q or _ours_text(s_ssim, fmt.ssim)))
        rows.append((_label(rr), cells, [], "quoted" if rr.row.quoted else ""))
    caption = ("PSNR (dB) / SSIM on the Y channel, `scale` border pixels cropped. A delta is given only "
               "where ours is measured on the paper's dataset.")
    return Grid("Accuracy", groups, [], rows, caption)


def resources_grid(results: list[RowResult]) -> Grid:
    """Memory and time, when the paper prints them or records measured them."""
    has_paper = any(rr.row.paper.memory_mb is not None or rr.row.paper.time_s is not None for rr in results)
    if not (has_paper or _measured(results, "memory") or _measured(results, "latency")):
        return Grid("Memory and time", [], [], [])
    rows = []
    for rr in results:
        mem = rr.measured("memory", "peak_mb")
        lat = rr.measured("latency", "seconds")
        q = "quoted" if rr.row.quoted else None
        cells = [fmt.relative_cell(rr.row.paper.memory_mb, mem.mean if mem else None, None, fmt.megabytes,
                                   q or _ours_text(mem, fmt.megabytes)),
                 fmt.relative_cell(rr.row.paper.time_s, lat.mean if lat else None, None, fmt.seconds,
                                   q or _ours_text(lat, fmt.seconds))]
        rows.append((_label(rr), cells, [], "quoted" if rr.row.quoted else ""))
    conditions = sorted({(r.get("memory") or {}).get("condition", "") for rr in results for r in rr.records}
                        | {(r.get("latency") or {}).get("condition", "") for rr in results for r in rr.records}
                        - {""})
    caption = ("The paper's memory is GPU memory and its time a GPU forward; ours: "
               + ("; ".join(conditions) if conditions else "not measured") + ". No tolerance: conditions differ.")
    return Grid("Memory and time", ["Memory", "Time"], [], rows, caption)


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
    lines = [f"device: {', '.join(values('device_name'))} ({', '.join(values('device'))})",
             f"torch {', '.join(values('torch'))}, Python {', '.join(values('python'))}",
             f"git commit: {', '.join(values('git_commit'))}",
             f"wall time: {wall:,.0f} s over {len(records)} record(s)"]
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


def build_sections(table: Table, records: list[dict], size: str = "") -> list[Section]:
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
        grids = [complexity_grid(results, section_size), accuracy_grid(table, results),
                 resources_grid(results), conventions_grid(results)]
        sec = Section(
            budget=budget, dataset=dataset, statement=comparability(budget, dataset),
            command=reproduce_command(table.id, budget, seeds, root, impl=_common_impl(mine),
                                      tf32=all(r.get("tf32") for r in mine)),
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
