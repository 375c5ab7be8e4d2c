"""How far each float32 bound of the test suite is from what this machine measures.

Runs the tests marked ``numerics`` (goldens, fast path vs faithful, the ablation rows'
equality) once per setting below, each check writing its deviation, bound and noise
(``tests/numerics.py``, ``CFIN_NUMERICS_LOG``), and prints per bound and setting the largest
deviation, the tightest margin (bound / deviation) and the largest deviation over the
float32 noise measured in the same run (which ``NOISE_FACTOR`` must cover)::

    python tools/numerics_margins.py                       # all settings, 2-4 min each on 2 cores
    python tools/numerics_margins.py --settings avx2 -- tests/test_official.py
    python tools/numerics_margins.py --json margins.json   # the rows as JSON as well

A setting limits the instruction sets oneDNN (``ONEDNN_MAX_CPU_ISA``), ATen's vectorised
loops (``ATEN_CPU_CAPABILITY``) or MKL (``MKL_ENABLE_INSTRUCTIONS``) may use, or the threads;
the default is whatever this CPU offers, and variables set by the caller apply to every
setting (``OMP_NUM_THREADS=1 python tools/numerics_margins.py --settings avx2-cpu``). Exit
status 1 if any run failed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from cfin.atomic import atomic_write

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {
    "default": {},
    "onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "1-thread": {"OMP_NUM_THREADS": "1"},
    # a CPU with AVX2 and no more, as CI's second run (.ci/run)
    "avx2-cpu": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def run(setting: str, pytest_args: list[str]) -> tuple[int, list[dict]]:
    """Run the marked tests under ``setting``: pytest's exit status and the logged checks."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "checks.jsonl"
        env = {**os.environ, **SETTINGS[setting], "CFIN_NUMERICS_LOG": str(log)}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "numerics", *pytest_args]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if proc.returncode:
            tqdm.write(f"{setting}: pytest exited {proc.returncode}\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
        rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc.returncode, rows


def summarise(setting: str, rows: list[dict]) -> list[dict]:
    """One row per bound: checks, largest deviation, tightest margin, largest deviation / noise."""
    by_bound = defaultdict(list)
    for r in rows:
        by_bound[r["bound"]].append(r)
    out = []
    for bound, checks in by_bound.items():
        ratios = [c["deviation"] / c["noise"] for c in checks if c["noise"]]
        margins = [c["limit"] / c["deviation"] for c in checks if c["deviation"] > 0]
        out.append({"bound": bound, "setting": setting, "checks": len(checks),
                    "max_deviation": max(c["deviation"] for c in checks),
                    "min_limit": min(c["limit"] for c in checks),
                    "min_margin": min(margins) if margins else None,
                    "max_deviation_over_noise": max(ratios) if ratios else None})
    return out


def render(rows: list[dict]) -> str:
    """A markdown table, grouped by bound."""
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)
    lines = ["| bound | setting | checks | largest deviation | smallest bound | tightest margin | deviation / noise |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["bound"], list(SETTINGS).index(r["setting"]))):
        lines.append(f"| {r['bound']} | {r['setting']} | {r['checks']} | {num(r['max_deviation'], '.2e')} | "
                     f"{num(r['min_limit'], '.2e')} | {num(r['min_margin'], '.1f')}x | "
                     f"{num(r['max_deviation_over_noise'], '.2f')} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                        help="which limits to run under (default: all)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("pytest_args", nargs="*", help="after --: test files or pytest options")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rows, failed = [], False
    for setting in tqdm(args.settings, desc="settings", unit="run"):
        code, checks = run(setting, args.pytest_args)
        failed |= code != 0
        rows.extend(summarise(setting, checks))
    print(render(rows))
    if args.json:
        atomic_write(args.json, lambda f: f.write(json.dumps(rows, indent=1)), mode="w")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
