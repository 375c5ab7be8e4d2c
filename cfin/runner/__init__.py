"""Reproduce paper tables: plan one job per (table, row, seed), train, evaluate, measure, record.

``run_all.py`` parses the command line and calls :func:`cfin.runner.command.run`, which runs each
of its modes; :func:`plan_jobs` and :func:`run_jobs` plan and run the rows.
"""
from cfin.records import dataset_label
from cfin.runner.jobs import RowJob, budget_recipe, plan_jobs
from cfin.runner.parallel import run_jobs
from cfin.runner.row import Outcome, run_row
from cfin.train.recipes import check_budget

__all__ = ["RowJob", "Outcome", "budget_recipe", "check_budget", "dataset_label", "plan_jobs", "run_jobs",
           "run_row"]
