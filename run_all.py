#!/usr/bin/env python
"""Reproduce the paper's tables: train and evaluate every row, record, report side by side.

    python run_all.py --table VII                          # smoke budget on the bundled pictures, CPU minutes
    python run_all.py --table VII VIII --budget short --data-root DATA --device cuda --jobs 4
    python run_all.py --complexity-only --table all        # complexity of every row, no training
    python run_all.py --report-only                        # rebuild reports/ from results/
    python run_all.py --list                               # tables and rows

Records: results/<table>/<row>/x<scale>_seed<seed>_<budget>_<dataset>.json (existing ones are
kept unless --force; an interrupted row resumes from its checkpoint under runs/). Reports:
reports/table_<ID>.md and .html, reports/index.html; --complexity-only writes
reports/complexity/table_<ID>.md.
"""
from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path

from cfin.paths import Folders


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run_all.py", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--table", nargs="+", metavar="ID", help="paper table ids (I .. X, V-A.2) or 'all'")
    p.add_argument("--budget", default="smoke", help="training budget: smoke (CPU minutes; default), short "
                                                     "(hours on a GPU) or paper (the paper's schedule)")
    p.add_argument("--data-root", metavar="DIR", help="folder with DIV2K_train_HR and benchmark/<Set5>/HR "
                                                      "(default: the bundled pictures, label 'embedded')")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--seeds", nargs="+", default=["0"], metavar="N",
                   help="seeds from 0 to 2**63 - 1 (default 0), e.g. --seeds 0 1 2")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="rows in parallel: N processes (on several GPUs, rows are dealt one per GPU)")
    p.add_argument("--force", action="store_true", help="recompute rows whose record exists (training starts over)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--report-only", action="store_true", help="rebuild reports from the records, no training")
    mode.add_argument("--complexity-only", action="store_true",
                      help="no training: the complexity of every row, written to reports/complexity/")
    mode.add_argument("--list", action="store_true", help="list the tables and their rows")
    for name, what in (("results", "records"), ("runs", "training"), ("reports", "reports")):
        default = getattr(Folders(), name)
        p.add_argument(f"--{name}", default=default, metavar="DIR", help=f"{what} folder (default {default}/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--impl", default="faithful", metavar="{faithful,fast}",
                   help="how each row's network is trained and evaluated: 'faithful' (default; the official "
                        "code's computation) or 'fast' (the same function and weights by cfin's rewrites: "
                        "on a CPU about 1.7x faster training; README, Performance). Records keep which; "
                        "complexity, memory and latency are of the faithful computation either way")
    from cfin.commands._common import add_tf32_argument

    add_tf32_argument(p)
    return p


def parse_seeds(values: list[str]) -> list[int]:
    """The --seeds values (spaces or commas between them) as distinct ints from 0 to 2**63 - 1."""
    from cfin.commands._common import check_seed
    from cfin.errors import CFINError

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
    from cfin.errors import CFINError
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


def run(args) -> int:
    from cfin.device import resolve_device
    from cfin.records import load_known_records
    from cfin.runner import check_budget, plan_jobs, run_jobs

    t0 = time.perf_counter()
    check_budget(args.budget)
    seeds = parse_seeds(args.seeds)
    device = str(resolve_device(args.device)) if args.device else None
    if args.jobs < 1:
        from cfin.errors import CFINError

        raise CFINError(f"--jobs must be a positive integer, got {args.jobs}")
    if args.list:
        list_tables(resolve_tables(args.table, default_all=True), args.budget)
        return 0
    from cfin.paths import output_dir

    # every folder this command writes, checked before any work whose results it would hold
    for option, folder in (("--reports", args.reports), ("--results", args.results), ("--runs", args.runs)):
        if option == "--reports" or not (args.report_only or args.complexity_only):
            output_dir(folder, option, create=False)
    if args.complexity_only:
        from cfin.report import write_complexity_reports, write_index
        from cfin.tables import all_tables

        tables = resolve_tables(args.table, default_all=True)
        records = load_known_records(args.results)  # for the index; checked before anything is written
        out = Path(args.reports) / "complexity"
        written = write_complexity_reports(tables, out, index_tables=all_tables())
        write_index(records, args.reports, Folders(args.results, args.runs, args.reports))
        print(f"complexity of {sum(len(t.rows) for t in tables)} rows in {len(tables)} table(s) "
              f"({time.perf_counter() - t0:.1f} s): {out}/ ({len(written)} files)")
        return 0
    if args.report_only:
        from cfin.report import build_reports

        tables = None if not args.table or any(i.lower() == "all" for i in args.table) else \
            [t.id for t in resolve_tables(args.table, default_all=False)]
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
    if args.jobs > 1:
        from cfin.runner.parallel import assign_devices

        jobs = assign_devices(jobs, device)
    outcomes = run_jobs(jobs, args.jobs, progress=not args.no_progress)
    for o in outcomes:
        detail = f"{o.seconds:.0f} s" if o.status == "done" else ("record exists" if o.status == "skipped" else o.error)
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


def main(argv: list[str] | None = None) -> int:
    from cfin.errors import CFINError, reader_gone

    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return run(args)
    except CFINError as e:
        print(f"run_all.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("run_all.py: interrupted; run the same command again to resume (finished rows are kept, an "
              "interrupted row resumes from its checkpoint)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return reader_gone()


def _interrupt_on_sigterm() -> None:
    """SIGTERM ends the command as Ctrl-C does (workers stopped, the resume hint printed), not
    by killing this process alone while its worker processes train on."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    _interrupt_on_sigterm()
    raise SystemExit(main())
