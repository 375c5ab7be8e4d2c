"""Result records: one JSON file per (table, row, scale, seed, budget, dataset), written atomically.

A record is everything one reproduction of one paper-table row produced::

    results/<table>/<row-slug>/x<scale>_seed<seed>_<budget>_<dataset>.json

``dataset`` names the data the row was trained and evaluated on: ``embedded`` (the bundled
pictures, no ``--data-root``) or ``div2k`` (DIV2K training, the table's benchmarks). Inside:
the config and its hash, the recipe, the metrics per evaluation set, the complexity under
every counting convention, memory, latency, the environment (device, torch, git commit) and
the wall time. Reports are built from records only (:mod:`cfin.report`).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from cfin.atomic import atomic_write_json
from cfin.errors import CFINError

RECORD_FORMAT = "cfin-record"
RECORD_VERSION = 1
DEFAULT_RESULTS = Path("results")


def slug(text: str) -> str:
    """A file-name-safe form of a table or row id: runs of characters other than letters,
    digits, ``+ . -`` become ``_`` ("x4 CFIN+" -> "x4_CFIN+")."""
    s = re.sub(r"[^A-Za-z0-9+.\-]+", "_", str(text)).strip("_")
    if not s:
        raise CFINError(f"id {text!r} has no letter or digit to name a file after")
    return s


def row_slugs(table) -> dict[str, str]:
    """``{row id: slug}`` for every row of ``table``; a CFINError when two rows share a slug."""
    seen: dict[str, str] = {}
    for row in table.rows:
        s = slug(row.id)
        if s.lower() in seen:
            raise CFINError(f"Table {table.id}: rows {seen[s.lower()]!r} and {row.id!r} map to the same "
                            f"file name {s!r}; rename one of them")
        seen[s.lower()] = row.id
    return {row.id: slug(row.id) for row in table.rows}


def config_hash(config) -> str:
    """SHA-256 (first 16 hex digits) of the config's fields that differ from the defaults, as
    canonical JSON: a field added to :class:`~cfin.config.CFINConfig` later (with a default that
    keeps the network as it was) leaves the hashes of existing records unchanged."""
    import dataclasses

    from cfin.config import CFINConfig

    d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    defaults = {f.name: f.default for f in dataclasses.fields(CFINConfig)
                if f.default is not dataclasses.MISSING}
    norm = json.loads(json.dumps(defaults, default=list))
    changed = {k: v for k, v in json.loads(json.dumps(d, default=list)).items() if norm.get(k, object()) != v}
    canonical = json.dumps(changed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RecordKey:
    """What one record is about; its file is :meth:`path` under the results folder."""

    table: str
    row: str
    scale: int
    seed: int
    budget: str
    dataset: str

    def filename(self) -> str:
        return f"x{self.scale}_seed{self.seed}_{slug(self.budget)}_{slug(self.dataset)}.json"

    def path(self, root: str | Path, row_slug: str | None = None) -> Path:
        return Path(root) / slug(self.table) / (row_slug or slug(self.row)) / self.filename()

    def as_dict(self) -> dict:
        return {"table": self.table, "row": self.row, "scale": self.scale, "seed": self.seed,
                "budget": self.budget, "dataset": self.dataset}


def write_record(path: str | Path, record: dict) -> Path:
    """Write ``record`` (a JSON-able dict holding the :class:`RecordKey` fields) atomically."""
    missing = [k for k in RecordKey.__dataclass_fields__ if k not in record]
    if missing:
        raise CFINError(f"record for {path} lacks {missing}")
    return atomic_write_json(path, {"format": RECORD_FORMAT, "version": RECORD_VERSION, **record})


def read_record(path: str | Path) -> dict:
    """One record; a CFINError naming the file when it is not a record."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CFINError(f"record not found: {path}") from None
    except json.JSONDecodeError as e:
        raise CFINError(f"record {path} is not valid JSON ({e}); delete it to recompute the row") from None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise CFINError(f"{path} is not a {RECORD_FORMAT} file")
    if data.get("version", 0) > RECORD_VERSION:
        raise CFINError(f"record {path} has version {data['version']}; this code reads up to {RECORD_VERSION}")
    data["path"] = str(path)
    return data


def load_records(root: str | Path = DEFAULT_RESULTS, tables: Iterable[str] | None = None) -> list[dict]:
    """Every record under ``root`` (optionally only those of ``tables``), in path order."""
    root = Path(root)
    if not root.is_dir():
        return []
    wanted = None if tables is None else {slug(t) for t in tables}
    out = []
    for path in sorted(root.glob("*/*/*.json")):
        if wanted is not None and path.parts[-3] not in wanted:
            continue
        out.append(read_record(path))
    return out


def records_frame(records: Iterable[dict] | str | Path = DEFAULT_RESULTS) -> pd.DataFrame:
    """Records as a DataFrame, one row per record, nested fields flattened with dots
    (``metrics.embedded.psnr``, ``complexity.paper.params``, ``env.torch``); the training
    curve is left out (read it from ``record["curve"]``)."""
    if isinstance(records, (str, Path)):
        records = load_records(records)
    flat = [{k: v for k, v in r.items() if k != "curve"} for r in records]
    if not flat:
        return pd.DataFrame(columns=list(RecordKey.__dataclass_fields__))
    return pd.json_normalize(flat, sep=".")
