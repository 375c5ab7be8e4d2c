#!/usr/bin/env python
"""Reproduce the paper's tables: train and evaluate every row, record, report side by side.

    python run_all.py --table VII                          # smoke budget on the bundled pictures, CPU minutes
    python run_all.py --table VII VIII --budget short --data-root DATA --device cuda --jobs 4
    python run_all.py --complexity-only --table all        # complexity of every row, no training
    python run_all.py --report-only                        # rebuild reports/ from results/
    python run_all.py --recount                            # the records' counts by the current code, then reports
    python run_all.py --list                               # tables and rows
    python run_all.py --status --table VII VIII            # each row's record and training, and who trains it now
    python run_all.py --table I IX --peer-weights DIR      # rebuilt rows re-scored from released weights
    python run_all.py --table all --budget paper --data-root DATA --launcher slurm --slurm-partition gpu
                                                           # one Slurm job per training (docs/cluster.md)

Records: results/<table>/<row>/x<scale>_seed<seed>_<budget>_<dataset>.json (existing ones are
kept unless --force; an interrupted row resumes from its checkpoint under runs/). Reports:
reports/table_<ID>.md and .html, reports/index.html; --complexity-only writes
reports/complexity/table_<ID>.md.
"""
from __future__ import annotations

import argparse
import signal
import sys

from cfin.paths import Folders


class _Parser(argparse.ArgumentParser):
    """run_all.py's parser: ``--slurm-args --account=lab`` (one sbatch option, no space) is read as its value;
    argparse alone would take ``--account=lab`` for an option of run_all.py's own and stop."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        for i in range(len(args) - 1):
            if args[i] == "--slurm-args" and args[i + 1].startswith("-"):
                args[i:i + 2] = [f"--slurm-args={args[i + 1]}"]
                break
        return super().parse_known_args(args, namespace)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="run_all.py", description=__doc__.splitlines()[0],
                formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--table", nargs="+", metavar="ID", help="paper table ids (I .. X, V-A.2) or 'all'")
    p.add_argument("--budget", default="smoke", help="training budget: smoke (CPU minutes; default), short "
                                                     "(hours on a GPU), paper (the paper's schedule, as its code "
                                                     "ran it) or paper-text (as the paper's text states it)")
    p.add_argument("--data-root", metavar="DIR", help="folder with DIV2K_train_HR and benchmark/<Set5>/HR "
                                                      "(default: the bundled pictures, label 'embedded')")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--seeds", nargs="+", default=["0"], metavar="N",
                   help="seeds from 0 to 2**63 - 1 (default 0), e.g. --seeds 0 1 2")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="rows in parallel: N processes (on several GPUs, rows are dealt one per GPU)")
    p.add_argument("--force", action="store_true",
                   help="recompute rows whose record exists (training starts over); records and trainings "
                        "another command writes after this one started are kept")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--report-only", action="store_true", help="rebuild reports from the records, no training")
    mode.add_argument("--complexity-only", action="store_true",
                      help="no training: the complexity of every row, written to reports/complexity/")
    mode.add_argument("--recount", action="store_true",
                      help="count the records' networks again under every convention with the current code, "
                           "rewrite the records whose counts changed (nothing else in them), rebuild the reports")
    mode.add_argument("--peer-weights", metavar="DIR|MAP.json", default=None,
                      help="no training: re-score the rows whose network is rebuilt (cfin.peers) from their authors' "
                           "released weights in DIR (files named as published, e.g. IMDN_x4.pth) or in a JSON map "
                           "of those names to paths, on the tables' datasets under --data-root (default: Set5 of "
                           "../shared), then rebuild the reports")
    mode.add_argument("--list", action="store_true", help="list the tables and their rows")
    mode.add_argument("--status", action="store_true",
                      help="where each row stands (default: every table), nothing run: its record, its "
                           "training's iteration, and the process training it now with the time left")
    slurm = p.add_argument_group("Slurm (docs/cluster.md)")
    slurm.add_argument("--launcher", default="local", metavar="{local,slurm}",
                       help="who runs the trainings: 'local' (default: this machine, --jobs at a time) or 'slurm' "
                            "(one Slurm job per training through submitit, this command waiting for them)")
    slurm.add_argument("--slurm-partition", metavar="P", help="the jobs' partition (default: the cluster's)")
    slurm.add_argument("--slurm-gpus-per-job", type=int, metavar="N",
                       help="GPUs per job (default 1; 0: CPU jobs); N > 1 trains with DDP over N tasks")
    slurm.add_argument("--slurm-cpus-per-job", type=int, metavar="N",
                       help="CPUs per job (default: per task, the recipe's DataLoader workers + 1)")
    slurm.add_argument("--slurm-time", type=int, metavar="MINUTES",
                       help="each job's time limit (default 1440); at it a job checkpoints and requeues itself")
    slurm.add_argument("--slurm-args", metavar="ARGS",
                       help='further sbatch options, e.g. --slurm-args "--account=lab --qos=high"')
    slurm.add_argument("--detach", action="store_true",
                       help="submit and exit; --status follows the jobs, --report-only renders what they recorded")
    slurm.add_argument("--dry-run", action="store_true",
                       help="print the jobs --launcher slurm would submit and their cost (iterations; GPU-hours "
                            "from a timed training step on --device cuda), submit nothing")
    for name, what in (("results", "records"), ("runs", "training"), ("reports", "reports")):
        default = getattr(Folders(), name)
        p.add_argument(f"--{name}", default=default, metavar="DIR", help=f"{what} folder (default {default}/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--impl", default="faithful", metavar="{faithful,fast}",
                   help="how each row's network is trained and evaluated: 'faithful' (default; the official "
                        "code's computation) or 'fast' (the same function and weights by cfin's rewrites, "
                        "faster on a CPU: docs/performance.md). Records keep which; "
                        "complexity, memory and latency are of the faithful computation either way")
    from cfin.commands._common import add_tf32_argument

    add_tf32_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from cfin.errors import CFINError, end_progress_bars, reader_gone

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    from cfin.commands._common import check_not_empty
    from cfin.runner.command import run

    try:
        check_not_empty(parser, args)
        return run(args)
    except CFINError as e:
        end_progress_bars()
        print(f"run_all.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        end_progress_bars()
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
