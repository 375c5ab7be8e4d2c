"""run_all.py's trainings as Slurm jobs through submitit (``--launcher slurm``).

Each training (a :class:`~cfin.runner.group.TrainingJob`: one run folder and the rows that share
it) is one job, submitted with ``sbatch`` by submitit's executor: N GPUs make N tasks that train
with DDP (:mod:`cfin.runner.team`). The job writes records, checkpoints and logs where the local
pool would (``--results``, ``--runs``, atomically). What was submitted, its states and its ends:
:mod:`cfin.runner.slurm_jobs`.
"""
from __future__ import annotations

import datetime as _dt
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cfin.atomic import atomic_write_json
from cfin.errors import CFINError
from cfin.runner.group import TrainingJob
from cfin.runner.slurm_jobs import ACTIVE, SLURM_DIR, Submission, ledger_path, read_ledger, squeue_states
WARNING_S = 120  # Slurm warns a job (USR2) this long before its time limit: time to checkpoint


@dataclass(frozen=True)
class SlurmOptions:
    """How each training is submitted (run_all.py's ``--slurm-*`` options).

    Args:
        partition: the partition (None: the cluster's default).
        gpus: GPUs per job (0: a CPU job). A job with N GPUs runs N tasks that train with DDP.
        cpus: CPUs per job, shared evenly by its tasks (None: per task, one more than the
            recipe's DataLoader workers).
        time_min: each job's time limit in minutes; warned :data:`WARNING_S` before it, a job
            checkpoints and requeues itself.
        sbatch: further sbatch options (``--slurm-args``), each ``--name=value`` or ``--flag``.
        tasks: processes per job (None: one per GPU, at least one); several train with DDP.
        max_requeues: how many times a job that reached its time limit is requeued (preemptions
            do not count).
        poll_s: the longest wait between two looks at the queue (the first come sooner).
    """

    partition: str | None = None
    gpus: int = 1
    cpus: int | None = None
    time_min: int = 24 * 60
    sbatch: tuple[str, ...] = ()
    tasks: int | None = None
    max_requeues: int = 100
    poll_s: float = 30.0

    def __post_init__(self):
        for name, low in (("gpus", 0), ("cpus", 1), ("time_min", 1), ("tasks", 1), ("max_requeues", 0)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                flag = {"gpus": "--slurm-gpus-per-job", "cpus": "--slurm-cpus-per-job", "time_min": "--slurm-time"}
                raise CFINError(f"{flag.get(name, name)} takes an integer >= {low}, got {value!r}")
        sbatch_parameters(self.sbatch)  # checked here, before anything is submitted

    @property
    def task_count(self) -> int:
        return self.tasks or max(1, self.gpus)

    def parameters(self, training: TrainingJob) -> dict:
        """submitit's SlurmExecutor parameters for ``training``."""
        tasks = self.task_count
        recipe = training.rows[0].recipe
        if recipe.batch_size % tasks:
            raise CFINError(f"{training.name}: its recipe's batch of {recipe.batch_size} does not split evenly over "
                            f"{tasks} tasks (one per GPU); give --slurm-gpus-per-job a divisor of it")
        if self.cpus is not None and self.cpus % tasks:
            raise CFINError(f"--slurm-cpus-per-job {self.cpus} does not split evenly over the {tasks} tasks of a job "
                            f"(one per GPU); give a multiple of {tasks}")
        cpus_per_task = self.cpus // tasks if self.cpus is not None else 1 + recipe.num_workers
        folder = training.run_dir.relative_to(training.rows[0].runs).parent  # <table>/<row> of the training
        params = {"job_name": f"cfin {folder.as_posix()}", "time": self.time_min,
                  "nodes": 1, "ntasks_per_node": tasks, "cpus_per_task": cpus_per_task,
                  "signal_delay_s": WARNING_S, "srun_args": ["--kill-on-bad-exit=1"],
                  "additional_parameters": {"chdir": os.getcwd(), **sbatch_parameters(self.sbatch)}}
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if self.partition:
            params["partition"] = self.partition
        return params


def sbatch_parameters(args: tuple[str, ...] | list[str]) -> dict:
    """``--slurm-args`` as sbatch parameters: ``--account=X`` -> ``{"account": "X"}``, ``--exclusive``
    -> ``{"exclusive": True}``; a CFINError for any other form."""
    out = {}
    for arg in args:
        name, eq, value = arg.partition("=")
        if not name.startswith("--") or len(name) < 3 or " " in name:
            raise CFINError(f"--slurm-args takes sbatch options as --name=value or --flag (e.g. "
                            f"--slurm-args \"--account=lab --qos=high\"), got {arg!r}")
        out[name[2:]] = value if eq else True
    return out


def split_sbatch_args(text: str | None) -> tuple[str, ...]:
    """``--slurm-args "..."`` split as a shell would."""
    try:
        return tuple(shlex.split(text or ""))
    except ValueError as e:
        raise CFINError(f"--slurm-args {text!r} cannot be split into options ({e})") from None


def check_slurm() -> None:
    """A CFINError unless Slurm's commands are here (a cluster's login node)."""
    missing = [c for c in ("sbatch", "squeue", "srun") if shutil.which(c) is None]
    if missing:
        raise CFINError(f"--launcher slurm needs Slurm's commands, but {', '.join(missing)} is not on PATH; run on "
                        f"the cluster's login node (or start a single-node Slurm here: sudo bash "
                        f"tools/slurm_local.sh start)")


def check_device(device: str | None, gpus: int) -> None:
    """The rows' --device fits the jobs' GPUs: ``cpu`` with 0 GPUs; ``cuda`` (or none) with some."""
    if device not in (None, "cpu", "cuda"):
        raise CFINError(f"--device {device} with --launcher slurm: give cuda (each task takes its GPU) or cpu")
    if device == "cpu" and gpus:
        raise CFINError(f"--device cpu would leave the {gpus} GPU(s) of each job unused; give "
                        f"--slurm-gpus-per-job 0 for CPU jobs")
    if device == "cuda" and not gpus:
        raise CFINError("--device cuda with --slurm-gpus-per-job 0: the jobs would have no GPU")


def _folder(runs: Path) -> Path:
    return Path(runs).absolute() / SLURM_DIR


def submit(trainings: list[TrainingJob], options: SlurmOptions, active: dict[str, tuple] | None = None
           ) -> list[Submission]:
    """Submit each training as one job, in order; one whose ledger names a job still queued or
    running (``active``: :func:`squeue_states` of the ledgers' jobs, looked up here when None) is
    not submitted again but waited on, unless forced. A CFINError with sbatch's words where it
    refuses one."""
    import submitit

    check_slurm()
    entries = [read_ledger(t) for t in trainings]
    if active is None:
        active = squeue_states([e["job_id"] for e in entries if e])
    out = []
    for training, entry in zip(trainings, entries):
        if entry and active.get(entry["job_id"], ("",))[0] in ACTIVE and not training.rows[0].force:
            out.append(Submission(training, entry["job_id"], Path(entry["folder"]), attached=True))
            continue
        executor = submitit.SlurmExecutor(folder=_folder(training.rows[0].runs) / "%j",
                                          max_num_timeout=options.max_requeues)
        executor.update_parameters(**options.parameters(training))
        try:
            with submitit.helpers.clean_env():  # submitted from inside a job, it would inherit that job's
                job = executor.submit(training)
        except (subprocess.CalledProcessError, submitit.core.utils.FailedJobError, OSError) as e:
            raise CFINError(f"sbatch refused the job of {training.name}: {str(e).strip()}") from None
        submission = Submission(training, str(job.job_id), Path(job.paths.folder))
        atomic_write_json(ledger_path(training), {
            "job_id": submission.job_id, "folder": str(submission.folder),
            "submitted": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "rows": [row.name for row in training.rows], "records": [str(row.record_path) for row in training.rows],
            "stderr": str(submission.stderr), "tasks": options.task_count, "gpus": options.gpus})
        out.append(submission)
    for link in {_folder(t.rows[0].runs) for t in trainings}:  # submitit's links to the scripts it moved
        for path in link.glob(".submission_file_*.sh"):
            if path.is_symlink():
                path.unlink(missing_ok=True)
    return out


def render_plan(trainings: list[TrainingJob], options: SlurmOptions, recorded: int = 0) -> str:
    """``--dry-run``: the jobs ``--launcher slurm`` would submit, and their cost: the iterations
    their recipes train and the hours of those steps at a training step timed here
    (:func:`cfin.runner.measure.training_step_seconds`): GPU-hours where this machine has a GPU,
    CPU-hours for CPU jobs (with the job's threads); GPU jobs planned on a machine without a GPU
    get no hours (a CPU's step says nothing of a GPU's)."""
    import torch

    from cfin.device import resolve_device
    from cfin.runner.measure import training_step_seconds

    device = resolve_device("cpu" if not options.gpus else None)  # CUDA where there is one
    timed = device.type == "cuda" or not options.gpus
    unit = "GPU" if device.type == "cuda" else "CPU"
    lines = [f"--launcher slurm would submit {len(trainings)} job(s) for "
             f"{sum(len(t.rows) for t in trainings)} row(s) ({recorded} row(s) recorded already, not run):"]
    total_it, total_h = 0, 0.0
    for t in trainings:
        params = options.parameters(t)
        rec = t.rows[0].recipe
        total_it += rec.iterations
        cost = ""
        if timed:
            threads = torch.get_num_threads()
            if device.type == "cpu":  # as many threads as the job's task will have (no more than here)
                torch.set_num_threads(min(params["cpus_per_task"], os.cpu_count() or 1))
            try:
                seconds = training_step_seconds(t.rows[0].row.config, rec, device, t.rows[0].impl)
            finally:
                torch.set_num_threads(threads)
            total_h += rec.iterations * seconds / 3600
            cost = f"; {seconds * 1e3:.0f} ms a step here: {_hours(rec.iterations * seconds / 3600)} {unit}-hours"
        resources = (f"{params['ntasks_per_node']} task(s) x {params['cpus_per_task']} CPU(s), "
                     f"{params.get('gpus_per_node', 0)} GPU(s), {params['time']} min limit")
        lines.append(f"  {params['job_name']}: {rec.iterations:,} iterations of recipe {rec.name} "
                     f"(batch {rec.batch_size} of {rec.patch_size}x{rec.patch_size}); {resources}{cost}")
        lines.extend(f"      {row.name}" for row in t.rows)
    if timed:
        lines.append(f"in all: {total_it:,} training iterations, about {_hours(total_h)} {unit}-hours of training "
                     f"steps (validation and scoring not counted; each step timed on {device} at its recipe's batch "
                     f"with one task: DDP over N GPUs is taken to share a step's work evenly)")
    else:
        lines.append(f"in all: {total_it:,} training iterations; no GPU here to time a step: run the same command "
                     f"with --dry-run where one is (e.g. srun --gpus=1 --pty python run_all.py ...) for the "
                     f"GPU-hours")
    extra = [f"--partition={options.partition}"] if options.partition else []
    extra += [f"--{k}={v}" if v is not True else f"--{k}" for k, v in sbatch_parameters(options.sbatch).items()]
    if extra:
        lines.append(f"sbatch options: {' '.join(extra)}")
    return "\n".join(lines)


def _hours(hours: float) -> str:
    return f"{hours:,.1f}" if hours >= 0.1 else f"{hours:.2g}"
