"""The peers' weight tests' shared steps: a released file with one thing changed, and its Set5 score."""
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


def set5_scores(shared: Path, name: str, weights: Path, scale: int) -> dict:
    """``{"psnr", "ssim", "images"}`` of the released ``weights`` of peer ``name`` on Set5 of the ground
    truth, by the suite's evaluation (MATLAB bicubic LR, Y channel, ``scale`` pixels shaved), on the CPU;
    the five images checked scored."""
    import cfin.peers
    from cfin.data.layouts import BenchmarkSet
    from cfin.evaluate import evaluate_model

    model = cfin.peers.load(name, weights, scale)
    got = evaluate_model(model, scale, [BenchmarkSet(shared / "datasets", "Set5", scale)], device="cpu",
                         progress=False)["Set5"]
    assert got["images"] == 5
    return got
