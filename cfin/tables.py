"""The schema of a paper table as data (one module per table in ``ablations/``).

A :class:`Table` holds its rows; a :class:`Row` holds the CFIN variant that reproduces it
(``config``; None for a quoted row of another method), the paper's printed numbers
(:class:`PaperNumbers`), a per-row :class:`Tolerance` and a note. Counts are plain
integers (177.8K is 177_800; 4.1105G is 4_110_500_000).
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field

from cfin.config import CFINConfig
from cfin.errors import CFINError, choice_error

# paper id -> module in ablations/
TABLE_MODULES = {
    "I": "ablations.table_01_sota",
    "II": "ablations.table_02_transformers",
    "III": "ablations.table_03_mask",
    "IV": "ablations.table_04_gumbel",
    "V": "ablations.table_05_ciam",
    "V-A.2": "ablations.table_05a_branch",
    "VI": "ablations.table_06_cgm",
    "VII": "ablations.table_07_cfgt",
    "VIII": "ablations.table_08_num_cfgt",
    "IX": "ablations.table_09_onlyt",
    "X": "ablations.table_10_hybrid",
}


@dataclass(frozen=True)
class PaperNumbers:
    """What the paper prints for a row; None where it prints nothing.

    ``metrics`` maps a dataset name ("Set5", "Set14", "B100", "Urban100", "Manga109") to
    ``(psnr, ssim)``, ssim None where only PSNR is printed. ``printed`` keeps the counts'
    text as the paper prints it (``{"params": "178K", "multi_adds": "171.0G"}``), which the
    numbers alone cannot give back (178K is 178.0K to a formatter).
    """

    params: int | None = None
    multi_adds: int | None = None
    memory_mb: float | None = None
    time_s: float | None = None
    metrics: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    printed: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, fallback) -> str:
        """The printed text of ``name`` ("params", "multi_adds", "memory_mb", "time_s"), else
        ``fallback(value)``."""
        return self.printed.get(name) or fallback(getattr(self, name))


@dataclass(frozen=True)
class Tolerance:
    """How far ours may be from the printed number (relative for counts, dB / absolute for metrics)."""

    params: float = 0.02
    multi_adds: float = 0.03
    psnr: float = 0.1
    ssim: float = 0.002


@dataclass(frozen=True)
class Row:
    """One row of a paper table.

    Args:
        id: the row's label as printed ("CFIN+RCAB", "KV+Cross", "x4 CFIN+").
        config: the CFIN variant; None for a quoted row (another paper's method).
        paper: the printed numbers.
        quoted: True for rows we do not reproduce (other methods): shown, never passed off as ours.
        self_ensemble: evaluate with the x8 self-ensemble (CFIN+).
        tolerance: per-row tolerance.
        note: how the config was found, where a deviation is understood; for a peer row, which
            counting reproduces its printed Params / Multi-Adds.
        peer: a quoted row whose network is rebuilt (:mod:`cfin.peers`): its registry name. Its
            counts are measured beside the printed ones; its accuracy stays quoted (nothing is
            trained), or is re-scored from released weights (``run_all.py --peer-weights``).
    """

    id: str
    config: CFINConfig | None
    paper: PaperNumbers
    quoted: bool = False
    self_ensemble: bool = False
    tolerance: Tolerance = Tolerance()
    note: str = ""
    peer: str | None = None

    def __post_init__(self):
        if self.config is None and not self.quoted:
            raise CFINError(f"row {self.id!r}: a row without a config must be quoted")
        if self.peer is not None and not self.quoted:
            raise CFINError(f"row {self.id!r}: a peer network belongs to a quoted row (another method's)")


@dataclass(frozen=True)
class Table:
    """A paper table: its rows, what to train and evaluate, and notes.

    Args:
        id: as printed in the paper ("VII").
        title: the caption.
        scale: the scale of its rows (None when rows differ, as in Table I).
        rows: the rows, in the paper's order.
        datasets: the benchmark datasets its accuracy columns use.
        recipe: the training recipe name its rows use at the paper budget ("paper").
        notes: how the configs were found; what is understood about deviations.
    """

    id: str
    title: str
    scale: int | None
    rows: tuple[Row, ...]
    datasets: tuple[str, ...]
    recipe: str = "paper"
    notes: str = ""

    def row(self, row_id: str) -> Row:
        for r in self.rows:
            if r.id == row_id:
                return r
        raise choice_error(f"row of Table {self.id}", row_id, [r.id for r in self.rows])

    @property
    def reproducible_rows(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if not r.quoted)

    @property
    def peer_rows(self) -> tuple[Row, ...]:
        """Quoted rows whose network is rebuilt (:mod:`cfin.peers`)."""
        return tuple(r for r in self.rows if r.peer is not None)

    def row_scale(self, row: Row) -> int | None:
        """A row's scale: its config's, the table's, or a quoted row's "x2 ..." label in a mixed-scale table."""
        if row.config is not None:
            return row.config.scale
        if self.scale is not None:
            return self.scale
        m = re.match(r"x(\d+)\b", row.id)
        return int(m[1]) if m else None


def table_ids() -> list[str]:
    return list(TABLE_MODULES)


def get_table(table_id: str) -> Table:
    """The table with paper id ``table_id`` (e.g. "VII"); CFINError listing the valid ids."""
    key = str(table_id).strip()
    key = key.upper() if key.upper() in TABLE_MODULES else key
    if key not in TABLE_MODULES:
        raise choice_error("table", table_id, TABLE_MODULES)
    module = importlib.import_module(TABLE_MODULES[key])
    return module.TABLE


def all_tables() -> list[Table]:
    return [get_table(t) for t in TABLE_MODULES]
