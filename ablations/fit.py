"""Find the CFIN variant behind each ablation row: a grid search on the paper's counting rule.

The paper prints Params and Multi-Adds for its ablation models (Tables II-X) but not their
configs. A :class:`Search` scans a grid of config fields around a skeleton; every candidate
is counted with ``cfin.complexity.count(cfg, (180, 320), "paper")`` (the torchsummaryX rule
on the official tree, x4, LR 180 x 320 = 1280 x 720 output, meta device, about 0.3 s each)
and ranked by

    deviation = max over the search's rows of
                max(|params / printed - 1| / 2%, |multi_adds / printed - 1| / 3%)

(<= 1: every row within the target of 2% Params and 3% Multi-Adds; the Multi-Adds term is
left out where the paper prints none); ties go to the smaller sum of the terms. Rows that the
paper measured on one model (Table III's two rows; Tables VI and VII) form one search: each
row's config is the candidate skeleton plus that row's switch, the fields in which the row's
config in its table differs from the search's ``base`` (e.g. ``mask="none"``).

Grid keys are CFINConfig fields, plus ``blocks``: the number of CT blocks, whose heads follow
CFIN x4's pattern (:func:`cfin_heads`). The paper's rule does not count the CGA's omega, so
the head counts never change a paper-convention count.

Each table module keeps its ``SEARCHES`` beside its rows, with ``base`` the skeleton it
chose, and says in its notes what was scanned and found; this script reruns them::

    python -m ablations.fit --list                          # every search and its grid size
    python -m ablations.fit --table VII                     # the searches of Table VII
    python -m ablations.fit --table V --search CFIN+WDIB --top 10
"""
from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass, field, fields

from cfin.config import CFINConfig
from cfin.errors import CFINError, choice_error

LR_SIZE = (180, 320)   # x4 LR input of a 1280 x 720 output (H x W)
TOL_PARAMS = 0.02      # the target: 2% of the printed Params ...
TOL_MULTI_ADDS = 0.03  # ... and 3% of the printed Multi-Adds
HEAD_PATTERN = (8, 12, 16, 12)  # CFIN x4's heads per CFGT, repeated


def cfin_heads(blocks: int, dim: int = 144) -> tuple[int, ...]:
    """CFIN x4's heads (8, 12, 16, 12, 8, ...) for ``blocks`` CT blocks.

    Each head count is lowered to the largest divisor of ``dim`` not above it, so any width
    builds; at dim 144 and 8 blocks this is the x4 preset's heads.
    """
    heads = []
    for i in range(blocks):
        h = HEAD_PATTERN[i % len(HEAD_PATTERN)]
        while dim % h:
            h -= 1
        heads.append(h)
    return tuple(heads)


@dataclass(frozen=True)
class Search:
    """A grid of CFIN skeletons scanned for rows that share one model.

    Args:
        name: the search's name (a row id where it fits one row).
        targets: ``(table id, row id)`` pairs fitted jointly.
        base: the skeleton the table chose (the grid's candidates replace its fields).
        grid: field -> values scanned; ``blocks`` is the number of CT blocks.
        note: why this grid.
    """

    name: str
    targets: tuple[tuple[str, str], ...]
    base: CFINConfig
    grid: dict[str, tuple] = field(default_factory=dict)
    note: str = ""

    @property
    def size(self) -> int:
        n = 1
        for values in self.grid.values():
            n *= len(values)
        return n

    def candidate(self, point: dict) -> CFINConfig:
        """The skeleton at one grid point (CFINError where the point is not a valid config)."""
        changes = {k: v for k, v in point.items() if k != "blocks"}
        if "blocks" in point or "dim" in point:
            changes["heads"] = cfin_heads(point.get("blocks", self.base.num_blocks), point.get("dim", self.base.dim))
        return self.base.replace(**changes)

    def points(self):
        keys = list(self.grid)
        for values in itertools.product(*(self.grid[k] for k in keys)):
            yield dict(zip(keys, values))

    def switch(self, row_config: CFINConfig) -> dict:
        """The fields in which a row's config differs from the skeleton (outside the grid)."""
        skip = set(self.grid) | ({"heads"} if {"blocks", "dim"} & set(self.grid) else set())
        return {f.name: getattr(row_config, f.name) for f in fields(CFINConfig)
                if f.name not in skip and getattr(row_config, f.name) != getattr(self.base, f.name)}


@dataclass(frozen=True)
class Fit:
    """One candidate's counts for each target row and its deviation."""

    point: dict
    skeleton: CFINConfig
    counts: tuple[tuple[int, int], ...]   # (params, multi_adds) per target, paper convention
    terms: tuple[float, ...]              # normalised deviations (each <= 1 within target)

    @property
    def deviation(self) -> float:
        return max(self.terms)


def deviation_terms(params: int, multi_adds: int, paper) -> list[float]:
    """``|ours / printed - 1|`` over the target tolerance, for each count the paper prints."""
    terms = []
    if paper.params:
        terms.append(abs(params / paper.params - 1) / TOL_PARAMS)
    if paper.multi_adds:
        terms.append(abs(multi_adds / paper.multi_adds - 1) / TOL_MULTI_ADDS)
    return terms


def paper_count(cfg: CFINConfig) -> tuple[int, int]:
    """Params and Multi-Adds of ``cfg`` under the paper's rule at x4, 1280 x 720 output."""
    from cfin.complexity import count

    c = count(cfg, LR_SIZE, "paper")
    return c.params, c.multi_adds


def run_search(search: Search, progress: bool = True) -> list[Fit]:
    """Every valid grid point, best first."""
    from tqdm import tqdm

    from cfin.tables import get_table

    rows = [get_table(t).row(r) for t, r in search.targets]
    switches = [search.switch(r.config) for r in rows]
    fits = []
    for point in tqdm(list(search.points()), desc=search.name, disable=not progress, unit="cfg"):
        try:
            skeleton = search.candidate(point)
            configs = [skeleton.replace(**s) for s in switches]
        except CFINError:
            continue
        counts, terms = [], []
        for cfg, row in zip(configs, rows):
            try:
                p, m = paper_count(cfg)
            except (CFINError, ValueError, RuntimeError):  # a block that cannot be built at this width
                break
            counts.append((p, m))
            terms.extend(deviation_terms(p, m, row.paper))
        else:
            fits.append(Fit(point, skeleton, tuple(counts), tuple(terms)))
    fits.sort(key=lambda f: (f.deviation, sum(f.terms)))
    return fits


def all_searches() -> list[tuple[str, Search]]:
    """(table id, search) for every search of every table module."""
    import importlib

    from cfin.tables import TABLE_MODULES

    out = []
    for tid, module in TABLE_MODULES.items():
        for s in getattr(importlib.import_module(module), "SEARCHES", ()):
            out.append((tid, s))
    return out


def format_fits(search: Search, fits: list[Fit], top: int) -> str:
    """The best ``top`` candidates, one line each, and where the table's own skeleton ranks."""
    def pct(ours, printed):
        return f"{ours:,} ({ours / printed - 1:+.1%})" if printed else f"{ours:,}"

    from cfin.tables import get_table

    rows = [get_table(t).row(r) for t, r in search.targets]
    lines = [f"{search.name}: {len(fits)} valid of {search.size} grid points; grid "
             + ", ".join(f"{k}={list(v)}" for k, v in search.grid.items())]
    chosen = next((i for i, f in enumerate(fits) if f.skeleton == search.base), None)
    shown = list(range(min(top, len(fits))))
    if chosen is not None and chosen not in shown:
        shown.append(chosen)
    for i in shown:
        f = fits[i]
        mark = "  <- the table's config" if i == chosen else ""
        cells = "; ".join(f"{t}/{r}: {pct(p, row.paper.params)} params, {pct(m, row.paper.multi_adds)} MA"
                          for (t, r), (p, m), row in zip(search.targets, f.counts, rows))
        lines.append(f"  #{i + 1} dev {f.deviation:.2f}  {f.point}  {cells}{mark}")
    if chosen is None:
        lines.append("  (the table's config is not a point of this grid)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ablations.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--table", help="paper table id (I ... X, V-A.2); default: every table")
    parser.add_argument("--search", help="one search of that table, by name")
    parser.add_argument("--top", type=int, default=5, help="candidates shown per search (5)")
    parser.add_argument("--list", action="store_true", help="list the searches and their grid sizes")
    args = parser.parse_args(argv)
    try:
        from cfin.tables import get_table

        searches = all_searches()
        if args.table:
            tid = get_table(args.table).id
            searches = [(t, s) for t, s in searches if t == tid or any(tt == tid for tt, _ in s.targets)]
        if args.search:
            names = [s.name for _, s in searches]
            searches = [(t, s) for t, s in searches if s.name == args.search]
            if not searches:
                raise choice_error("search", args.search, names)
        if args.list:
            for t, s in searches:
                print(f"Table {t}: {s.name}: {s.size} grid points, rows {list(s.targets)}")
            return 0
        for _, s in searches:
            print(format_fits(s, run_search(s), args.top), flush=True)
    except CFINError as e:
        print(f"ablations.fit: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
