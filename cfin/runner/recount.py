"""``run_all.py --recount``: existing records' counts under the current counting code.

A record's Params / Multi-Adds are a function of its network and the input size, computed by
the code that wrote the record. When the counting changes (a library's count corrected, as
ptflops' on meta tensors was), records whose training took days keep the old figures, and a
``--force`` rerun would train again for a count. ``--recount`` counts every convention again
from each record's own config and rewrites the records whose counts changed, atomically, with
their training, scores, memory and latency untouched, noting when, by which commit, which
conventions changed and the counts the record was written with (``recounted``).
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from cfin.config import CFINConfig
from cfin.errors import CFINError
from cfin.records import RecordKey, load_known_records, read_record, write_record
from cfin.report import fmt
from cfin.runner.measure import ALL_CONVENTIONS, complexity

_COUNT_FIELDS = ("params", "multi_adds", "input")


@dataclass(frozen=True)
class Recount:
    """One record's counts before and after: ``changes`` maps each convention whose count moved
    to its (old, new) ``params / multi_adds`` text; ``skipped``: why it was not rewritten."""

    path: Path
    name: str
    changes: dict
    skipped: str = ""


def counts_of(block: dict) -> dict:
    """The numbers of a record's complexity block, per convention (labels and notes aside)."""
    return {name: {k: c.get(k) for k in _COUNT_FIELDS} for name, c in block.items() if isinstance(c, dict)}


def recount_records(results: str | Path, tables: list[str] | None = None, progress: bool = True,
                    commit: str | None = None) -> list[Recount]:
    """Count every record of ``tables`` (None: all) under :data:`ALL_CONVENTIONS` again and
    rewrite those whose counts changed. A record changed on disk while it was counted (another
    command wrote it) is left as it is, and says so. A record whose config this code does not
    build is a CFINError naming its file, before any record is rewritten."""
    records = [r for r in load_known_records(results) if tables is None or r["table"] in tables]
    configs = [_config(r) for r in records]
    at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    done = []
    for record, config in tqdm(list(zip(records, configs)), desc="recount", unit="record",
                               disable=not progress or len(records) < 2):
        path = Path(record.pop("path"))
        new = complexity(config, ALL_CONVENTIONS)
        old_counts, new_counts = counts_of(record.get("complexity", {})), counts_of(new)
        changes = {name: (_text(old_counts.get(name)), _text(counts)) for name, counts in new_counts.items()
                   if old_counts.get(name) != counts}
        name = RecordKey.of(record).describe()
        if not changes:
            done.append(Recount(path, name, {}))
            continue
        if _on_disk(path) != record:  # written, moved or removed since it was read
            done.append(Recount(path, name, changes, "it changed on disk while counted: run --recount again"))
            continue
        record["complexity"] = json.loads(json.dumps(new))
        earlier = (record.get("recounted") or {}).get("previous") or {}  # a second recount keeps the first's
        previous = {**{name: old_counts.get(name) for name in changes}, **earlier}  # as the record was written
        record["recounted"] = {"at": at, "commit": commit, "conventions": sorted(changes),
                               "previous": dict(sorted(previous.items()))}
        write_record(path, record)  # its own format version kept: only the counts are new
        done.append(Recount(path, name, changes))
    return done


def _on_disk(path: Path) -> dict | None:
    """The record at ``path`` now (None where there is none this code reads any more)."""
    try:
        return {k: v for k, v in read_record(path).items() if k != "path"}
    except CFINError:
        return None


def _config(record: dict) -> CFINConfig:
    """The network a record was trained as; a CFINError naming the record where this code does not build it."""
    try:
        return CFINConfig.from_dict(record["config"])
    except CFINError as e:
        raise CFINError(f"record {record['path']}: its config does not build with this code ({e}), so its counts "
                        f"cannot be recounted; move it out of the results folder (or delete it)") from None


def _text(counts: dict | None) -> str:
    if not counts:
        return "none"
    return f"{fmt.count_exact(counts['params'])} / {fmt.count_exact(counts['multi_adds'])} MACs"


def render_recounts(recounts: list[Recount]) -> str:
    """What ``--recount`` did, a record a line (its changes below it) and a total."""
    lines = []
    for r in recounts:
        if not r.changes:
            continue
        lines.append(f"{'kept' if r.skipped else 'recounted'}  {r.name}" + (f" ({r.skipped})" if r.skipped else ""))
        lines += [f"    {conv}: {old} -> {new}" for conv, (old, new) in sorted(r.changes.items())]
    changed = sum(1 for r in recounts if r.changes and not r.skipped)
    lines.append(f"{changed} of {len(recounts)} record(s) rewritten with new counts; "
                 f"{sum(1 for r in recounts if not r.changes)} already had the current code's counts")
    return "\n".join(lines)
