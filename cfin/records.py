"""Result records: one JSON file per (table, row, scale, seed, budget, dataset), written atomically.

A record is everything one reproduction of one paper-table row produced::

    results/<table>/<row-slug>/x<scale>_seed<seed>_<budget>_<dataset>.json

``dataset`` names the data the row was trained and evaluated on: ``embedded`` (the bundled
pictures, no ``--data-root``) or ``div2k`` (DIV2K training, the table's benchmarks). Inside:
the config and its hash, the recipe, the metrics per evaluation set, the complexity under
every counting convention, memory, latency, the environment (device, torch, git commit) and
the wall time. Reports are built from records only (:mod:`cfin.report`).

Reading is strict: a file under the results folder that is not a record this code reads (not
JSON, another tool's, a newer version's, a field of the wrong type: :data:`RECORD_SCHEMA`), two
records of one key, or a record of a table, row or budget this code does not know is a CFINError
naming the file and what to do. Nothing here deletes or overwrites such a file.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from cfin.atomic import atomic_write_json
from cfin.errors import CFINError, choice_error

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

    @classmethod
    def of(cls, record: dict) -> "RecordKey":
        """The key of a record read by :func:`read_record`."""
        return cls(**{name: record[name] for name in cls.__dataclass_fields__})

    def describe(self) -> str:
        return (f"Table {self.table} / {self.row}, x{self.scale} seed {self.seed}, {self.budget} budget, "
                f"{self.dataset}")


def write_record(path: str | Path, record: dict) -> Path:
    """Write ``record`` (a JSON-able dict holding the :class:`RecordKey` fields) atomically."""
    missing = [k for k in RecordKey.__dataclass_fields__ if k not in record]
    if missing:
        raise CFINError(f"record for {path} lacks {missing}")
    return atomic_write_json(path, {"format": RECORD_FORMAT, "version": RECORD_VERSION, **record})


@dataclass(frozen=True)
class FieldType:
    """What a record field must hold: ``accepts`` tests a JSON value, ``expected`` says it in words."""

    expected: str
    accepts: Callable[[object], bool]

    def or_null(self) -> "FieldType":
        """The same type, or null."""
        return FieldType(f"{self.expected} or null", lambda v: v is None or self.accepts(v))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return _is_int(value) or isinstance(value, float)


STRING = FieldType("a string", lambda v: isinstance(v, str))
INT = FieldType("an int", _is_int)
NUMBER = FieldType("a number", _is_number)
BOOL = FieldType("true or false", lambda v: isinstance(v, bool))
OBJECT = FieldType("a JSON object", lambda v: isinstance(v, dict))
LIST = FieldType("a list", lambda v: isinstance(v, list))
SHAPE = FieldType("a list of 4 ints", lambda v: isinstance(v, list) and len(v) == 4 and all(map(_is_int, v)))

# (field, type, required): the fields that code reading records (reports, records_frame) relies
# on. A dotted field lies inside the one before the dot; "*" stands for every key of an object
# or item of a list. A field comes after the field that holds it; "required" applies where
# that one is present.
RECORD_SCHEMA: tuple[tuple[str, FieldType, bool], ...] = (
    ("version", INT, True),
    ("table", STRING, True), ("row", STRING, True), ("scale", INT, True), ("seed", INT, True),
    ("budget", STRING, True), ("dataset", STRING, True),
    ("metrics", OBJECT, True), ("metrics.*", OBJECT, True), ("metrics.*.psnr", NUMBER, True),
    ("metrics.*.ssim", NUMBER, True), ("metrics.*.images", INT.or_null(), False),
    ("config", OBJECT, False), ("config_hash", STRING, False), ("self_ensemble", BOOL, False),
    ("impl", STRING, False), ("tf32", BOOL, False), ("wall_time_s", NUMBER.or_null(), False),
    ("recipe", OBJECT, False), ("recipe.iterations", INT, False), ("recipe.loss", STRING, False),
    ("data", OBJECT, False), ("data.root", STRING.or_null(), False), ("data.train", STRING, False),
    ("complexity", OBJECT, False), ("complexity.*", OBJECT, True),
    ("complexity.*.params", NUMBER.or_null(), False), ("complexity.*.multi_adds", NUMBER.or_null(), False),
    ("complexity.*.label", STRING, False), ("complexity.*.input", SHAPE, False),
    ("memory", OBJECT.or_null(), False), ("memory.peak_mb", NUMBER.or_null(), False),
    ("memory.condition", STRING, False),
    ("latency", OBJECT.or_null(), False), ("latency.seconds", NUMBER.or_null(), False),
    ("latency.condition", STRING, False), ("latency.raw", OBJECT.or_null(), False),
    ("latency.raw.iqr_ms", NUMBER, False),
    ("training", OBJECT.or_null(), False), ("training.run_dir", STRING.or_null(), False),
    ("training.elapsed_s", NUMBER.or_null(), False), ("training.scored_weights", OBJECT.or_null(), False),
    ("training.scored_weights.weights", STRING, False),
    ("env", OBJECT.or_null(), False),
    ("curve", LIST, False), ("curve.*", OBJECT, True), ("curve.*.iteration", NUMBER, True),
    ("curve.*.loss", NUMBER.or_null(), False), ("curve.*.val_psnr", NUMBER.or_null(), False),
)


def _child_name(parent: str, key) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def _step(nodes: list[tuple[str, object]], part: str) -> list[tuple[str, object]]:
    """The (name, value) one level down from each of ``nodes``: every child for "*", else the
    child named ``part`` where it exists (null containers have no children)."""
    out = []
    for name, node in nodes:
        if isinstance(node, dict):
            items = node.items() if part == "*" else [(part, node[part])] if part in node else []
        elif isinstance(node, list) and part == "*":
            items = enumerate(node)
        else:
            items = []
        out += [(_child_name(name, key), value) for key, value in items]
    return out


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def schema_problem(record: dict) -> str | None:
    """What is wrong with the first field of ``record`` that breaks :data:`RECORD_SCHEMA`, or None."""
    for field, kind, required in RECORD_SCHEMA:
        *parents, last = field.split(".")
        nodes = [("", record)]
        for part in parents:
            nodes = _step(nodes, part)
        for name, node in nodes:
            if required and last != "*" and isinstance(node, dict) and last not in node:
                return f"field {_child_name(name, last)!r} is missing ({kind.expected} expected)"
            for child, value in _step([(name, node)], last):
                if not kind.accepts(value):
                    return f"field {child!r} must be {kind.expected} (got {_short(value)})"
    return None


def _read_json(path: Path):
    """The JSON in ``path``; a CFINError saying what to do where the file cannot be read as JSON."""
    if path.is_dir():
        raise CFINError(f"record {path} is a folder, not a record file; move it out of the results folder")
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise CFINError(f"record not found: {path}") from None
    except OSError as e:
        raise CFINError(f"record {path} cannot be read ({e.strerror}); make it readable or move it out of the "
                        f"results folder") from None
    except UnicodeDecodeError:
        raise CFINError(f"record {path} is not a text file (not UTF-8 JSON); move it out of the results folder "
                        f"or delete it") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CFINError(f"record {path} is not valid JSON ({e}); move it out of the results folder, or delete "
                        f"it to recompute the row") from None


def check_version(path: Path, data: dict) -> None:
    """A CFINError unless ``data`` has an int version this code reads (a newer one was written by
    newer code, and is never overwritten here)."""
    version = data.get("version")
    if not _is_int(version):
        problem = "is missing" if "version" not in data else f"must be an int (got {_short(version)})"
        raise CFINError(f"record {path}: field 'version' {problem}; fix or delete it")
    if version > RECORD_VERSION:
        raise CFINError(f"record {path} has version {version}, written by a newer cfin-bench (this code reads "
                        f"up to version {RECORD_VERSION}); read it with that version, or move it out of the "
                        f"results folder")


def read_record(path: str | Path) -> dict:
    """One record, its fields checked against :data:`RECORD_SCHEMA`; a CFINError naming the file,
    what was wrong and what to do when it is not a record this code reads."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise CFINError(f"{path} is not a {RECORD_FORMAT} file (no \"format\": \"{RECORD_FORMAT}\"); the results "
                        f"folder holds records only: move it out of the results folder")
    check_version(path, data)
    problem = schema_problem(data)
    if problem:
        raise CFINError(f"record {path}: {problem}; fix or delete it")
    data["path"] = str(path)
    return data


def check_results_folder(root: str | Path) -> Path:
    """``root`` if it is a folder; a CFINError saying it is a file or does not exist."""
    root = Path(root)
    if root.is_dir():
        return root
    if root.exists():
        raise CFINError(f"results folder {root} is a file, not a folder; give --results the folder that holds "
                        f"the records (default results/)")
    raise CFINError(f"results folder {root} does not exist; give --results the folder that holds the records, "
                    f"or make some first (python run_all.py --table VII)")


def check_unique(records: list[dict]) -> None:
    """A CFINError naming both files where two records have the same :class:`RecordKey` (a copy
    beside the original would count as a second seed)."""
    seen: dict[RecordKey, str] = {}
    for record in records:
        key = RecordKey.of(record)
        if key in seen:
            raise CFINError(f"records {seen[key]} and {record['path']} are both {key.describe()}; keep one "
                            f"and move the other out of the results folder")
        seen[key] = record["path"]


def load_records(root: str | Path = DEFAULT_RESULTS, tables: Iterable[str] | None = None) -> list[dict]:
    """Every record under ``root`` (optionally only those of ``tables``), in path order; none when
    ``root`` does not exist. A CFINError naming the file for a file there that is not a record
    this code reads, or for two records of one key."""
    root = Path(root)
    if not root.exists():
        return []
    check_results_folder(root)
    wanted = None if tables is None else {slug(t) for t in tables}
    out = []
    for path in sorted(root.glob("*/*/*.json")):
        if wanted is not None and path.parts[-3] not in wanted:
            continue
        out.append(read_record(path))
    check_unique(out)
    return out


def _known_problem(record: dict) -> str | None:
    """What of a record's table, row, scale, budget and dataset this code does not know, or None."""
    from cfin.runner.jobs import DATASETS, check_budget
    from cfin.tables import get_table

    try:
        table = get_table(record["table"])
        rows = {r.id: r for r in table.reproducible_rows}
        if record["row"] not in rows:
            raise choice_error(f"row of Table {table.id}", record["row"], rows)
        check_budget(record["budget"])
        if record["dataset"] not in DATASETS:
            raise choice_error("dataset", record["dataset"], DATASETS)
    except CFINError as e:
        return str(e)
    scale = rows[record["row"]].config.scale
    if record["scale"] != scale:
        return f"scale {record['scale']} is not that of row {record['row']!r} of Table {table.id} (x{scale})"
    return None


def check_known(records: Iterable[dict]) -> None:
    """A CFINError naming the file of the first record whose table, reproducible row, scale, budget
    or dataset this code does not know (a report would show it as a blank row or a bogus section)."""
    for record in records:
        problem = _known_problem(record)
        if problem:
            raise CFINError(f"record {record['path']}: {problem}; fix it or move it out of the results folder")


def load_known_records(root: str | Path = DEFAULT_RESULTS) -> list[dict]:
    """:func:`load_records` of every table, each record of a table, row, budget and dataset this
    code knows (:func:`check_known`): the records a report may be built from."""
    records = load_records(root)
    check_known(records)
    return records


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
