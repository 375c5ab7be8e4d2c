"""One training and the rows that share it: the unit of work a launcher runs (STYLE.md point 10).

Rows that train the same network with the same recipe share one run folder
(:func:`cfin.runner.jobs.training_owners`): CFIN and CFIN+ of one table, the full CFIN of
Tables I, II and X. A :class:`TrainingJob` runs them in order in one process (or in the tasks of
one multi-GPU Slurm job): the first trains, the others resume the finished run and are scored.
It is a picklable callable, the same whichever launcher runs it: a worker of the local pool
(:mod:`cfin.runner.parallel`) or a Slurm job through submitit (:mod:`cfin.runner.slurm`), whose
:meth:`TrainingJob.checkpoint` submitit calls when Slurm warns the job of its end.
"""
from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass

from cfin.errors import CFINError
from cfin.runner.jobs import RowJob
from cfin.runner.row import Outcome, run_row
from cfin.runner.team import current, follow, joined
from cfin.train.trainer import TrainingInterrupted


class RowsFailed(Exception):
    """Under Slurm, a training job with a failed row ends in error (its Slurm state FAILED), after
    its other rows ran; the message names each failed row and why."""


def run_safely(job: RowJob, progress: bool) -> Outcome:
    """:func:`run_row`, a failure turned into a ``failed`` outcome saying why: a bug or a crash in
    one row must not take the others down. In a job of several tasks a failure is the job's (the
    other tasks may be waiting in a collective): it is raised."""
    team = current()
    if team is not None and team.distributed:
        return run_row(job, progress)
    try:
        return run_row(job, progress)
    except TrainingInterrupted:
        raise
    except CFINError as e:
        return Outcome(job.name, "failed", job.record_path, detail=str(e))
    except Exception as e:
        tail = "".join(traceback.format_exception(e)[-3:]).strip()
        return Outcome(job.name, "failed", job.record_path, detail=f"{type(e).__name__}: {e}\n{tail}")


@dataclass(frozen=True)
class TrainingJob:
    """The rows that share one training, run in order; calling it returns their outcomes.

    Args:
        rows: the row jobs, all of one run folder, in the plan's order.
        progress: show the rows' progress bars.
        threads: torch's threads in this process (the local pool shares the cores out); None:
            ``SLURM_CPUS_PER_TASK`` in a Slurm job, else torch's default.
    """

    rows: tuple[RowJob, ...]
    progress: bool = False
    threads: int | None = None

    def __post_init__(self):
        if not self.rows or len({row.run_dir for row in self.rows}) != 1:
            raise CFINError("a training job takes the rows of one run folder (one training), at least one")

    @property
    def run_dir(self):
        return self.rows[0].run_dir

    @property
    def name(self) -> str:
        return self.rows[0].name + (f" (+{len(self.rows) - 1} row(s) sharing its training)" if len(self.rows) > 1
                                    else "")

    def __call__(self) -> list[Outcome]:
        with joined(self.threads, self.rows[0].device) as team:
            if not team.is_main:
                follow(team)
                return []
            outcomes = []
            for row in self.rows:
                try:
                    outcomes.append(run_safely(row, self.progress))
                except TrainingInterrupted:
                    team.requeue()  # submitit checkpoints this call, requeues the job and exits
                    raise
                if outcomes[-1].status == "failed" and team.slurm:
                    print(f"failed: {row.name}: {outcomes[-1].detail}", file=sys.stderr, flush=True)
            team.announce(None)
        failed = [o for o in outcomes if o.status == "failed"]
        if failed and team.slurm:
            raise RowsFailed("; ".join(f"{o.name}: {o.detail}" for o in failed))
        return outcomes

    def checkpoint(self):
        """What submitit runs when the requeued job starts again: this same call (the rows recorded
        are skipped, the training resumes from its ``last.pt``)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)
