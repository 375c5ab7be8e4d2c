"""Run row jobs one after another, or ``jobs`` at a time in spawned processes (one per GPU on CUDA).

Each row writes its own record; rows that share a training (one run folder,
:mod:`cfin.runner.jobs`) run in order in one worker, as one :class:`~cfin.runner.group.TrainingJob`
(what a Slurm job runs too, :mod:`cfin.runner.slurm`). On CPU the cores are shared out
(``torch.set_num_threads(cores // jobs)`` in each worker); on CUDA with several GPUs the jobs
are dealt round-robin to ``cuda:0 .. cuda:N-1`` unless the device names one GPU. A failing
row is reported and the others go on.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from multiprocessing import get_context

from tqdm.auto import tqdm

from cfin.errors import CFINError
from cfin.runner.group import TrainingJob, run_safely
from cfin.runner.jobs import RowJob
from cfin.runner.row import Outcome, needs_run


def assign_devices(jobs: list[RowJob], device: str | None) -> list[RowJob]:
    """Jobs with a GPU each (round-robin) when ``device`` is ``cuda``/None and several GPUs exist."""
    import torch

    if device not in (None, "auto", "cuda") or not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return jobs
    n = torch.cuda.device_count()
    return [dataclasses.replace(job, device=f"cuda:{i % n}") for i, job in enumerate(jobs)]


def training_groups(todo: list[tuple[int, RowJob]]) -> list[list[tuple[int, RowJob]]]:
    """``todo`` grouped by run folder, in order: the jobs that share a training (CFIN and
    CFIN+, ...) run one after another in one worker (one :class:`TrainingJob`); the first
    trains, the others resume the finished run."""
    groups: dict = {}
    for i, job in todo:
        groups.setdefault(job.run_dir, []).append((i, job))
    return list(groups.values())


def _run_training(indices: list[int], training: TrainingJob) -> list[tuple[int, Outcome]]:
    return list(zip(indices, training()))


def _call(task):
    fn, args = task
    return fn(*args)


def _worker_init() -> None:
    """A worker's progress bars lock with a thread lock: tqdm's default also makes a named
    multiprocessing semaphore, which a worker terminated by an interrupt cannot release (the
    resource tracker would warn of it as leaked). And the worker ends with the command
    (:func:`_exit_with_parent`)."""
    import threading

    tqdm.set_lock(threading.RLock())
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int, every: float = 0.5) -> None:
    """End this worker once the command that spawned it is gone: killed by SIGKILL, which it cannot
    pass on, it would otherwise leave the worker training its row unseen and writing the record
    (checkpoints and records are atomic, so a rerun resumes where the worker stopped)."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def in_worker_processes(fn, arg_tuples: list[tuple], workers: int):
    """``fn(*args)`` for each of ``arg_tuples`` in ``workers`` spawned processes, yielding the
    results as they finish. Interrupted (Ctrl-C, or SIGTERM where the caller turns it into
    KeyboardInterrupt), the workers are terminated at once: no row goes on training, or writes
    a record, after the command has stopped (checkpoints and records are atomic, so a rerun
    resumes where each stopped)."""
    pool = get_context("spawn").Pool(workers, initializer=_worker_init)
    try:
        yield from pool.imap_unordered(_call, [(fn, args) for args in arg_tuples])
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def run_jobs(jobs: list[RowJob], n_jobs: int = 1, progress: bool = True) -> list[Outcome]:
    """Run ``jobs`` (``n_jobs`` at a time, jobs sharing a training in one worker); the outcomes
    in the jobs' order."""
    if n_jobs < 1:
        raise CFINError(f"--jobs must be a positive integer, got {n_jobs}")
    todo = [(i, j) for i, j in enumerate(jobs) if needs_run(j)]
    outcomes: dict[int, Outcome] = {i: Outcome(j.name, "skipped", j.record_path) for i, j in enumerate(jobs)}
    groups = training_groups(todo)
    bar = tqdm(total=len(todo), desc="rows", unit="row", disable=not progress or len(todo) < 2)
    try:
        if n_jobs == 1 or len(groups) <= 1:
            for i, job in todo:
                bar.set_postfix_str(job.name)
                outcomes[i] = run_safely(job, progress)
                bar.update()
        else:
            workers = min(n_jobs, len(groups))
            threads = None if todo[0][1].device and str(todo[0][1].device).startswith("cuda") \
                else max(1, (os.cpu_count() or 1) // workers)
            trainings = [([i for i, _ in group], TrainingJob(tuple(job for _, job in group), False, threads))
                         for group in groups]
            results = in_worker_processes(_run_training, trainings, workers)
            with contextlib.closing(results):  # interrupted, the workers stop here, not at exit
                for done in results:
                    for i, outcome in done:
                        outcomes[i] = outcome
                        bar.set_postfix_str(outcome.name)
                        bar.update()
    finally:
        bar.close()
    return [outcomes[i] for i in range(len(jobs))]
