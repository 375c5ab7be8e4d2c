"""What ``run_all.py`` does in each of its modes; the script itself only parses the arguments.

``run(args)`` takes run_all.py's parsed arguments: ``--list`` prints the tables and their rows,
``--status`` where each of their rows stands (:mod:`cfin.runner.status`),
``--complexity-only`` writes the complexity reports, ``--report-only`` rebuilds the reports from
the records, ``--recount`` counts the records' networks again (:mod:`cfin.runner.recount`) and
rebuilds the reports, and otherwise every row of the tables asked for is planned, trained, evaluated and
recorded (:func:`cfin.runner.plan_jobs`, :func:`cfin.runner.run_jobs`), then reported.
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from cfin.errors import CFINError
from cfin.paths import Folders, output_dir


def parse_seeds(values: list[str]) -> list[int]:
    """The --seeds values (spaces or commas between them) as distinct ints from 0 to 2**63 - 1."""
    from cfin.commands._common import check_seed
    seeds = []
    for v in values:
        for part in str(v).split(","):
            if not part.strip():
                continue
            try:
                seed = int(part)
            except ValueError:
                raise CFINError(f"--seeds takes non-negative integers (e.g. --seeds 0 1 2), got {part!r}") from None
            seeds.append(check_seed("--seeds", seed))
    if not seeds:
        raise CFINError("--seeds needs at least one integer")
    return list(dict.fromkeys(seeds))


def resolve_tables(ids: list[str] | None, default_all: bool):
    """Table objects for ``--table`` ("all" or ids); every table when absent and ``default_all``."""
    from cfin.tables import all_tables, get_table, table_ids

    if not ids:
        if default_all:
            return all_tables()
        raise CFINError(f"give --table with one or more of {', '.join(table_ids())}, or --table all "
                        f"(e.g. python run_all.py --table VII)")
    if any(i.lower() == "all" for i in ids):
        return all_tables()
    return list({t.id: t for t in (get_table(i) for i in ids)}.values())


def list_tables(tables, budget: str) -> None:
    from cfin.report import fmt
    from cfin.runner.jobs import training_owners

    owners = training_owners(tables, budget)
    for t in tables:
        scale = f"x{t.scale}" if t.scale else "mixed scales"
        print(f"Table {t.id}: {t.title} ({scale}; accuracy on {', '.join(t.datasets) or '-'}; "
              f"paper-budget recipe {t.recipe})")
        for r in t.rows:
            kind = "quoted" if r.quoted else f"x{r.config.scale}" + (" +ensemble" if r.self_ensemble else "")
            printed = f"paper {r.paper.text('params', fmt.count_k)} / {r.paper.text('multi_adds', fmt.macs_g)}"
            printed += "".join(f"; {d} {fmt.psnr(m[0])}" + (f"/{fmt.ssim(m[1])}" if m[1] is not None else "")
                               for d, m in r.paper.metrics.items())
            owner = owners.get((t.id, r.id))
            shared = f"  (trains as Table {owner.table} / {owner.row})" if owner and owner[:2] != (t.id, r.id) else ""
            print(f"    {r.id:<28} {kind:<14} {printed}{shared}")


def check_data(tables, data_root: str | None, budget: str) -> None:
    """Fail before any training when --data-root lacks DIV2K (training images, each at least the
    budget's patch, and the validation images training reads) or a table's benchmark."""
    if data_root is None:
        return
    from cfin.commands.train import DIV2K_VAL_IDS
    from cfin.data import TrainPatchDataset, div2k_pairs, open_dataset
    from cfin.runner.jobs import budget_recipe

    for scale in sorted({r.config.scale for t in tables for r in t.reproducible_rows}):
        images = div2k_pairs(data_root, scale, "train")
        div2k_pairs(data_root, scale, "valid", ids=DIV2K_VAL_IDS)
        for name in sorted({d for t in tables for d in t.datasets}):
            open_dataset(data_root, name, scale).check_sizes()
        for patch in sorted({budget_recipe(t, budget, 0).patch_size for t in tables
                             if any(r.config.scale == scale for r in t.reproducible_rows)}):
            TrainPatchDataset(images, scale, patch)  # the sizes, from the files' headers


OUTPUT_OPTIONS = ("--reports", "--results", "--runs")


def check_output_folders(args, options: tuple[str, ...]) -> None:
    """The folders ``options`` name (of run_all.py's), checked before any work whose results they
    would hold; none is created."""
    for option in options:
        output_dir(getattr(args, option[2:]), option, create=False)


SLURM_OPTIONS = ("--slurm-partition", "--slurm-gpus-per-job", "--slurm-cpus-per-job", "--slurm-time", "--slurm-args",
                 "--detach", "--dry-run")


def slurm_options(args):
    """The :class:`~cfin.runner.slurm.SlurmOptions` of ``--launcher slurm``, None for the local pool;
    a CFINError for a Slurm option without it, or one that does not go with the mode."""
    given = [o for o in SLURM_OPTIONS if getattr(args, o[2:].replace("-", "_"), None) not in (None, False)]
    if args.launcher not in ("local", "slurm"):
        raise CFINError(f"--launcher takes local or slurm, got {args.launcher!r}")
    if args.launcher == "local":
        if given:
            raise CFINError(f"{given[0]} is an option of --launcher slurm; add --launcher slurm, or leave it out")
        return None
    modes = [m for m in ("report_only", "complexity_only", "recount", "list", "status") if getattr(args, m)]
    if modes:
        return None  # these modes run nothing; --status shows the rows' Slurm jobs whichever launcher
    if args.jobs != 1:
        raise CFINError("--jobs is the local pool's; with --launcher slurm every training is a job of its own")
    if args.detach and args.dry_run:
        raise CFINError("--detach submits, --dry-run does not: give one of them")
    from cfin.runner.slurm import SlurmOptions, check_device, split_sbatch_args

    options = SlurmOptions(partition=args.slurm_partition, gpus=1 if args.slurm_gpus_per_job is None else
                           args.slurm_gpus_per_job, cpus=args.slurm_cpus_per_job,
                           time_min=24 * 60 if args.slurm_time is None else args.slurm_time,
                           sbatch=split_sbatch_args(args.slurm_args))
    check_device(args.device, options.gpus)
    return options


def run(args) -> int:
    """One run of ``run_all.py`` with its parsed arguments (``args.argv``: the arguments given to
    ``run_all.main``, None for ``sys.argv``); the exit status."""
    from cfin.device import resolve_device
    from cfin.records import load_known_records
    from cfin.runner import check_budget, plan_jobs, run_jobs

    t0 = time.perf_counter()
    check_budget(args.budget)
    seeds = parse_seeds(args.seeds)
    slurm = slurm_options(args)
    # a Slurm job resolves its device itself (the login node may have no GPU)
    device = args.device if slurm is not None else str(resolve_device(args.device)) if args.device else None
    if args.jobs < 1:
        raise CFINError(f"--jobs must be a positive integer, got {args.jobs}")
    if args.list:
        list_tables(resolve_tables(args.table, default_all=True), args.budget)
        return 0
    if args.status:
        from cfin.runner.status import render_status, status_rows

        tables = resolve_tables(args.table, default_all=True)
        check_data(tables, args.data_root, args.budget)  # a mistyped --data-root is not "nothing trained yet"
        jobs = plan_jobs(tables, args.budget, seeds, args.data_root, args.results, args.runs, device)
        print(render_status(status_rows(jobs, slurm_jobs=True)))
        try:  # what a run checks first: a file under --results, an output folder, that it would stop on
            load_known_records(args.results)
            check_output_folders(args, OUTPUT_OPTIONS)
        except CFINError as e:
            print(f"run_all.py: a run would stop before any training: {e}", file=sys.stderr)
            return 2
        return 0
    check_output_folders(args, ("--reports",) if args.report_only or args.complexity_only or args.recount
                         else OUTPUT_OPTIONS)
    if args.complexity_only:
        from cfin.report import write_complexity_reports, write_index
        from cfin.report.complexity import COMPLEXITY_DIR
        from cfin.tables import all_tables

        tables = resolve_tables(args.table, default_all=True)
        records = load_known_records(args.results)  # for the index; checked before anything is written
        out = Path(args.reports) / COMPLEXITY_DIR
        written = write_complexity_reports(tables, out, index_tables=all_tables())
        write_index(records, args.reports, Folders(args.results, args.runs, args.reports))
        counted = sum(len(t.reproducible_rows) for t in tables)
        print(f"complexity of {counted} rows in {len(tables)} table(s), beside the paper's numbers of "
              f"{sum(len(t.rows) for t in tables) - counted} quoted rows ({time.perf_counter() - t0:.1f} s): "
              f"{out}/ ({len(written)} files)")
        return 0
    if args.peer_weights is not None:
        return run_peer_weights(args, t0)
    if args.report_only or args.recount:
        from cfin.report import build_reports

        tables = None if not args.table or any(i.lower() == "all" for i in args.table) else \
            [t.id for t in resolve_tables(args.table, default_all=False)]
        if args.recount:
            from cfin.provenance import git_commit
            from cfin.records import check_results_folder
            from cfin.runner.recount import recount_records, render_recounts

            check_results_folder(args.results)
            print(render_recounts(recount_records(args.results, tables, not args.no_progress, git_commit())))
        written = build_reports(args.results, args.reports, tables, runs=args.runs)
        print(f"{len(written)} report files written under {args.reports}/ (index: {Path(args.reports) / 'index.html'})")
        return 0

    tables = resolve_tables(args.table, default_all=False)
    check_data(tables, args.data_root, args.budget)
    # every file under --results, as the reports at the end read them: a file that is not a record this
    # code reads (never replaced), two records of one key, an unknown row stop the run before any training
    load_known_records(args.results)
    command = "python run_all.py " + shlex.join(sys.argv[1:] if args.argv is None else args.argv)
    jobs = plan_jobs(tables, args.budget, seeds, args.data_root, args.results, args.runs, device, args.force,
                     command, args.impl, args.tf32)
    if slurm is not None:
        outcomes = run_on_slurm(args, jobs, slurm)
        if isinstance(outcomes, int):  # detached, a dry run, or no longer waiting: the exit status
            return outcomes
    else:
        if args.jobs > 1:
            from cfin.runner.parallel import assign_devices

            jobs = assign_devices(jobs, device)
        outcomes = run_jobs(jobs, args.jobs, progress=not args.no_progress)
    for o in outcomes:
        detail = f"{o.seconds:.0f} s" if o.status == "done" and o.seconds else (o.detail or "record exists")
        print(f"{o.status:>7}  {o.name}: {detail}")

    from cfin.report import build_reports

    written = build_reports(args.results, args.reports, [t.id for t in tables], require=False, runs=args.runs)
    reports = [str(p) for p in written if p.suffix in (".md", ".html")]
    print(f"reports: {', '.join(reports)} ({time.perf_counter() - t0:.0f} s in all)")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        print(f"run_all.py: {len(failed)} row(s) failed; fix the cause and run the same command again "
              f"(finished rows are kept)", file=sys.stderr)
        return 1
    return 0


def run_peer_weights(args, t0: float) -> int:
    """``--peer-weights``: the rebuilt rows re-scored from released weights (:mod:`cfin.runner.released`)."""
    from cfin.records import load_known_records
    from cfin.report import build_reports
    from cfin.runner.released import run_released

    tables = resolve_tables(args.table, default_all=False)
    load_known_records(args.results)  # a file under --results this code cannot read stops it before any work
    command = "python run_all.py " + shlex.join(sys.argv[1:] if args.argv is None else args.argv)
    outcomes = run_released(tables, args.peer_weights, args.data_root, args.results, args.device, args.force,
                            progress=not args.no_progress, command=command)
    for status, name in outcomes:
        print(f"{status:>7}  {name}")
    written = build_reports(args.results, args.reports, [t.id for t in tables], require=False, runs=args.runs)
    reports = [str(p) for p in written if p.suffix in (".md", ".html")]
    print(f"reports: {', '.join(reports)} ({time.perf_counter() - t0:.0f} s in all)")
    return 0


def run_on_slurm(args, jobs, options):
    """``--launcher slurm``: each training of ``jobs`` that has a row to run submitted as a Slurm
    job (:mod:`cfin.runner.slurm`), then waited for; the rows' outcomes in ``jobs``' order, or the
    exit status where the command ends before the jobs do (``--detach``, ``--dry-run``, Ctrl-C)."""
    from cfin.runner import slurm
    from cfin.runner.group import TrainingJob
    from cfin.runner.parallel import training_groups
    from cfin.runner.row import Outcome, needs_run
    from cfin.runner.slurm_jobs import wait

    todo = [(i, job) for i, job in enumerate(jobs) if needs_run(job)]
    groups = training_groups(todo)
    trainings = [TrainingJob(tuple(job for _, job in group)) for group in groups]
    if args.dry_run:
        print(slurm.render_plan(trainings, options, len(jobs) - len(todo)))
        return 0
    submissions = slurm.submit(trainings, options)
    for s in submissions:
        print(f"{'waiting on' if s.attached else 'submitted'} Slurm job {s.job_id}: {s.training.name}; "
              f"log {s.stderr}", flush=True)
    if args.detach and submissions:
        folders = " ".join(f"--{n} {getattr(args, n)}" for n in ("results", "runs", "reports"))
        tables = " ".join(dict.fromkeys(job.table.id for job in jobs))
        plan = f" --data-root {args.data_root}" if args.data_root else ""
        plan += f" --seeds {' '.join(args.seeds)}" if list(args.seeds) != ["0"] else ""
        print(f"detached: python run_all.py --status --table {tables} --budget {args.budget}{plan} {folders} "
              f"follows them; once they end, python run_all.py --report-only {folders} renders what they recorded")
        return 0
    try:
        ends = wait(submissions, options.poll_s, progress=not args.no_progress)
    except KeyboardInterrupt:
        from cfin.errors import end_progress_bars

        end_progress_bars()
        print("run_all.py: stopped waiting; the Slurm jobs go on (scancel stops them): --status follows them, the "
              "same command waits for them again, --report-only renders what they recorded", file=sys.stderr)
        return 130
    outcomes = [Outcome(job.name, "skipped", job.record_path) for job in jobs]
    for group, end in zip(groups, ends):
        for (i, _), outcome in zip(group, end.outcomes()):
            outcomes[i] = outcome
    return outcomes
