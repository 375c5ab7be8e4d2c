"""The Slurm jobs run_all.py submitted (:mod:`cfin.runner.slurm`): which trains what, their
states, how each ended, and waiting for them.

Each training's ledger, ``<runs>/slurm/<table>/<row>/<key>.json``, names the job last submitted
for it (``--status`` reads it; a rerun waits on a job still queued or running instead of
submitting another). submitit's files of job N (the pickled call, its result, the job's stdout
and stderr) are in ``<runs>/slurm/N/``.

Without accounting (no slurmdbd) there is no ``sacct``, and submitit then cannot tell a job that
died without a result from one still running; so states come from ``squeue`` here (which lists
a job for ``MinJobAge`` seconds after it ends), and a job that ended, or left the queue, without
its result file within :data:`RESULT_GRACE_S` is a failure, reported with its id, its log and
the last lines of its stderr.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from cfin.errors import CFINError
from cfin.runner.group import RowsFailed, TrainingJob
from cfin.runner.row import Outcome, needs_run

SLURM_DIR = "slurm"  # under --runs: submitit's folders (one per job id) and the trainings' ledgers

# Job states in which a job may still run (squeue's %T); PREEMPTED too: Slurm requeues or ends it.
ACTIVE = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
                    "RESIZING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "STOPPED", "PREEMPTED", "RESV_DEL_HOLD"})
RESULT_GRACE_S = 60.0  # an ended job's result file may reach a network file system this much later
STDERR_TAIL = 12  # lines of a failed job's stderr in its report
SQUEUE_TIMEOUT_S = 60
UNREACHABLE_S = 600  # the submitter stops waiting when squeue fails this long (the jobs go on)


def ledger_path(training: TrainingJob) -> Path:
    """``<runs>/slurm/<table>/<row>/<key>.json`` for the training in ``<runs>/<table>/<row>/<key>``."""
    runs = training.rows[0].runs
    relative = training.run_dir.relative_to(runs)
    return runs / SLURM_DIR / relative.parent / (relative.name + ".json")


def read_ledger(training: TrainingJob) -> dict | None:
    """The ledger entry of the job last submitted for ``training``; None where none was (or it is
    unreadable: a rerun submits again)."""
    try:
        entry = json.loads(ledger_path(training).read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("job_id"), str) else None


@dataclass(frozen=True)
class Submission:
    """One training's Slurm job.

    Args:
        training: what the job runs.
        job_id: Slurm's job id.
        folder: submitit's folder of the job (its pickles and logs).
        attached: the job was submitted by an earlier command and was still queued or running.
    """

    training: TrainingJob
    job_id: str
    folder: Path
    attached: bool = False

    @property
    def stderr(self) -> Path:
        return self.folder / f"{self.job_id}_0_log.err"

    @property
    def stdout(self) -> Path:
        return self.folder / f"{self.job_id}_0_log.out"

    @property
    def result_file(self) -> Path:
        return self.folder / f"{self.job_id}_0_result.pkl"

    def result(self):
        """``("success", outcomes)``, ``("error", traceback)`` or None (no result file yet)."""
        from submitit.core.utils import pickle_load

        if not self.result_file.is_file():
            return None
        try:
            return pickle_load(self.result_file)
        except (OSError, EOFError, ValueError) as e:
            return ("error", f"its result file {self.result_file} cannot be read ({type(e).__name__}: {e})")


def squeue_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{job id: (state, reason)}`` from squeue for those of ``job_ids`` the controller still knows
    (a job is listed for ``MinJobAge`` seconds after it ends); a CFINError where squeue fails."""
    if not job_ids:
        return {}
    cmd = ["squeue", "--noheader", "--states=all", f"--jobs={','.join(sorted(set(job_ids)))}", "--format=%i|%T|%r"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SQUEUE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CFINError(f"squeue did not answer ({e})") from None
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:  # none of them is known any more
            return {}
        raise CFINError(f"squeue failed: {proc.stderr.strip() or proc.returncode}")
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


def stderr_tail(path: Path, lines: int = STDERR_TAIL) -> str:
    """The last ``lines`` lines of a job's stderr (submitit's own log lines left out)."""
    try:
        text = path.read_bytes()[-65536:].decode("utf-8", errors="replace")
    except OSError:
        return f"(no stderr at {path})"
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith("submitit ")]
    return "\n".join(kept[-lines:])


@dataclass(frozen=True)
class JobEnd:
    """How a job ended: its last state seen in the queue ("" once it left it) and its result."""

    submission: Submission
    state: str
    result: tuple | None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result[0] == "success"

    def failure(self) -> str:
        """Why it failed: its id, state, error, log and the end of its stderr."""
        s = self.submission
        if self.result is None:
            what = f"ended ({self.state or 'no longer in the queue'}) without a result"
        else:
            lines = [line for line in str(self.result[1]).strip().splitlines() if line.strip()]
            error = lines[-1] if lines else "no error text"
            if error.startswith(f"{RowsFailed.__module__}.{RowsFailed.__name__}: "):
                error = error.split(": ", 1)[1]
            what = f"{self.state or 'ended'}: {error}"
        return f"Slurm job {s.job_id} {what}; log {s.stderr}, its last lines:\n{_indent(stderr_tail(s.stderr))}"

    def outcomes(self) -> list[Outcome]:
        """The outcome of each row of the training: the job's own where it completed; else each row
        recorded meanwhile is done and each other failed, saying why the job failed."""
        rows = self.submission.training.rows
        if self.ok and isinstance(self.result[1], list) and len(self.result[1]) == len(rows):
            return list(self.result[1])
        why = self.failure()
        return [Outcome(row.name, "done", row.record_path, detail=f"recorded by Slurm job {self.submission.job_id}")
                if not needs_run(dataclasses.replace(row, force=False)) and _recorded_since(row, self.submission)
                else Outcome(row.name, "failed", row.record_path, detail=why) for row in rows]


def _recorded_since(row, submission: Submission) -> bool:
    """Whether the row's record was written after the job was submitted (by the job)."""
    try:
        return row.record_path.stat().st_mtime >= submission.folder.stat().st_mtime - 1
    except OSError:
        return False


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def settle(submission: Submission, state: str | None, since: dict[str, float], now: float) -> JobEnd | None:
    """The job's end once it has one: its result file, or (ended or gone from the queue) none after
    :data:`RESULT_GRACE_S`; None while it may still run. ``since``: when each job was first seen
    ended, kept across calls."""
    if state in ACTIVE:
        since.pop(submission.job_id, None)
        return None
    result = submission.result()
    if result is not None:
        return JobEnd(submission, state or "", result)
    first = since.setdefault(submission.job_id, now)
    if now - first >= RESULT_GRACE_S:
        return JobEnd(submission, state or "", None)
    return None


def logged_iteration(training: TrainingJob) -> int:
    """How far the training has come, from the last record of its log (0 before any)."""
    from cfin.train.log import LOG_NAME, TrainLog

    return TrainLog(training.run_dir / LOG_NAME).last_iteration()


def wait(submissions: list[Submission], poll_s: float = 30.0, progress: bool = True) -> list[JobEnd]:
    """Wait for every job to end, with one progress bar over their trainings' iterations (read
    from each run folder's log) and their states; their ends, in the submissions' order. The
    queue is looked at after 1, 2, 4, ... seconds, then every ``poll_s``."""
    total = sum(s.training.rows[0].recipe.iterations for s in submissions)
    bar = tqdm(total=total, desc="slurm jobs", unit="it", disable=not progress, dynamic_ncols=True)
    ends: dict[str, JobEnd] = {}
    since: dict[str, float] = {}
    unreachable = None
    delay = 1.0
    try:
        while len(ends) < len(submissions):
            now = time.monotonic()
            waiting = [s for s in submissions if s.job_id not in ends]
            try:
                states = squeue_states([s.job_id for s in waiting])
                unreachable = None
            except CFINError as e:
                unreachable = unreachable or now
                if now - unreachable > UNREACHABLE_S:
                    raise CFINError(f"{e} for {UNREACHABLE_S // 60} minutes; the jobs go on: python run_all.py "
                                    f"--status shows them, the same command waits for them again") from None
                states = None
            counts: dict[str, int] = {}
            for s in waiting:
                if states is None:
                    break
                state = states.get(s.job_id, ("", ""))[0] or None
                end = settle(s, state, since, now)
                if end is not None:
                    ends[s.job_id] = end
                else:
                    counts[state or "ENDING"] = counts.get(state or "ENDING", 0) + 1
            done = sum(min(logged_iteration(s.training), s.training.rows[0].recipe.iterations) for s in submissions)
            bar.n = done
            finished = sum(e.ok for e in ends.values())
            failed = len(ends) - finished
            bar.set_postfix_str(", ".join([f"{n} {state.lower()}" for state, n in sorted(counts.items())]
                                          + [f"{finished} done"] + ([f"{failed} failed"] if failed else [])),
                                refresh=False)
            bar.refresh()
            if len(ends) < len(submissions):
                time.sleep(delay)
                delay = min(delay * 2, poll_s)
    finally:
        bar.close()
    return [ends[s.job_id] for s in submissions]


def status_lines(trainings: list[TrainingJob]) -> dict[Path, str]:
    """``{run folder: its Slurm job's line}`` for ``--status``, for the trainings a job was submitted
    for: its id and state in the queue, or how it ended, and its log."""
    entries = {t.run_dir: (t, read_ledger(t)) for t in trainings}
    ids = [e["job_id"] for _, e in entries.values() if e]
    if not ids:
        return {}
    try:
        states = squeue_states(ids)
        unknown = None
    except CFINError as e:
        states, unknown = {}, str(e)
    lines = {}
    for run_dir, (training, entry) in entries.items():
        if not entry:
            continue
        submission = Submission(training, entry["job_id"], Path(entry["folder"]))
        state, reason = states.get(entry["job_id"], ("", ""))
        if unknown:
            line = f"{entry['job_id']} (state unknown: {unknown})"
        elif state in ACTIVE:
            why = f" ({reason})" if reason and reason != "None" else ""
            line = f"{entry['job_id']} {state}{why}"
        else:
            end = JobEnd(submission, state, submission.result())
            line = f"{entry['job_id']} {state or 'ended'}" if end.ok else end.failure().split("\n")[0]
        lines[run_dir] = f"{line}; submitted {entry.get('submitted', '?')}; log {submission.stderr}"
    return lines
