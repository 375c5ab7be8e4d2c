"""The processes of one training job (:class:`cfin.runner.group.TrainingJob`), and Slurm's warning.

A job runs as one process (a worker of the local pool, a one-task Slurm job) or as the N tasks
of a Slurm job with N GPUs. Those train together with DDP, as ``torchrun`` would start them:
each task's rank, world size, local rank and the rendezvous (the job's first node, a port drawn
from the job id) come from Slurm's variables (``submitit.helpers.TorchDistributedEnvironment``),
and :mod:`cfin.train.distributed` takes the process group from there. Task 0 leads: it decides
which rows run, as a worker of the local pool does, evaluates, measures and writes the records;
before each training it announces the row (:meth:`Team.announce`), and the other tasks build
the same network and data and join that training (:func:`follow`).

Under submitit, Slurm's warning signal (``USR2``, ``--signal`` seconds before the time limit,
or sent by a preemption or ``scancel --signal=USR2``) is deferred while a row trains: the
training stops after its current iteration, writes ``last.pt`` there, and only then does
submitit checkpoint the job (the same call again) and requeue it; the requeued job skips the
rows already recorded and resumes the training from that checkpoint. Outside a training the
signal goes to submitit at once.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import signal
import sys

from cfin.runner.jobs import RowJob

# How long the other tasks of a multi-GPU job wait for the next announcement (task 0 evaluates
# and measures a row between two trainings: minutes) or for a collective.
FOLLOWER_TIMEOUT = _dt.timedelta(hours=2)


_current = None  # the Team of this process while a training job runs (joined)


def current():
    """This process's :class:`Team` while a training job runs in it (:func:`joined`), else None: the
    process group, like torch.distributed's default group, is the process's."""
    return _current


def under_slurm() -> bool:
    """Whether this process is a task of a job submitit started on Slurm."""
    return os.environ.get("SUBMITIT_EXECUTOR") == "slurm"


class Team:
    """This process's place among the tasks of its job, and the deferred warning signal.

    Args:
        rank: this task's rank (0 leads).
        size: how many tasks train together (1: no process group).
        slurm: whether the job runs under Slurm through submitit.
    """

    def __init__(self, rank: int = 0, size: int = 1, slurm: bool = False):
        self.rank, self.size, self.slurm = rank, size, slurm
        self._warned = False
        self._deferring = False
        self._submitit_handler = None  # submitit's handler of the warning signal, once deferred

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    # -- Slurm's warning -------------------------------------------------------------------
    def should_stop(self) -> bool:
        """Whether Slurm warned this task during the training now running (``train(should_stop=)``)."""
        return self._warned

    def _on_warning(self, signum, frame) -> None:
        if self._deferring:
            print(f"slurm: signal {signal.Signals(signum).name}: the training stops after this iteration, "
                  f"checkpoints there, and the job requeues itself", file=sys.stderr, flush=True)
            self._warned = True
        elif self._submitit_handler is not None:
            self._submitit_handler(signum, frame)

    @contextlib.contextmanager
    def training(self):
        """Inside, Slurm's warning stops the training at its next iteration (:meth:`should_stop`).
        A warning that came as the training ended (no iteration left to stop after) requeues the job
        on leaving, before the row is scored: scoring may take longer than the warning leaves."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._warned and self.is_main:
            self.requeue()

    def requeue(self) -> None:
        """After a training stopped on Slurm's warning: submitit checkpoints the job (the same call)
        and requeues it, and this process exits (task 0); another task returns, to end."""
        if self._submitit_handler is not None:
            self._submitit_handler(_warning_signal(), None)

    # -- the tasks of a multi-GPU job ------------------------------------------------------
    def announce(self, job: RowJob | None) -> None:
        """Task 0: tell the other tasks which row to train next (None: no more)."""
        if self.distributed:
            import torch.distributed as dist

            dist.broadcast_object_list([job], src=0)

    def next_training(self) -> RowJob | None:
        """Another task: the row task 0 trains next (None: no more)."""
        import torch.distributed as dist

        box = [None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def _warning_signal() -> signal.Signals:
    from submitit import JobEnvironment

    return JobEnvironment._usr_sig()


@contextlib.contextmanager
def joined(threads: int | None = None, device: str | None = None):
    """This process's :class:`Team` for the ``with`` block: torch's threads set (``threads``, else
    ``SLURM_CPUS_PER_TASK`` under Slurm), Slurm's warning deferred, and for a job of several tasks
    the process group joined (NCCL on CUDA, gloo on CPU; ``device`` is the rows' ``--device``)."""
    import torch

    slurm = under_slurm()
    if threads is None and slurm and os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        threads = int(os.environ["SLURM_CPUS_PER_TASK"])
    if threads:
        torch.set_num_threads(threads)
    team = Team(slurm=slurm)
    previous = None
    if slurm:
        sig = _warning_signal()
        previous = signal.getsignal(sig)
        team._submitit_handler = previous if callable(previous) else None
        signal.signal(sig, team._on_warning)
    global _current
    group, outer = False, _current
    try:
        if slurm and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
            team.rank, team.size = _join_group(device)
            group = True
        _current = team
        yield team
    finally:
        _current = outer
        if group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
        if slurm and previous is not None:
            signal.signal(_warning_signal(), previous)


def _join_group(device: str | None) -> tuple[int, int]:
    """Join the job's tasks (torchrun's variables set from Slurm's); (rank, world size)."""
    import torch
    import torch.distributed as dist
    from submitit.helpers import TorchDistributedEnvironment

    from cfin.device import resolve_device

    env = TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    cuda = resolve_device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(env.local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo", init_method="env://", timeout=FOLLOWER_TIMEOUT)
    return env.rank, env.world_size


def follow(team: Team) -> None:
    """Another task than 0: train each row task 0 announces, with it, until it says no more."""
    from cfin.runner.row import train_row
    from cfin.train.trainer import TrainingInterrupted

    while (job := team.next_training()) is not None:
        try:
            train_row(job, progress=False)
        except TrainingInterrupted:
            team.requeue()  # submitit leaves the requeue to task 0
            return
