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
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import jsonschema
import pandas as pd

from cfin.atomic import atomic_write_json
from cfin.errors import CFINError, choice_error
from cfin.paths import Folders
from cfin.train.recipes import check_budget

RECORD_FORMAT = "cfin-record"
RECORD_VERSION = 1
DEFAULT_RESULTS = Path(Folders().results)

EMBEDDED = "embedded"
DIV2K = "div2k"
DATASETS = (EMBEDDED, DIV2K)  # the data labels of records
# A rebuilt peer's released weights, scored without training (run_all.py --peer-weights): the
# record's budget and its data label (the table's benchmarks).
RELEASED = "released"
BENCHMARK = "benchmark"


def dataset_label(data_root: str | Path | None) -> str:
    """A record's data label: ``embedded`` without ``--data-root``, ``div2k`` with one."""
    return EMBEDDED if data_root is None else DIV2K


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


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # 4.0 and True are not a scale or seed


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", lambda _, v: _is_int(v)))

_INT, _NUMBER, _STRING = {"type": "integer"}, {"type": "number"}, {"type": "string"}


def _object(properties: dict | None = None, required=(), null: bool = False, each: dict | None = None) -> dict:
    schema = {"type": ["object", "null"] if null else "object", "properties": properties or {},
              "required": list(required)}
    if each is not None:
        schema["additionalProperties"] = each
    return schema


def _or_null(schema: dict) -> dict:
    return {**schema, "type": [schema["type"], "null"]}


# What code reading records (reports, records_frame) relies on, as a JSON Schema (validated by
# the jsonschema library). Fields not listed are free.
RECORD_SCHEMA = _object({
    "version": _INT, "table": _STRING, "row": _STRING, "scale": _INT, "seed": _INT, "budget": _STRING,
    "dataset": _STRING,
    "metrics": _object(each=_object({"psnr": _NUMBER, "ssim": _NUMBER, "images": _or_null(_INT)},
                                    required=("psnr", "ssim"))),
    "config": _object(), "config_hash": _STRING, "self_ensemble": {"type": "boolean"}, "impl": _STRING,
    "tf32": {"type": "boolean"}, "wall_time_s": _or_null(_NUMBER),
    "recipe": _object({"iterations": _INT, "loss": _STRING, "lr_step_every": _INT}),
    "data": _object({"root": _or_null(_STRING), "train": _STRING}),
    "complexity": _object(each=_object({
        "params": _or_null(_NUMBER), "multi_adds": _or_null(_NUMBER), "label": _STRING,
        "input": {"type": "array", "items": _INT, "minItems": 4, "maxItems": 4}})),
    "memory": _object({"peak_mb": _or_null(_NUMBER), "condition": _STRING}, null=True),
    "latency": _object({"seconds": _or_null(_NUMBER), "condition": _STRING,
                        "raw": _object({"iqr_ms": _NUMBER}, null=True)}, null=True),
    "training": _object({"run_dir": _or_null(_STRING), "elapsed_s": _or_null(_NUMBER),
                         "scored_weights": _object({"weights": _STRING}, null=True)}, null=True),
    "env": _object(null=True),
    "curve": {"type": "array", "items": _object({"iteration": _NUMBER, "loss": _or_null(_NUMBER),
                                                  "val_psnr": _or_null(_NUMBER)}, required=("iteration",))},
}, required=("version", "table", "row", "scale", "seed", "budget", "dataset", "metrics"))

_TYPE_WORDS = {"integer": "an int", "number": "a number", "string": "a string", "boolean": "true or false",
               "object": "a JSON object", "array": "a list", "null": "null"}


def _expected(schema: dict) -> str:
    """A field's schema in words: ``a list of 4 ints``, ``a number or null``."""
    types = schema.get("type", [])
    words = [_TYPE_WORDS[t] for t in ([types] if isinstance(types, str) else types)]
    if schema.get("minItems") is not None and schema.get("minItems") == schema.get("maxItems"):
        words[0] = f"a list of {schema['minItems']} ints"
    return " or ".join(words)


def _field_name(path) -> str:
    """``metrics.embedded.psnr``, ``curve[0].loss``."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def schema_problem(record: dict) -> str | None:
    """What is wrong with ``record`` against :data:`RECORD_SCHEMA` (the outermost field first), or None."""
    errors = sorted(_Validator(RECORD_SCHEMA).iter_errors(record), key=lambda e: (len(e.absolute_path),
                                                                                    list(map(str, e.absolute_path))))
    if not errors:
        return None
    error = errors[0]
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        field = _field_name([*error.absolute_path, missing])
        return f"field {field!r} is missing ({_expected(error.schema['properties'][missing])} expected)"
    field = _field_name(error.absolute_path)
    return f"field {field!r} must be {_expected(error.schema)} (got {_short(error.instance)})"


def _read_json(path: Path):
    """The JSON in ``path``; a CFINError saying what to do where the file cannot be read as JSON."""
    if path.is_dir():
        raise CFINError(f"record {path} is a folder, not a record file; move it out of the results folder")
    if path.is_symlink() and not path.exists():  # a rerun would recompute the row and replace the link
        raise CFINError(f"record {path} is a link to {os.readlink(path)}, which does not exist; restore its target "
                        f"(a drive not mounted?) or remove the link")
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
    for path in _record_paths(root):
        if wanted is not None and path.parts[-3] not in wanted:
            continue
        out.append(read_record(path))
    check_unique(out)
    return out


def _record_paths(root: Path) -> list[Path]:
    """``root/*/*/*.json`` in path order, as glob finds them, but a folder on the way that cannot be
    read is a CFINError naming it: glob skips it, leaving its records out of the reports."""
    def listed(folder: Path) -> list[Path]:
        try:
            return sorted(folder.iterdir())
        except OSError as e:
            raise CFINError(f"cannot read {folder} ({e.strerror or e}); make it readable, or move it out of the "
                            f"results folder") from None
    return [path for table in listed(root) if table.is_dir() for row in listed(table) if row.is_dir()
            for path in listed(row) if path.suffix == ".json"]


def _known_problem(record: dict) -> str | None:
    """What of a record's table, row, scale, budget and dataset this code does not know, or None."""
    from cfin.tables import get_table

    released = record["budget"] == RELEASED  # a rebuilt peer's released weights, scored (run_all --peer-weights)
    try:
        table = get_table(record["table"])
        rows = {r.id: r for r in (table.peer_rows if released else table.reproducible_rows)}
        if record["row"] not in rows:
            raise choice_error(f"{'rebuilt ' if released else ''}row of Table {table.id}", record["row"], rows)
        if not released:
            check_budget(record["budget"])
        datasets = (BENCHMARK,) if released else DATASETS
        if record["dataset"] not in datasets:
            raise choice_error("dataset", record["dataset"], datasets)
    except CFINError as e:
        return str(e)
    scale = table.row_scale(rows[record["row"]])
    if record["scale"] != scale:
        return f"scale {record['scale']} is not that of row {record['row']!r} of Table {table.id} (x{scale})"
    key = RecordKey.of(record)
    where = key.path("", row_slugs(table)[key.row])  # <table>/<row>/<file>, as under any results folder
    if "path" in record and Path(*Path(record["path"]).parts[-3:]) != where:
        return (f"its fields make it {key.describe()}, whose file is {where} under the results folder (a "
                f"renamed record is not found when its row is rerun, so the row would be trained again); "
                f"rename it to that")
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
