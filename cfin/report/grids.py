"""The grids of a report: each a table of paper | ours | delta built from a table's rows and their records.

A :class:`RowResult` is a row and its records in one section (one record per seed, averaged);
each ``*_grid`` function turns a section's row results into one :class:`Grid` (complexity under
the paper's rule and the full count, accuracy, whether the ablation holds, memory and time,
every counting convention), its deltas judged against each row's :class:`~cfin.tables.Tolerance`.
:mod:`cfin.report.compare` groups the records into sections and puts the grids in them.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from cfin.complexity import CONVENTIONS
from cfin.records import config_hash
from cfin.report import fmt
from cfin.report.fmt import Cell
from cfin.tables import Row, Table, Tolerance

FULL_CONVENTION = "full"
PAPER_CONVENTION = "paper"


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
        quoted = "quoted" if rr.row.quoted and rr.row.peer is None else None  # a rebuilt peer is counted
        cells = [fmt.relative_cell(paper.params, p_ours, tol.params, fmt.count_k, quoted,
                                   paper.text("params", fmt.count_k), _own_tolerance(rr.row, "params")),
                 fmt.relative_cell(paper.multi_adds, m_ours, tol.multi_adds, fmt.macs_g, quoted,
                                   paper.text("multi_adds", fmt.macs_g), _own_tolerance(rr.row, "multi_adds"))]
        extras = [fmt.count_exact(rr.complexity(FULL_CONVENTION, "params")),
                  fmt.macs_g(rr.complexity(FULL_CONVENTION, "multi_adds"))]
        rows.append((_counted_label(rr), cells, extras, "quoted" if quoted else ""))
    peers = any(rr.row.peer for rr in results)
    return Grid("Complexity", ["Params, paper rule", "Multi-Adds, paper rule"],
                ["Params (full)", "Multi-Adds (full)"], rows,
                f"Counted at {size}. Paper rule: the torchsummaryX rule the paper's numbers come from; "
                "full: every parameter the forward uses and every multiply-add (MACs)."
                + (" Rebuilt: another method's network rebuilt from its public code (cfin.peers) and counted with "
                   "the same rulers; its printed numbers are its own paper's, so a ✗ under the paper rule says "
                   "they were not counted by that rule (the row's note says which rule reproduces them); its "
                   "accuracy stays quoted." if peers else ""))


def _counted_label(rr: RowResult) -> str:
    """A row's label where counts are shown: a rebuilt peer is counted, not quoted."""
    return rr.row.id + (" (rebuilt)" if rr.row.peer else " (quoted)" if rr.row.quoted else "")


def conventions_grid(results: list[RowResult]) -> Grid:
    found = {n for rr in results for r in rr.records for n in r.get("complexity", {})}
    names = [n for n in CONVENTIONS if n in found] + sorted(found - set(CONVENTIONS))
    rows = []
    for rr in results:
        if rr.row.quoted and rr.row.peer is None:
            continue
        vals = [f"{fmt.count_exact(rr.complexity(n, 'params'))} / {fmt.macs_g(rr.complexity(n, 'multi_adds'))}"
                if rr.complexity(n, "params") is not None else fmt.DASH for n in names]
        rows.append((_counted_label(rr), [], vals, ""))
    labels = {}
    for rr in results:
        for r in rr.records:
            for n, c in r.get("complexity", {}).items():
                # a peer's own rule is labelled per method: the column says what the convention is
                generic = n in CONVENTIONS and CONVENTIONS[n].peers_only
                labels.setdefault(n, CONVENTIONS[n].label if generic else c.get("label", n))
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
               "sign; \"reversed\": the ablation's conclusion does not reproduce; \"no sign\": ours is under "
               "half the 0.01 dB the paper prints, or within one std of 0 over seeds"
               + ("." if judged else "; not judged here (this section's training or data is not the paper's)."))
    return Grid("Does the ablation hold?", [f"{d} PSNR gap" for d in datasets], ["against"], rows, caption)


PSNR_PRINTED_DB = 0.01  # the paper prints PSNR to two decimals


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
    if abs(gap.mean) < PSNR_PRINTED_DB / 2:  # rounds to +0.00 where the paper prints its scores
        return Cell(f"{paper:+.2f}", ours, "no sign (under 0.005 dB)", "na")
    if gap.std is not None and abs(gap.mean) <= gap.std:
        return Cell(f"{paper:+.2f}", ours, "no sign (within the seeds' std)", "na")
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
    caption = ("The paper's memory is GPU memory (its M) and its time a GPU forward; ours, in MiB (M) and seconds: "
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


# Released weights are the authors' trained networks: their Set5 scores must come within these of
# the printed ones (a protocol's or a dataset version's difference is a few hundredths of a dB at most).
RELEASED_TOLERANCE = Tolerance(psnr=0.02, ssim=0.001)


def _psnr3(v) -> str:
    return fmt.DASH if v is None else f"{v:.3f}"


def _released_cells(row: Row, scores: dict | None, dataset: str, tolerance: Tolerance) -> list:
    printed = row.paper.metrics.get(dataset) or (None, None)
    scores = scores or {}
    return [fmt.absolute_cell(printed[0], scores.get("psnr"), tolerance.psnr, _psnr3, " dB"),
            fmt.absolute_cell(printed[1], scores.get("ssim"), tolerance.ssim, fmt.ssim)]


def released_grid(table: Table, results: list[RowResult], tolerance: Tolerance = RELEASED_TOLERANCE) -> Grid:
    """Printed | re-scored | delta of each rebuilt row scored from its released weights, by the
    suite's default protocol, judged against ``tolerance``."""
    sets = list(dict.fromkeys(d for rr in results for r in rr.records for d in r.get("metrics", {})))
    rows = []
    for rr in results:
        if not rr.records:
            continue
        metrics = rr.records[0]["metrics"]
        cells = [c for d in sets for c in _released_cells(rr.row, metrics.get(d), d, tolerance)]
        rows.append((f"{rr.row.id} (released weights)", cells, [rr.records[0].get("weights", {}).get("file", "")], ""))
    return Grid("Released weights, re-scored", [f"{d} {m}" for d in sets for m in ("PSNR", "SSIM")],
                ["weights"], rows,
                f"The authors' released weights, loaded strictly into the rebuilt network and scored by the suite "
                f"(MATLAB bicubic LR, uint8 output, Y channel unrounded, `scale` border pixels cropped, SSIM as "
                f"MATLAB ssim_index: protocol matlab). Nothing was trained: these are the published networks' "
                f"scores, not reproductions. Judged against ±{tolerance.psnr:g} dB and ±{tolerance.ssim:g}.")


def protocols_grid(results: list[RowResult], tolerance: Tolerance = RELEASED_TOLERANCE) -> Grid:
    """Each re-scored row's PSNR / SSIM on its first dataset under every evaluation protocol, beside
    the printed numbers: which protocol reproduces them, measured."""
    from cfin.protocols import PROTOCOLS

    scored = [rr for rr in results if rr.records]
    if not scored:
        return Grid("Evaluation protocols", [], [], [])
    names = list(PROTOCOLS)
    rows, dataset = [], None
    for rr in scored:
        metrics = rr.records[0]["metrics"]
        dataset = dataset or next(iter(metrics))
        m = metrics.get(dataset, {})
        by = {m.get("protocol", "matlab"): m, **m.get("protocols", {})}
        cells = [c for n in names for c in _released_cells(rr.row, by.get(n), dataset, tolerance)]
        rows.append((f"{rr.row.id} (released weights)", cells, [], ""))
    caption = (f"{dataset} scored under each protocol of cfin.protocols on the same SR images: "
               + " ".join(f"{p.name}: {p.label} ({p.used_by})." for p in PROTOCOLS.values()))
    return Grid("Evaluation protocols", [f"{dataset} {m} ({n})" for n in names for m in ("PSNR", "SSIM")],
                [], rows, caption)
