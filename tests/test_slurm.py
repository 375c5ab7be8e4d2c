"""run_all.py --launcher slurm: its options and bookkeeping, then the launcher on a real Slurm.

The tests marked ``needs_slurm`` submit to the single-node Slurm of ``tools/slurm_local.sh``
(CI starts it before the tests) and skip, saying how to start it, where no Slurm node answers.
Their table is the tiny fixture with a row that shares another's training
(tests/fixture_shared_table.py) at the micro budget: CPU seconds of training, the rest of each
job's time is Python starting and each row's scoring.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import cfin.tables
import fixture_tables
from cfin.errors import CFINError
from cfin.paths import REPO_ROOT
from cfin.records import load_records
from cfin.train import RECIPES


def _slurm_missing() -> str | None:
    """Why no Slurm job can run here, or None where a node answers."""
    start = "start one with: sudo bash tools/slurm_local.sh start (CI does)"
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return f"Slurm is not installed here; {start}"
    try:
        proc = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo does not answer ({e}); {start}"
    states = proc.stdout.split()
    if proc.returncode or not any(s.startswith(("idle", "mixed", "alloc")) for s in states):
        return f"no Slurm node is up here (sinfo: {(proc.stderr or proc.stdout).strip() or 'nothing'}); {start}"
    return None


SLURM_MISSING = _slurm_missing()
needs_slurm = pytest.mark.skipif(SLURM_MISSING is not None, reason=SLURM_MISSING or "")
# a CPU job of one task with one CPU: torch then trains with one thread, as the local runs here
CPU_JOB = ["--launcher", "slurm", "--slurm-gpus-per-job", "0", "--slurm-cpus-per-job", "1", "--slurm-time", "10",
           "--device", "cpu"]


def _patch(mp: pytest.MonkeyPatch) -> None:
    """The fixture tables are the only tables; the micro budget is a recipe."""
    mp.setattr(cfin.tables, "TABLE_MODULES", {"TINY": "fixture_tables", "TINYPLUS": "fixture_shared_table"})
    mp.setitem(RECIPES, "micro", fixture_tables.MICRO)


def _run_all(root: Path, *argv: str) -> int:
    spec = importlib.util.spec_from_file_location("run_all", REPO_ROOT / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([*argv, "--results", str(root / "results"), "--runs", str(root / "runs"),
                        "--reports", str(root / "reports"), "--no-progress"])


def _comparable(record: dict) -> dict:
    """A record without what differs between two runs of the same computation: wall times, the
    measured memory and latency (their conditions kept), provenance and the folders."""
    out = {k: v for k, v in record.items() if k not in ("wall_time_s", "created", "env", "command", "path")}
    for k in ("memory", "latency"):
        out[k] = {"condition": record[k]["condition"]}
    out["training"] = {k: v for k, v in record["training"].items() if k not in ("elapsed_s", "run_dir")}
    out["curve"] = [{k: v for k, v in point.items() if k != "time"} for point in record["curve"]]
    return out


# -- without Slurm ---------------------------------------------------------------------------
def test_slurm_options_are_checked(tmp_path, monkeypatch, capsys):
    """Each wrong use of the Slurm options is one error naming it, before anything is submitted."""
    from cfin.runner.slurm import SlurmOptions, check_device, sbatch_parameters, split_sbatch_args

    _patch(monkeypatch)
    assert sbatch_parameters(split_sbatch_args("--account=lab --qos='high prio' --exclusive")) == \
        {"account": "lab", "qos": "high prio", "exclusive": True}
    for bad in ("-A lab", "account=lab", "--"):
        with pytest.raises(CFINError, match="--slurm-args takes sbatch options as --name=value or --flag"):
            SlurmOptions(sbatch=tuple(bad.split()))
    with pytest.raises(CFINError, match="--slurm-time takes an integer >= 1, got 0"):
        SlurmOptions(time_min=0)
    with pytest.raises(CFINError, match="leave the 2 GPU"):
        check_device("cpu", 2)
    with pytest.raises(CFINError, match="give cuda .* or cpu"):
        check_device("cuda:1", 1)
    for argv, needle in (
            (["--slurm-partition", "gpu"], "--slurm-partition is an option of --launcher slurm"),
            (["--detach"], "--detach is an option of --launcher slurm"),
            (["--launcher", "slurm", "--jobs", "2"], "--jobs is the local pool's"),
            (["--launcher", "pbs"], "--launcher takes local or slurm, got 'pbs'"),
            ([*CPU_JOB, "--detach", "--dry-run"], "--detach submits, --dry-run does not")):
        assert _run_all(tmp_path, "--table", "TINY", "--budget", "micro", *argv) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err
    # a job's tasks must split the recipe's batch (micro: 2) and the CPUs evenly
    from cfin.runner import plan_jobs
    from cfin.runner.group import TrainingJob

    training = TrainingJob(tuple(plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path, tmp_path)[:1]))
    with pytest.raises(CFINError, match="batch of 2 does not split evenly over 3 tasks"):
        SlurmOptions(gpus=3).parameters(training)
    with pytest.raises(CFINError, match="--slurm-cpus-per-job 3 does not split evenly over the 2 tasks"):
        SlurmOptions(gpus=2, cpus=3).parameters(training)
    params = SlurmOptions(gpus=2, cpus=8, partition="gpu", sbatch=("--account=lab",)).parameters(training)
    assert (params["ntasks_per_node"], params["cpus_per_task"], params["gpus_per_node"], params["partition"]) == \
        (2, 4, 2, "gpu")
    assert params["additional_parameters"]["account"] == "lab" and params["signal_delay_s"] > 0


def test_dry_run_prints_the_jobs_and_their_cost(tmp_path, monkeypatch, capsys):
    """--dry-run submits nothing: it lists one job per training with its rows and resources, and the
    cost from the recipes: iterations, and hours at a training step timed here."""
    _patch(monkeypatch)
    assert _run_all(tmp_path, "--table", "TINYPLUS", "TINY", "--budget", "micro", *CPU_JOB, "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.startswith("--launcher slurm would submit 2 job(s) for 4 row(s) (0 row(s) recorded already")
    jobs = re.findall(r"^  cfin (\S+): 4 iterations of recipe micro \(batch 2 of 16x16\); 1 task\(s\) x 1 CPU\(s\), "
                      r"0 GPU\(s\), 10 min limit; \d+ ms a step here: [\d.e-]+ CPU-hours$", out, re.M)
    assert jobs == ["TINY/KV+Cross", "TINY/KV_off"], out  # named by the run folder of the training
    # TINY's KV+Cross trains first in the tables' order: TINYPLUS's two rows share its training
    assert ("      Table TINYPLUS / KV+Cross (x4, seed 0)\n      Table TINYPLUS / KV+Cross+ (x4, seed 0)\n"
            "      Table TINY / KV+Cross (x4, seed 0)\n") in out
    assert "in all: 8 training iterations, about " in out and "CPU-hours of training steps" in out
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()
    if not torch.cuda.is_available():  # GPU jobs planned without a GPU: iterations, and where to time them
        assert _run_all(tmp_path, "--table", "TINY", "--budget", "micro", "--launcher", "slurm", "--dry-run") == 0
        out = capsys.readouterr().out
        assert " 1 GPU(s), 1440 min limit\n" in out and " ms a step" not in out
        assert "in all: 8 training iterations; no GPU here to time a step: run the same command with --dry-run" in out


def test_a_job_that_left_the_queue_without_a_result_is_a_failure(tmp_path, monkeypatch):
    """Without accounting nothing says how a job ended once squeue has forgotten it: its result file
    does, or after a grace for a network file system, its absence (not an endless wait)."""
    from cfin.runner import plan_jobs
    from cfin.runner.group import TrainingJob
    from cfin.runner.slurm_jobs import RESULT_GRACE_S, Submission, settle

    _patch(monkeypatch)
    training = TrainingJob(tuple(plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results",
                                           tmp_path / "runs")[:1]))
    folder = tmp_path / "runs" / "slurm" / "41"
    folder.mkdir(parents=True)
    (folder / "41_0_log.err").write_text("submitit INFO starting\nslurmstepd: error: *** JOB 41 CANCELLED ***\n")
    job, since = Submission(training, "41", folder), {}
    assert settle(job, "RUNNING", since, 0.0) is None
    assert settle(job, None, since, 10.0) is None          # gone from the queue: its result may be on its way
    end = settle(job, None, since, 10.0 + RESULT_GRACE_S)
    assert end is not None and not end.ok
    [outcome] = end.outcomes()
    assert outcome.status == "failed" and outcome.detail.startswith(
        f"Slurm job 41 ended (no longer in the queue) without a result; log {folder / '41_0_log.err'}, its last "
        f"lines:\n    slurmstepd: error: *** JOB 41 CANCELLED ***")
    assert "submitit INFO" not in outcome.detail


def test_a_log_tells_its_last_iteration_from_its_tail(tmp_path):
    from cfin.train.log import TrainLog

    log = TrainLog(tmp_path / "train_log.jsonl")
    assert log.last_iteration() == 0
    for i in range(1, 2001):
        log.append({"iteration": i, "loss": 1.0, "lr": 1e-4, "time": i / 10})
    with open(log.path, "a") as f:
        f.write('{"iteration": 2001, "lo')  # a line cut short by a crash
    assert log.last_iteration() == 2000


def test_records_and_the_runner_import_one_way():
    """The records' vocabulary (data labels, budgets) has one home each: reading records does not
    import the runner, which imports the records."""
    code = "import sys, cfin.records; print(sorted(m for m in sys.modules if m.startswith('cfin.runner')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


# -- on Slurm --------------------------------------------------------------------------------
@needs_slurm
def test_slurm_records_match_the_local_launchers(tmp_path, monkeypatch, capsys):
    """A table's micro budget through --launcher slurm: two rows sharing a training are one job;
    --detach submits it and exits, the same command again waits on that job or finds its rows
    recorded (it submits none); its records equal the local launcher's up to wall times and
    provenance; --status names the job and its state; --report-only renders the same report."""
    _patch(monkeypatch)
    slurm, local = tmp_path / "slurm", tmp_path / "local"
    command = ["--table", "TINYPLUS", "--budget", "micro"]
    assert _run_all(slurm, *command, *CPU_JOB, "--detach") == 0
    out = capsys.readouterr().out
    submitted = re.findall(r"^submitted Slurm job (\d+): Table TINYPLUS / KV\+Cross \(x4, seed 0\) \(\+1 row\(s\) "
                           r"sharing its training\); log \S+$", out, re.M)
    assert len(submitted) == 1 and out.count("submitted Slurm job") == 1, out  # one job for the two rows
    job_id = submitted[0]
    assert "detached: python run_all.py --status --table TINYPLUS --budget micro" in out
    assert not (slurm / "reports").exists()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the job's one CPU; the local launcher runs while the job does
    try:
        assert _run_all(local, *command, "--device", "cpu") == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()

    assert _run_all(slurm, *command, *CPU_JOB) == 0  # waits on the job if it is still queued or running
    out = capsys.readouterr().out
    assert "submitted" not in out and (f"waiting on Slurm job {job_id}" in out or "skipped" in out), out
    assert out.count("   done  ") + out.count("skipped  ") == 2
    (slurm / "reports").rename(slurm / "reports_waited")
    assert _run_all(slurm, "--report-only") == 0
    capsys.readouterr()
    for name in ("table_TINYPLUS.md", "table_TINYPLUS.html"):
        assert (slurm / "reports" / name).read_text() == (slurm / "reports_waited" / name).read_text()
    assert "| KV+Cross+ |" in (slurm / "reports" / "table_TINYPLUS.md").read_text()

    assert _run_all(slurm, "--status", *command) == 0
    status = capsys.readouterr().out
    assert status.count(f"    slurm job     {job_id} COMPLETED; submitted ") == 2
    assert status.rstrip().endswith("2 of 2 rows recorded; 0 training(s) running now")

    by_slurm = {r["row"]: r for r in load_records(slurm / "results")}
    by_pool = {r["row"]: r for r in load_records(local / "results")}
    assert set(by_slurm) == set(by_pool) == {"KV+Cross", "KV+Cross+"}
    for row in by_pool:
        assert _comparable(by_slurm[row]) == _comparable(by_pool[row]), row
    assert by_slurm["KV+Cross+"]["training"]["resumed_from"] == fixture_tables.MICRO.iterations  # one training
    assert by_slurm["KV+Cross"]["command"].startswith("python run_all.py --table TINYPLUS --budget micro --launcher")


def test_a_rerun_waits_on_a_job_still_in_the_queue(tmp_path, monkeypatch):
    """A training whose ledger names a job still queued or running is not submitted again (unless
    forced): the command waits on that job."""
    import cfin.runner.slurm as slurm
    from cfin.runner import plan_jobs
    from cfin.runner.group import TrainingJob
    from cfin.runner.slurm_jobs import ledger_path

    _patch(monkeypatch)
    monkeypatch.setattr(slurm, "check_slurm", lambda: None)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs", "cpu")[0]
    training = TrainingJob((job,))
    ledger_path(training).parent.mkdir(parents=True)
    ledger_path(training).write_text(json.dumps({"job_id": "77", "folder": str(tmp_path / "runs" / "slurm" / "77")}))
    [attached] = slurm.submit([training], slurm.SlurmOptions(gpus=0), active={"77": ("RUNNING", "None")})
    assert attached.attached and attached.job_id == "77" and attached.stderr == tmp_path / "runs/slurm/77/77_0_log.err"

    class Submitting(Exception):
        pass

    def executor(*args, **kwargs):
        raise Submitting
    monkeypatch.setattr("submitit.SlurmExecutor", executor)
    with pytest.raises(Submitting):  # forced: submitted again
        slurm.submit([TrainingJob((dataclasses.replace(job, force=True),))], slurm.SlurmOptions(gpus=0),
                     active={"77": ("RUNNING", "None")})
    with pytest.raises(Submitting):  # the job ended: submitted again
        slurm.submit([training], slurm.SlurmOptions(gpus=0), active={"77": ("COMPLETED", "None")})


@needs_slurm
def test_a_job_warned_by_slurm_checkpoints_requeues_and_ends_with_the_uninterrupted_weights(tmp_path, monkeypatch,
                                                                                             one_thread):
    """``scancel --signal=USR2`` mid-training (what Slurm sends before a time limit, or a preemption):
    the job checkpoints at its next iteration, requeues itself and resumes there; it ends with the
    weights of a run never stopped, bit for bit (one CPU thread on both sides)."""
    from cfin.commands.train import build_data
    from cfin.runner import plan_jobs
    from cfin.runner.group import TrainingJob
    from cfin.runner.slurm import SlurmOptions, submit
    from cfin.runner.slurm_jobs import squeue_states, wait
    from cfin.train import train
    from cfin.train.log import TrainLog

    _patch(monkeypatch)
    # long enough that the warning lands mid-training even on a fast CPU; no periodic checkpoint
    recipe = dataclasses.replace(fixture_tables.MICRO, iterations=100, checkpoint_every=1000, val_every=50)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs", "cpu")[1]
    job = dataclasses.replace(job, recipe=recipe)
    options = SlurmOptions(gpus=0, time_min=10, poll_s=2)
    [submission] = submit([TrainingJob((job,))], options)
    log = TrainLog(job.run_dir / "train_log.jsonl")
    deadline = time.monotonic() + 300
    while log.last_iteration() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    warned_at = log.last_iteration()
    subprocess.run(["scancel", "--signal=USR2", submission.job_id], check=True, timeout=60)
    # Slurm holds a requeued job for 2 minutes (BeginTime); this test does not wait that long
    while time.monotonic() < deadline:
        state = squeue_states([submission.job_id]).get(submission.job_id)
        if state == ("PENDING", "BeginTime"):
            subprocess.run(["scontrol", "update", f"JobId={submission.job_id}", "StartTime=now"], check=True,
                           timeout=60)
            break
        time.sleep(0.2)
    torch.manual_seed(recipe.seed)  # the run never stopped, trained here while the job resumes
    model = cfin.CFIN(job.row.config)
    train_set, val_set, _ = build_data(None, 4, recipe, False)
    train(model, recipe, train_set, tmp_path / "uninterrupted", device="cpu", val_set=val_set, progress=False)
    [end] = wait([submission], options.poll_s, progress=False)
    assert end.ok, end.failure()
    assert "the training stops after this iteration" in submission.stderr.read_text()
    training = load_records(tmp_path / "results")[0]["training"]
    assert 2 <= warned_at <= training["resumed_from"] < recipe.iterations and training["completed"]
    resumed = torch.load(job.run_dir / "final.pt", weights_only=True)["state_dict"]
    straight = torch.load(tmp_path / "uninterrupted" / "final.pt", weights_only=True)["state_dict"]
    assert resumed.keys() == straight.keys() and all(torch.equal(resumed[k], straight[k]) for k in straight)


@needs_slurm
def test_a_failing_job_is_reported_with_its_id_log_and_error(tmp_path, monkeypatch):
    """A data root that the job cannot read (checked on the login node, gone on the compute node):
    the job fails, its rows are reported with the job's id, its log and the error, nothing recorded."""
    from cfin.runner import plan_jobs
    from cfin.runner.group import TrainingJob
    from cfin.runner.slurm import SlurmOptions, submit
    from cfin.runner.slurm_jobs import wait

    _patch(monkeypatch)
    missing = tmp_path / "data"
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], missing, tmp_path / "results", tmp_path / "runs", "cpu")[1]
    options = SlurmOptions(gpus=0, time_min=10, poll_s=2)
    [submission] = submit([TrainingJob((job,))], options)
    [end] = wait([submission], options.poll_s, progress=False)
    [outcome] = end.outcomes()
    assert not end.ok and end.state == "FAILED" and outcome.status == "failed"
    assert outcome.detail.startswith(f"Slurm job {submission.job_id} FAILED: {job.name}: data root {missing} does "
                                     f"not exist")
    assert f"log {submission.stderr}, its last lines:\n" in outcome.detail
    assert f"data root {missing} does not exist" in submission.stderr.read_text()
    assert not (tmp_path / "results").exists()


@needs_slurm
def test_a_job_of_two_tasks_trains_with_ddp(tmp_path, monkeypatch):
    """Two tasks (as two GPUs would be; here two CPUs, gloo): task 0 announces the row, both train it
    with DDP, task 0 records it."""
    from cfin.runner import plan_jobs
    from cfin.runner.group import TrainingJob
    from cfin.runner.slurm import SlurmOptions, submit
    from cfin.runner.slurm_jobs import wait

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs", "cpu")[1]
    options = SlurmOptions(gpus=0, tasks=2, time_min=10, poll_s=2)
    [submission] = submit([TrainingJob((job,))], options)
    [end] = wait([submission], options.poll_s, progress=False)
    assert end.ok, end.failure()
    assert [o.status for o in end.outcomes()] == ["done"]
    state = torch.load(job.run_dir / "last.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2 and state["iteration"] == 4
    assert (submission.folder / f"{submission.job_id}_1_result.pkl").is_file()  # task 1 ran and ended
    [record] = load_records(tmp_path / "results")
    assert record["training"]["completed"] and record["row"] == "KV+Cross"


def test_ledger_is_beside_the_runs(tmp_path, monkeypatch):
    from cfin.runner import plan_jobs
    from cfin.runner.group import TrainingJob
    from cfin.runner.slurm_jobs import ledger_path, read_ledger

    _patch(monkeypatch)
    training = TrainingJob(tuple(plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results",
                                           tmp_path / "runs")[:1]))
    assert ledger_path(training) == tmp_path / "runs" / "slurm" / "TINY" / "KV_off" / "x4_seed0_micro_embedded.json"
    assert read_ledger(training) is None
    ledger_path(training).parent.mkdir(parents=True)
    ledger_path(training).write_text(json.dumps({"job_id": 7}))  # not a job id string: as none
    assert read_ledger(training) is None
