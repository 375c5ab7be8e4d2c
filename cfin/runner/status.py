"""``run_all.py --status``: where each row of a plan stands, read from disk; nothing runs.

Per job: its record (current, stale or none, and the score it holds), its training (the last
logged iteration of the run folder, out of the recipe's), and the process training it now, if
any (the folder's lock, :mod:`cfin.train.lock`), with the time left at the run's own pace so far.
"""
from __future__ import annotations

import datetime as _dt

from cfin.errors import CFINError
from cfin.records import config_hash, read_record
from cfin.runner.jobs import RowJob
from cfin.runner.row import check_run_dir, trains_another
from cfin.train.lock import held_by
from cfin.train.trainer import FINAL_NAME


def record_state(job: RowJob) -> str:
    """``none``, ``stale (...)``, ``unreadable: ...`` or ``done`` with its first score."""
    path = job.record_path
    try:
        if not (path.exists() or path.is_symlink()):
            return "none"
    except OSError as e:  # its folder cannot be looked into
        return f"unreadable: {e.filename} ({e.strerror or e})"
    try:
        record = read_record(path)
    except CFINError as e:
        return f"unreadable: {e}"
    if record.get("config_hash") != config_hash(job.row.config):
        return "stale (the row's config changed; the run recomputes it)"
    scores = [f"{name} {m['psnr']:.2f} dB" for name, m in record["metrics"].items() if m.get("psnr") is not None]
    return "done" + (f" ({scores[0]})" if scores else "")


def training_state(job: RowJob) -> tuple[str, str]:
    """(progress of the run folder's training, the process training it now or ``-``)."""
    from cfin.train.log import read_log

    run_dir, total = job.run_dir, job.recipe.iterations
    try:
        check_run_dir(job)
        another = run_dir.is_dir() and trains_another(job)
    except CFINError as e:  # what a run stops on
        return f"unreadable: {e}", "-"
    if not run_dir.is_dir():
        return "not started", "-"
    log = read_log(run_dir)
    done = int(log["iteration"].iloc[-1]) if not log.empty else 0
    elapsed = float(log["time"].iloc[-1]) if not log.empty and "time" in log else None
    if (run_dir / FINAL_NAME).is_file():
        progress = f"trained ({total:,} iterations)"
    else:
        progress = f"{done:,} / {total:,} iterations ({100 * done / total:.0f}%)"
    if another:
        progress += " of another config or recipe than the row's now: a run that trains the row starts it over"
    holder = held_by(run_dir)
    if holder is None:
        return progress, "-"
    if done and elapsed and done < total:
        left = _dt.timedelta(seconds=round(elapsed / done * (total - done)))
        holder += f"; its training has about {left} left at its pace so far"
    return progress, holder


def status_rows(jobs: list[RowJob], slurm_jobs: bool = True) -> list[dict]:
    """Per job: its record, its training, the process training it now and, where one was submitted
    for its training (``slurm_jobs``), its Slurm job's id and state (:func:`cfin.runner.slurm_jobs.status_lines`)."""
    slurm = _slurm_lines(jobs) if slurm_jobs else {}
    rows = []
    for job in jobs:
        progress, process = training_state(job)
        shared = f" (trains as Table {job.trains_as[0]} / {_row_id(*job.trains_as)})" if job.trains_as else ""
        rows.append({"row": job.name + shared, "record": record_state(job), "training": progress,
                     "training now": process, "run_dir": str(job.run_dir)})
        if job.run_dir in slurm:
            rows[-1]["slurm job"] = slurm[job.run_dir]
    return rows


def _slurm_lines(jobs: list[RowJob]) -> dict:
    from cfin.runner.group import TrainingJob
    from cfin.runner.slurm_jobs import status_lines

    groups: dict = {}
    for job in jobs:
        groups.setdefault(job.run_dir, []).append(job)
    return status_lines([TrainingJob(tuple(group)) for group in groups.values()])


def _row_id(table_id: str, slug: str) -> str:
    from cfin.records import row_slugs
    from cfin.tables import get_table

    return next((row for row, s in row_slugs(get_table(table_id)).items() if s == slug), slug)


def render_status(rows: list[dict]) -> str:
    """One block per job: its name, then its record, training and process, indented; a total."""
    lines = []
    for r in rows:
        lines.append(r["row"])
        lines.extend(f"    {k:<13} {r[k]}" for k in ("record", "training", "training now", "slurm job") if k in r)
    recorded = sum(r["record"].startswith("done") for r in rows)
    running = len({r["run_dir"] for r in rows if r["training now"] != "-"})  # rows sharing a training: one
    lines.append(f"{recorded} of {len(rows)} rows recorded; {running} training(s) running now")
    return "\n".join(lines)
