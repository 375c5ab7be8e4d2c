"""The training log: one JSON object per line (``train_log.jsonl``), the source of training curves.

Each record has ``iteration``, ``epoch``, ``loss`` (mean over the iterations since the
previous record, over all processes), ``lr`` (after the step), ``time`` (training seconds
since the run began, summed over resumed segments) and, when the model was validated at
that iteration, ``val_psnr`` and ``best_psnr``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cfin.atomic import atomic_write_text

LOG_NAME = "train_log.jsonl"


class TrainLog:
    """Appends records line by line; on resume, first cuts the file back to the checkpoint."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def start(self, resume_iteration: int) -> None:
        """Keep only whole records up to ``resume_iteration`` (rewritten atomically)."""
        kept = [r for r in self.read() if r["iteration"] <= resume_iteration] if resume_iteration else []
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    def read(self) -> list[dict]:
        """Every whole record (a line cut short by a crash, or garbled, is skipped)."""
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_bytes().decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("iteration"), int):
                records.append(record)
        return records

    def last_iteration(self, tail_bytes: int = 8192) -> int:
        """The iteration of the last whole record (0 before any), from the file's tail alone: a
        launcher polls it while the run writes."""
        try:
            with open(self.path, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - tail_bytes))
                tail = f.read().decode("utf-8", errors="replace")
        except OSError:
            return 0
        for line in reversed(tail.splitlines()):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("iteration"), int):
                return record["iteration"]
        return 0


def read_log(path: str | Path) -> pd.DataFrame:
    """A training log (a file or a run folder) as a DataFrame, one row per record."""
    path = Path(path)
    if path.is_dir():
        path = path / LOG_NAME
    return pd.DataFrame(TrainLog(path).read())
