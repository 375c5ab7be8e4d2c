"""Results written atomically get the permissions a plain ``open(path, "w")`` gives: 0666 less the umask.

A temporary file from ``tempfile.mkstemp`` is private (0600); renamed into a shared results
folder as it is, a record, a report or a checkpoint would be unreadable to the rest of the
group. Each writer below goes through :mod:`cfin.atomic` (the training log's appends through a
plain ``open``, which gets them anyway); the umasks are the two usual ones (0022: others read;
0002: the group writes too).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import cfin
from cfin.checkpoint import save_checkpoint
from cfin.data.io import write_png
from cfin.records import write_record
from cfin.report.build import write_index
from cfin.train.log import TrainLog
from cfin.train.state import REQUIRED, save_state
from cfin.train.trainer import save_weights


def _write_each_kind(folder):
    """Every kind of file the suite writes into results/, reports/ and run folders; name -> path."""
    tiny = cfin.CFIN(cfin.preset("tiny"))
    written = {
        "record": write_record(folder / "results" / "TINY" / "KV_off" / "x4_seed0_micro_Set5.json",
                               dict(table="TINY", row="KV off", scale=4, seed=0, budget="micro", dataset="Set5")),
        "checkpoint (cfin.save)": save_checkpoint(tiny, folder / "runs" / "best.pt"),
        "weights of another network": save_weights(torch.nn.Conv2d(3, 3, 1), folder / "runs" / "other.pt"),
        "training state": save_state(folder / "runs" / "last.pt", {k: 0 for k in REQUIRED}),
        "decoded image": write_png(folder / "cache" / "img.png", np.zeros((4, 4, 3), np.uint8)),
        "report (index.html)": write_index([], folder / "reports"),
    }
    log = TrainLog(folder / "runs" / "train_log.jsonl")
    log.start(0)                                    # written atomically
    log.append({"iteration": 1, "loss": 1.0})       # then appended by a plain open
    written["training log"] = log.path
    return written


@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask-022", "umask-002"])
def test_records_reports_and_checkpoints_get_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        written = _write_each_kind(tmp_path)
        plain = tmp_path / "plain.txt"
        plain.write_text("")                        # what open(path, "w") gives under this umask
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert plain.stat().st_mode & 0o777 == expected
    modes = {name: oct(path.stat().st_mode & 0o777) for name, path in written.items()}
    assert modes == {name: oct(expected) for name in written}
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left behind"
