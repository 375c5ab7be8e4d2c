"""Checkpoint files for the peers' weight tests: a released file with one thing changed."""
from __future__ import annotations

from pathlib import Path

import torch


def tampered(source: Path, tmp_path: Path, edit) -> Path:
    """A copy of the checkpoint ``source`` (its tensors as :func:`cfin.peers.read_state_dict` reads them)
    with ``edit(state_dict)`` applied, written under ``tmp_path``: a renamed key, a reshaped tensor."""
    import cfin.peers

    sd = cfin.peers.read_state_dict(source)
    edit(sd)
    path = tmp_path / f"tampered_{Path(source).name}"
    torch.save(sd, path)
    return path
