"""Run one :class:`~cfin.runner.jobs.RowJob`: train, evaluate, measure, write the record.

A record that exists is kept unless the job is forced. Training checkpoints to the job's
run folder, so a row interrupted mid-training resumes from its ``last.pt`` on the next call;
the record is written (atomically) only once everything is done.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from cfin.atomic import atomic_write_json
from cfin.errors import CFINError
from cfin.records import config_hash, dataset_label, read_record, write_record
from cfin.runner.jobs import RowJob, eval_dataset_names
from cfin.runner.measure import ALL_CONVENTIONS, complexity
from cfin.train.lock import LOCK_NAME, OWNER_NAME, run_lock
from cfin.train.recipes import recipe_fields

CURVE_POINTS = 1000  # at most this many training-log records are kept in a record
RUN_MARKER = "job.json"  # in the run folder: which config and recipe it trains


@dataclass(frozen=True)
class Outcome:
    """What happened to one job: ``done`` (record written), ``skipped`` (record existed) or ``failed``
    (``detail`` says why)."""

    name: str
    status: str
    path: Path
    seconds: float = 0.0
    detail: str = ""  # why it failed; why a forced job kept a record


def training_curve(run_dir: Path, max_points: int = CURVE_POINTS) -> list[dict]:
    """The run's training log (iteration, loss, lr, val_psnr), thinned evenly to ``max_points``
    (validation records and the last record always kept)."""
    import pandas as pd

    from cfin.train.log import read_log

    log = read_log(run_dir)
    if log.empty:
        return []
    cols = [c for c in ("iteration", "loss", "lr", "val_psnr", "time") if c in log.columns]
    log = log[cols]
    if len(log) > max_points:
        step = -(-len(log) // max_points)
        keep = (log.index % step == 0) | (log.index == log.index[-1])
        if "val_psnr" in log.columns:
            keep |= log["val_psnr"].notna()
        log = log[keep]
    return [{k: v for k, v in rec.items() if pd.notna(v)} for rec in log.to_dict("records")]


def needs_run(job: RowJob) -> bool:
    """Whether ``job`` must run: forced, no record yet, or a record of another config (the
    row's definition changed since; such a record is stale and is replaced).

    Whatever is at the record's path is read first, forced or not: a file this code cannot read
    (not a record, a folder, a newer version's record) is a CFINError naming it, never replaced.
    """
    if not (job.record_path.exists() or job.record_path.is_symlink()):  # a dangling link is read, an error
        return True
    record = read_record(job.record_path)
    return job.force or record.get("config_hash") != config_hash(job.row.config)


def made_since(path: Path, job: RowJob) -> bool:
    """Whether ``path`` (a record, or a run folder's checkpoints) was written since the forced
    command of ``job`` started (:attr:`RowJob.force_since`): by another command, while this one ran.
    A run folder counts by its checkpoints alone: a command that only scores a finished training
    appends to its log but does not advance it."""
    if job.force_since is None or not path.exists():
        return False
    files = list(path.glob("*.pt")) if path.is_dir() else [path]
    return any(p.stat().st_mtime >= job.force_since for p in files)


def _prepare_run_dir(job: RowJob) -> None:
    """Start training over when forced (unless an earlier job of the same command trains this
    folder, which has started over already, or another command advanced it since this command
    started: :func:`made_since`) or when the folder holds a run of another config."""
    marker = job.run_dir / RUN_MARKER
    restart = job.force and not job.shares_training and not made_since(job.run_dir, job)
    if marker.exists() and not restart:
        restart = trains_another(job)
        if not restart:
            return  # a run of this training, to resume (or already complete)
    if job.run_dir.exists() and restart:  # all but the lock this process holds
        for entry in job.run_dir.iterdir():
            if entry.name in (LOCK_NAME, OWNER_NAME):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    atomic_write_json(marker, {**_marker_fields(job), "config": job.row.config.to_dict(), "table": job.table.id,
                               "row": job.row.id})


def _marker_fields(job: RowJob) -> dict:
    """What a run folder's marker must hold for the folder to train ``job``: its config and recipe."""
    return {"config_hash": config_hash(job.row.config), "recipe": json.loads(json.dumps(job.recipe.to_dict()))}


def trains_another(job: RowJob) -> bool:
    """Whether the job's run folder holds a run of another config or recipe (its marker says so),
    which a run that trains the row starts over; False where it has no marker."""
    marker = job.run_dir / RUN_MARKER
    if not marker.exists():
        return False
    saved = _read_marker(marker)
    if isinstance(saved.get("recipe"), dict):  # fields added since: what the run that wrote it ran
        saved["recipe"] = recipe_fields(saved["recipe"])
    return any(saved.get(k) != v for k, v in _marker_fields(job).items())


def _read_marker(marker: Path) -> dict:
    """The run folder's record of what it trains; a damaged one is an error saying how to start over."""
    try:
        saved = json.loads(marker.read_bytes())
    except (OSError, ValueError) as e:  # a folder, unreadable, not JSON, not UTF-8
        saved = e
    if not isinstance(saved, dict):
        raise CFINError(f"{marker} (which config and recipe this run folder trains) is damaged "
                        f"({type(saved).__name__}); delete {marker.parent} to start this row's training over, "
                        f"or run with --force")
    return saved


def run_row(job: RowJob, progress: bool = True) -> Outcome:
    """Do ``job`` unless its record exists for the row's current config (and it is not forced)."""
    path = job.record_path
    if not needs_run(job):
        return Outcome(job.name, "skipped", path)
    with _row_lock(job):  # the record is written under it too, for a command waiting on the same row
        if (not job.force or made_since(path, job)) and not needs_run(dataclasses.replace(job, force=False)):
            return Outcome(job.name, "skipped", path, detail="" if not job.force else  # waited, or ran alongside
                           "recorded by another command after this one started; kept")
        t0 = time.perf_counter()
        record = compute_record(job, progress)
        record["wall_time_s"] = round(time.perf_counter() - t0, 3)
        write_record(path, record)
    return Outcome(job.name, "done", path, record["wall_time_s"])


def faithful_twin(model, cfg):
    """``model`` itself where it computes ``cfg`` faithfully, else a faithful CFIN with its weights
    (a record's memory and latency are the official computation's, as the paper's columns)."""
    import cfin

    if model.config == cfg:
        return model
    twin = cfin.CFIN(cfg)
    twin.load_state_dict(model.state_dict())
    return twin.to(next(model.parameters()).device)


def load_scored_weights(model, result) -> dict:
    """Load the weights that score a row into ``model`` and say which: the best-validated
    (``best.pt``), as the official code keeps ``model_best`` after every validation and releases
    those; the last iteration's where no validation ran."""
    from cfin.checkpoint import check_state_dict, read_checkpoint

    if result.best_weights is None:
        return {"weights": "last", "iteration": result.iterations}
    state = read_checkpoint(result.best_weights)["state_dict"]
    check_state_dict(model, state, str(result.best_weights))
    model.load_state_dict(state)
    return {"weights": "best", "iteration": result.best_iteration, "val_psnr": result.best_psnr}


def compute_record(job: RowJob, progress: bool = True) -> dict:
    """Train and evaluate the job's row; the record as a dict (not yet written)."""
    from cfin.device import resolve_device

    device = resolve_device(job.device)
    if device.type == "cuda" and device.index is not None:  # a worker's GPU (--jobs): its current device
        import torch

        torch.cuda.set_device(device)  # else lazy CUDA state (a context, pinned memory) opens on GPU 0 too
    with _row_lock(job):
        return _train_and_score(job, device, progress)


def check_run_dir(job: RowJob) -> None:
    """A CFINError where a file stands at the job's run folder (a run stops on it; --status names it)."""
    if job.run_dir.exists() and not job.run_dir.is_dir():
        raise CFINError(f"{job.run_dir} should be this row's run folder but is a file; move it away (or pass "
                        f"another --runs)")


def _row_lock(job: RowJob):
    """The job's run folder, held: another command training it (a training two tables share) is
    waited for, then resumed (re-entered where this process holds it already)."""
    check_run_dir(job)
    return run_lock(job.run_dir, wait=True, elsewhere="pass another --runs")


def train_row(job: RowJob, device=None, progress: bool = True):
    """Build the row's network (initial weights from the recipe's seed) and data, and train it in
    its run folder, resuming where it stopped; ``(model, TrainResult, data description)``.

    In a job of several tasks (:func:`cfin.runner.team.current`), task 0 announces the row to the
    others once its data is built, and they train it with it (DDP). In a Slurm job, Slurm's
    warning stops the training at a checkpoint (:class:`cfin.train.trainer.TrainingInterrupted`)."""
    import torch

    import cfin
    from cfin.commands.train import build_data
    from cfin.device import resolve_device
    from cfin.runner.team import current
    from cfin.train import train

    device = resolve_device(job.device) if device is None else device
    team = current()
    cfg, rec = job.row.config, job.recipe
    torch.manual_seed(rec.seed)  # initial weights
    model = cfin.CFIN(cfg.with_impl(job.impl))
    train_set, val_set, data_desc = build_data(job.data_root, cfg.scale, rec, progress)
    if team is not None and team.is_main:
        team.announce(job)
    with team.training() if team is not None else contextlib.nullcontext():
        result = train(model, rec, train_set, job.run_dir, device=device, val_set=val_set, resume=True,
                       progress=progress, tf32=job.tf32 and device.type == "cuda",
                       should_stop=team.should_stop if team is not None and team.slurm else None)
    return model, result, data_desc


def _train_and_score(job: RowJob, device, progress: bool) -> dict:
    from cfin.data import open_dataset
    from cfin.evaluate import evaluate_model
    from cfin.provenance import environment
    from cfin.runner.measure import memory_latency

    cfg, rec = job.row.config, job.recipe
    _prepare_run_dir(job)
    model, result, data_desc = train_row(job, device, progress)
    tf32 = job.tf32 and device.type == "cuda"
    scored = load_scored_weights(model, result)
    names = eval_dataset_names(job.table, job.data_root)
    datasets = [open_dataset(job.data_root, name, cfg.scale) for name in names]
    metrics = evaluate_model(model, cfg.scale, datasets, self_ensemble=job.row.self_ensemble, device=device,
                             progress=progress, seed=rec.seed, tf32=tf32)
    return {
        **job.key.as_dict(),
        "row_slug": job.slug,
        "table_title": job.table.title,
        "config": cfg.to_dict(),
        "config_hash": config_hash(cfg),
        "recipe": rec.to_dict(),
        "data": {"label": dataset_label(job.data_root), "root": job.data_root, "train": data_desc,
                 "eval": list(names)},
        "self_ensemble": job.row.self_ensemble,
        "metrics": metrics,
        "complexity": complexity(cfg, ALL_CONVENTIONS),
        "impl": job.impl,
        "tf32": tf32,
        **memory_latency(faithful_twin(model, cfg), cfg, device, rec),
        "training": {"iterations": result.iterations, "completed": result.completed,
                     "resumed_from": result.resumed_from, "elapsed_s": round(result.elapsed, 3),
                     "final_loss": result.final_loss, "best_val_psnr": result.best_psnr,
                     "best_iteration": result.best_iteration, "scored_weights": scored,
                     "run_dir": str(job.run_dir)},
        "curve": training_curve(job.run_dir),
        "env": environment(device),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": job.command,
    }
