"""``run_all.py --peer-weights``: the rows whose network is rebuilt, re-scored from their released weights.

No training: a row of Tables I, II or IX whose network is rebuilt (``Row.peer``) and whose
authors released weights for its scale (``PeerSpec.weights``) is loaded strictly from the
file (:func:`cfin.peers.load`) and evaluated on its table's datasets exactly as the suite
evaluates CFIN, under every protocol of :mod:`cfin.protocols` (the default ``matlab`` at the
top, the others beside it: which of them reproduces the printed number is measured, not
assumed). One record per row::

    results/<table>/<row>/x<scale>_seed0_released_benchmark.json

``budget`` "released" and ``dataset`` "benchmark" mark it: the reports show it in a section of
its own, "released weights" (never "reproduced": nothing was trained).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from cfin.errors import CFINError
from cfin.records import BENCHMARK, RELEASED  # a record's budget and data label (re-exported)


@dataclass(frozen=True)
class ReleasedJob:
    """One row to re-score: its table and row, the peer and scale, the weights file."""

    table: str
    row: str
    peer: str
    scale: int
    weights: Path
    self_ensemble: bool = False  # a "+" row: the method's x8 self-ensemble, as printed

    @property
    def name(self) -> str:
        return f"Table {self.table} / {self.row} (released weights {self.weights.name})"


def weights_files(source: str | Path) -> dict[str, Path]:
    """``{released file name: path}`` from a folder holding the files under their published names,
    or from a JSON object mapping those names to paths (relative ones from the JSON's folder)."""
    source = Path(source).expanduser()
    if source.is_dir():
        return {p.name: p for p in sorted(source.iterdir()) if p.is_file()}
    if not source.exists():
        raise CFINError(f"--peer-weights {source} does not exist; give a folder holding the released files "
                        f"(IMDN_x4.pth, ...) or a JSON object mapping those names to paths")
    try:
        mapping = json.loads(source.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CFINError(f"--peer-weights {source} is neither a folder nor a readable JSON map ({e})") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise CFINError(f"--peer-weights {source}: expected a JSON object of released file name -> path "
                        f"(e.g. {{\"IMDN_x4.pth\": \"/data/IMDN_x4.pth\"}})")
    out = {}
    for name, path in mapping.items():
        p = Path(path).expanduser()
        p = p if p.is_absolute() else source.parent / p
        if not p.is_file():
            raise CFINError(f"--peer-weights {source}: {name} maps to {p}, which is not a file")
        out[name] = p
    return out


def known_files(tables) -> dict[str, tuple[str, int]]:
    """``{released file name: (peer, scale)}`` of every rebuilt row of ``tables``."""
    from cfin.peers import spec

    files = {}
    for table in tables:
        for row in table.peer_rows:
            scale = table.row_scale(row)
            name = spec(row.peer).weights.get(scale)
            if name:
                files[name] = (row.peer, scale)
    return files


def plan(tables, source) -> list[ReleasedJob]:
    """A job for each rebuilt row of ``tables`` whose released file ``source`` holds; a CFINError
    where it holds none of them, naming the files the rows read."""
    from cfin.peers import spec

    found = weights_files(source)
    jobs = []
    for table in tables:
        for row in table.peer_rows:
            scale = table.row_scale(row)
            name = spec(row.peer).weights.get(scale)
            if name and name in found:
                jobs.append(ReleasedJob(table.id, row.id, row.peer, scale, found[name], row.self_ensemble))
    if not jobs:
        wanted = sorted(known_files(tables))
        ids = ", ".join(t.id for t in tables)
        raise CFINError(f"--peer-weights {source} holds no released weights of a rebuilt row of Table {ids}"
                        + (f"; they read {', '.join(wanted)}" if wanted else
                           " (no row there has released weights: Tables I and IX have)"))
    return jobs


def default_data_root() -> Path:
    """The ground truth's benchmarks (``../shared/datasets``: Set5), where no ``--data-root`` is given."""
    from cfin.paths import shared_dir

    shared = shared_dir()
    if shared is None or not (shared / "datasets" / "benchmark" / "Set5" / "HR").is_dir():
        raise CFINError("--peer-weights without --data-root scores Set5 of the ground truth in ../shared, which "
                        "is not here; give --data-root DIR (a folder with benchmark/<Set5>/HR)")
    return shared / "datasets"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def score(job: ReleasedJob, data_root: Path, datasets: list[str], device, progress: bool = False) -> dict:
    """The record of one job (every field but the file's path): metrics under every protocol."""
    from cfin.data import open_dataset
    from cfin.evaluate import evaluate_model
    from cfin.peers import load, spec
    from cfin.protocols import DEFAULT_PROTOCOL, PROTOCOLS
    from cfin.provenance import environment
    from cfin.runner.measure import peer_complexity

    t0 = time.perf_counter()
    model = load(job.peer, job.weights, job.scale)
    sets = [open_dataset(data_root, name, job.scale) for name in datasets]
    metrics = evaluate_model(model, job.scale, sets, self_ensemble=job.self_ensemble, device=device,
                             progress=progress, protocol=DEFAULT_PROTOCOL, also=list(PROTOCOLS))
    peer = spec(job.peer)
    return {"table": job.table, "row": job.row, "scale": job.scale, "seed": 0, "budget": RELEASED,
            "dataset": BENCHMARK, "metrics": metrics, "self_ensemble": job.self_ensemble,
            "peer": {"name": peer.name, "title": peer.title, "source": str(peer.source),
                     "trained_range": peer.trained_range},
            "weights": {"file": job.weights.name, "sha256": _sha256(job.weights)},
            "data": {"root": str(data_root), "train": "none: the authors' released weights"},
            "complexity": peer_complexity(job.peer, job.scale),
            "env": environment(device), "wall_time_s": round(time.perf_counter() - t0, 2)}


def datasets_for(table, data_root: Path) -> list[str]:
    """The table's benchmarks found under ``data_root``; a CFINError where none is."""
    from cfin.data import available_datasets

    found = set(available_datasets(data_root))
    names = [d for d in table.datasets if d in found]
    if not names:
        raise CFINError(f"none of Table {table.id}'s datasets ({', '.join(table.datasets)}) is under {data_root} "
                        f"(expected {data_root}/benchmark/<name>/HR)")
    return names


def run_released(tables, source, data_root, results, device=None, force: bool = False, progress: bool = True,
                 command: str = "") -> list[tuple[str, str]]:
    """Score every job of :func:`plan` whose record is not there yet (all with ``force``) and write its
    record atomically; ``[(status, job name)]``. Each scored checkpoint is loaded strictly first."""
    from tqdm.auto import tqdm

    from cfin.records import RecordKey, row_slugs, write_record
    from cfin.tables import get_table

    from cfin.device import resolve_device

    device = resolve_device(device)
    data_root = Path(data_root) if data_root is not None else default_data_root()
    jobs = plan(tables, source)
    sets = {t.id: datasets_for(t, data_root) for t in tables if any(j.table == t.id for j in jobs)}
    outcomes = []
    for job in tqdm(jobs, desc="released weights", unit="row", disable=not progress):
        table = get_table(job.table)
        key = RecordKey(job.table, job.row, job.scale, 0, RELEASED, BENCHMARK)
        path = key.path(results, row_slugs(table)[job.row])
        if path.exists() and not force:
            outcomes.append(("exists", job.name))
            continue
        record = score(job, data_root, sets[job.table], device)
        record["command"] = command
        write_record(path, record)
        outcomes.append(("done", job.name))
    return outcomes
