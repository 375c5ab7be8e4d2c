"""FDIWN's released checkpoints (24wenjie-li/FDIWN, x2/x3/x4) load strictly into cfin.peers.fdiwn, and
checkpoints that do not fit fail with one CFINError naming what is wrong.

Set5 with these weights (the suite's evaluation, CPU): x2 / x3 / x4 against Table I's printed numbers are
in docs/peers_fdiwn_smsr_ecbsr.md; scoring is too slow for CI on two shared cores.
"""
from __future__ import annotations

import pytest
import torch

import cfin.peers
from cfin.errors import CFINError

FILES = {s: f"FDIWNx{s}_model_best.pt" for s in (2, 3, 4)}
USED = {2: 629_176, 3: 646_486, 4: 663_848}  # every tensor of each checkpoint, counted by loading it


def _path(shared, scale):
    path = shared / "reference" / "peers" / FILES[scale]
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.mark.parametrize("scale", (2, 3, 4))
def test_released_checkpoint_loads_strictly(shared, scale):
    model = cfin.peers.load("fdiwn", _path(shared, scale), scale)
    assert not model.training and model.scale == scale
    assert sum(p.numel() for p in model.parameters()) == USED[scale]
    sd = torch.load(_path(shared, scale), map_location="cpu", weights_only=True)
    assert model.Sub_mean.weight.equal(sd["Sub_mean.weight"])  # the trained mean shift, not the identity
    assert not model.Sub_mean.weight.equal(torch.eye(3).view(3, 3, 1, 1))
    g = model.Li1.MY1.srb1.body[0].parametrizations.weight.original0
    assert g.equal(sd["Li1.MY1.srb1.body.0.weight_g"])
    with torch.no_grad():
        out = model(torch.full((1, 3, 12, 12), 128.0))
    assert out.shape == (1, 3, 12 * scale, 12 * scale) and torch.isfinite(out).all()


def _tampered(shared, tmp_path, edit, scale=4):
    sd = torch.load(_path(shared, scale), map_location="cpu", weights_only=True)
    edit(sd)
    path = tmp_path / "tampered.pt"
    torch.save(sd, path)
    return path


def test_a_renamed_key_is_named(shared, tmp_path):
    def rename(sd):
        sd["Li1.MY1.srb1.body.0.weight_gain"] = sd.pop("Li1.MY1.srb1.body.0.weight_g")

    path = _tampered(shared, tmp_path, rename)
    with pytest.raises(CFINError, match=r"missing 1 key\(s\), first 'Li1\.MY1\.srb1\.body\.0\.parametrizations"):
        cfin.peers.load("fdiwn", path, 4)


def test_a_reshaped_tensor_is_named(shared, tmp_path):
    def reshape(sd):
        sd["head.weight"] = sd["head.weight"][:20]

    path = _tampered(shared, tmp_path, reshape)
    with pytest.raises(CFINError, match=r"key 'head\.weight' has shape \(20, 3, 3, 3\), expected \(24, 3, 3, 3\)"):
        cfin.peers.load("fdiwn", path, 4)


def test_another_scales_file_says_which_scale(shared):
    with pytest.raises(CFINError, match=r"does not fit FDIWN x4 .*looks like an x2 FDIWN checkpoint: use --scale 2"):
        cfin.peers.load("fdiwn", _path(shared, 2), 4)
