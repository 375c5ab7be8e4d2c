"""LatticeNet's released checkpoints load strictly into cfin.peers.latticenet and score the paper's Set5.

The checkpoints are the public repository's ``premodel/LatticeNet_x{2,3,4}.pt``
(ymff0592/super-resolution @ 7bb1ce0), not among the ground truth's files: the tests that read them
run where ``$CFIN_PEER_WEIGHTS`` names a folder holding them (measured so on 2026-12-07: every file
loads strictly; Set5 x4 32.1813 / 0.89430) and skip otherwise, saying so. The failure kinds (a
renamed key, a reshaped tensor, another scale's file) are checked on the network's own state_dict,
which has the public code's keys.
"""
from __future__ import annotations

import pytest
import torch

import cfin.peers
from peer_files import set5_scores
from cfin.errors import CFINError

SCALES = (2, 3, 4)
# LatticeNet's own Set5 x4 row (ECCV 2020, without the self-ensemble; Table I's "LatticeNet+" is the
# ensemble, 32.30 / 0.8962, which takes 8x as long).
SET5_X4 = (32.18, 0.8943)


def _released(shared, scale: int):
    """The released file, from ``$CFIN_PEER_WEIGHTS`` (a user's folder of released weights) or the ground
    truth; it is not among the ground truth's files, so in CI these tests skip, saying so."""
    import os
    from pathlib import Path

    name = cfin.peers.spec("latticenet").weights[scale]
    folders = [Path(os.environ["CFIN_PEER_WEIGHTS"])] if os.environ.get("CFIN_PEER_WEIGHTS") else []
    for folder in [*folders, shared / "reference" / "peers"]:
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"{name} is not among the ground truth's released weights: put the public repository's "
                f"premodel/{name} (ymff0592/super-resolution @ 7bb1ce0) in a folder and set CFIN_PEER_WEIGHTS to it")


@pytest.mark.parametrize("scale", SCALES)
def test_released_checkpoint_loads_strictly(shared, scale):
    model = cfin.peers.load("latticenet", _released(shared, scale), scale)
    sd = cfin.peers.read_state_dict(_released(shared, scale))
    assert not model.training and set(model.state_dict()) == set(sd)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())
    # the public MeanShift trained its 1x1 conv: the checkpoint's is no longer the identity
    assert not torch.equal(model.sub_mean.weight.view(3, 3), torch.eye(3))


def test_set5_x4_scores_the_paper(shared):
    """Set5 x4 with the suite's evaluation (MATLAB bicubic LR, Y PSNR/SSIM, 4 pixels shaved):
    32.1813 / 0.89430 measured, the paper's 32.18 / 0.8943; 0.02 dB / 0.001 allow for the rounding
    of the printed numbers and float summation order across CPUs (a wrong network is ~1 dB off)."""
    got = set5_scores(shared, "latticenet", _released(shared, 4), 4)
    assert got["psnr"] == pytest.approx(SET5_X4[0], abs=0.02)
    assert got["ssim"] == pytest.approx(SET5_X4[1], abs=0.001)


@pytest.fixture(scope="module")
def state_dicts():
    torch.manual_seed(0)
    return {s: cfin.peers.build("latticenet", s).state_dict() for s in (3, 4)}


def test_renamed_key_is_named(tmp_path, state_dicts):
    sd = dict(state_dicts[4])
    sd["conv_first.weight"] = sd.pop("conv1.weight")
    torch.save(sd, tmp_path / "renamed.pt")
    with pytest.raises(CFINError, match=r"does not fit LatticeNet\+ x4 \(missing 1 key\(s\), first 'conv1.weight'\)"):
        cfin.peers.load("latticenet", tmp_path / "renamed.pt", 4)


def test_reshaped_tensor_is_named(tmp_path, state_dicts):
    sd = dict(state_dicts[4])
    sd["body_unit2.compress.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(sd, tmp_path / "reshaped.pt")
    with pytest.raises(CFINError, match=r"key 'body_unit2.compress.weight' has shape \(64, 64, 1, 1\), "
                                        r"expected \(64, 128, 1, 1\)"):
        cfin.peers.load("latticenet", tmp_path / "reshaped.pt", 4)


def test_another_scales_file_says_which(tmp_path, state_dicts):
    torch.save(state_dicts[3], tmp_path / "x3.pt")
    with pytest.raises(CFINError, match=r"tail.1.weight.*looks like an x3 LatticeNet\+ checkpoint: use --scale 3"):
        cfin.peers.load("latticenet", tmp_path / "x3.pt", 4)
