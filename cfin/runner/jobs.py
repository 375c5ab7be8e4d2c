"""What to run: one :class:`RowJob` per (table, reproducible row, seed) at one budget on one dataset.

A budget is a training recipe name (:data:`cfin.train.RECIPES`: smoke, short, paper, paper-text). At the
``paper`` budget a row trains with its table's own recipe (``Table.recipe``); the shorter
budgets shrink every table alike. The dataset is ``embedded`` (the bundled pictures: train
split for training, test split for evaluation) without ``--data-root``, ``div2k`` with one
(DIV2K 1-800 for training, the table's benchmarks for evaluation).

Rows that train the same network with the same recipe on the same data share one training:
CFIN+ is CFIN evaluated with the self-ensemble, and the full CFIN is a row of Tables I, II
and X. Such a row trains in the run folder of the first row (in the paper's order, over every
table) with that training (:func:`training_owners`; ``run_all.py --list`` names them).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cfin.config import impl_switches
from cfin.errors import CFINError
from cfin.records import EMBEDDED, RecordKey, config_hash, dataset_label, row_slugs
from cfin.tables import Row, Table, all_tables
from cfin.train import Recipe, recipe
from cfin.train.recipes import check_budget


def budget_recipe(table: Table, budget: str, seed: int) -> Recipe:
    """The recipe a row of ``table`` trains with at ``budget`` (its table's own at ``paper``)."""
    name = table.recipe if check_budget(budget) == "paper" else budget
    return recipe(name, seed=seed)


def eval_dataset_names(table: Table, data_root: str | Path | None) -> tuple[str, ...]:
    """The evaluation sets of a row: ``embedded`` without data, the table's benchmarks with it."""
    return (EMBEDDED,) if data_root is None else tuple(table.datasets)


@dataclass(frozen=True)
class RowJob:
    """One unit of work: train ``row`` of ``table`` with ``recipe``, evaluate, measure, record.

    Everything a worker process needs travels in the job (it is pickled under ``--jobs``).

    Args:
        table, row: the paper table and the reproducible row.
        recipe: the training recipe, its seed set to the job's seed.
        budget: the budget name recorded (``smoke``, ``short``, ``paper``, ``paper-text``).
        data_root: DIV2K and benchmarks folder; None for the embedded pictures.
        results: the results folder (records).
        runs: the training folder (checkpoints, logs; resumable).
        device: ``cpu``, ``cuda``, ``cuda:N``; None: CUDA when present.
        force: recompute even if the record exists (training starts over).
        command: the command line that made the record.
        slug: the row's folder name (:func:`cfin.records.row_slugs`).
        impl: the computation that trains and evaluates the row (:data:`cfin.config.IMPLS`:
            "faithful" or "fast", the same function); a record of either is the row's record.
        tf32: on CUDA, train and evaluate with TF32 matmuls and convolutions (recorded).
        trains_as: ``(table id, row slug)`` of the row whose run folder holds this row's training
            (the first row with the same training, :func:`training_owners`); empty: its own.
        shares_training: an earlier job of the same plan trains the same run folder, so
            ``force`` recomputes this row's record without starting that training over again.
        force_since: with ``force``, when the command started (``time.time()``): a record written,
            or a training advanced, since then is another command's work done while this one ran,
            and is kept (two forced commands whose tables share rows do each row once); None:
            everything there is redone.
    """

    table: Table
    row: Row
    recipe: Recipe
    budget: str
    data_root: str | None
    results: Path
    runs: Path
    device: str | None = None
    force: bool = False
    command: str = ""
    slug: str = ""
    impl: str = "faithful"
    tf32: bool = False
    trains_as: tuple[str, str] = ()
    shares_training: bool = False
    force_since: float | None = None

    @property
    def seed(self) -> int:
        return self.recipe.seed

    @property
    def key(self) -> RecordKey:
        return RecordKey(self.table.id, self.row.id, self.row.config.scale, self.seed, self.budget,
                         dataset_label(self.data_root))

    @property
    def record_path(self) -> Path:
        return self.key.path(self.results, self.slug)

    @property
    def run_dir(self) -> Path:
        """The training folder of this job (``runs/<table>/<row>/x4_seed0_smoke_embedded``), the
        folder of the row it :attr:`trains_as` where it shares that row's training."""
        table, row_slug = self.trains_as or (self.table.id, self.slug)
        return dataclasses.replace(self.key, table=table).path(self.runs, row_slug).with_suffix("")

    @property
    def name(self) -> str:
        return f"Table {self.table.id} / {self.row.id} (x{self.row.config.scale}, seed {self.seed})"


def training_key(table: Table, row: Row, budget: str) -> str:
    """What a row's training depends on besides the seed and the data: its network (config
    hash) and the recipe it trains with at ``budget``."""
    fields = {k: v for k, v in budget_recipe(table, budget, 0).to_dict().items() if k != "seed"}
    return json.dumps({"config": config_hash(row.config), "recipe": fields}, sort_keys=True, default=str)


class Owner(NamedTuple):
    """The row whose run folder holds a training: table id, row id, row slug."""

    table: str
    row: str
    slug: str


def training_owners(tables: list[Table], budget: str) -> dict[tuple[str, str], Owner]:
    """``{(table id, row id): owner}``: for every reproducible row, the first row with the same
    :func:`training_key`, in the paper's order over every table (so that a row trains in the
    same folder whichever tables a command names), then ``tables``' own rows."""
    universe = {t.id: t for t in all_tables()}
    universe.update({t.id: t for t in tables})  # a table given stands for the one of its id, in its place
    first: dict[str, Owner] = {}
    owners = {}
    for table in universe.values():
        slugs = row_slugs(table)
        for row in table.reproducible_rows:
            owners[(table.id, row.id)] = first.setdefault(training_key(table, row, budget),
                                                          Owner(table.id, row.id, slugs[row.id]))
    return owners


def plan_jobs(tables: list[Table], budget: str, seeds: list[int], data_root: str | Path | None,
              results: str | Path, runs: str | Path, device: str | None = None, force: bool = False,
              command: str = "", impl: str = "faithful", tf32: bool = False) -> list[RowJob]:
    """Every (table, reproducible row, seed) job, tables and rows in the paper's order; a row
    whose training another row shares trains in that row's folder (:func:`training_owners`)."""
    check_budget(budget)
    impl_switches(impl)  # a known implementation
    since = time.time() if force else None
    if not seeds:
        raise CFINError("no seeds given; --seeds takes one or more integers, e.g. --seeds 0 1 2")
    root = None if data_root is None else str(data_root)
    owners = training_owners(tables, budget)
    jobs, trained = [], set()
    for table in tables:
        slugs = row_slugs(table)
        for row in table.reproducible_rows:
            owner = owners[(table.id, row.id)]
            trains_as = () if owner[:2] == (table.id, row.id) else (owner.table, owner.slug)
            for seed in seeds:
                job = RowJob(table, row, budget_recipe(table, budget, seed), budget, root, Path(results),
                             Path(runs), device, force, command, slugs[row.id], impl, tf32, trains_as)
                job = dataclasses.replace(job, shares_training=job.run_dir in trained, force_since=since)
                trained.add(job.run_dir)
                jobs.append(job)
    return jobs
