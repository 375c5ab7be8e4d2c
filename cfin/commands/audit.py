"""``cfin audit``: where CFIN as published and CFIN as released part ways, each point measured.

    cfin audit                                   # x4, official-format random-weight fixture
    cfin audit --official model_best_x4.pt --scale 4 --data-root DATA
    cfin audit --scale 2 --out reports --json

Writes ``audit.md``, ``audit.html`` and ``audit.json`` into ``--out`` (default ``reports``).
Without ``--official`` the weights are the random official-format fixture from
``../shared/reference`` (or fresh ones); numbers that depend on trained weights are labelled.
"""
from __future__ import annotations

import argparse
import json
from cfin.commands._common import check_scale
from cfin.paths import existing_file, output_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", type=int, default=4, help="2, 3 or 4 (default 4)")
    p.add_argument("--official", metavar="OFFICIAL.pt",
                   help="an official model_best_x{s}.pt state_dict (default: the random-weight fixture in "
                        "../shared/reference, else freshly initialised weights; the report says which)")
    p.add_argument("--data-root", metavar="DIR",
                   help="folder with benchmark/Set5/HR for the stochasticity finding (default: the shared Set5)")
    p.add_argument("--out", default="reports", metavar="DIR", help="where audit.md/.html/.json go (default reports)")
    p.add_argument("--seeds", type=int, default=5, metavar="N", help="Gumbel seeds to compare (default 5, at least 2)")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these findings (ids as in the report)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from cfin.audit import render_audit, run_audit

    if args.official is not None:
        existing_file(args.official, "official state_dict", f"a .pt file (model_best_x{args.scale}.pt)")
    check_scale(args.scale)
    output_dir(args.out, "--out")  # checked before the measurements it would hold
    report = run_audit(weights=args.official, scale=args.scale, device=args.device, data_root=args.data_root,
                       seeds=args.seeds, only=args.only, progress=not args.no_progress)
    paths = render_audit(args.out, report)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(f"CFIN x{report.scale} audit on {report.weights}: {report.confirmed} of {len(report.findings)} "
          f"findings confirmed ({report.seconds:.0f} s)")
    for f in report.findings:
        print(f"  [{'yes' if f.confirmed else 'NO '}] {f.id}: {f.title}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
