"""SMSR's released checkpoint (LongguangWang/SMSR, x2 only) loads strictly into cfin.peers.smsr, and
checkpoints that do not fit fail with one CFINError naming what is wrong.

Set5 x2 with these weights (the suite's evaluation, CPU) against Table I's printed numbers is in
docs/peers_fdiwn_smsr_ecbsr.md; scoring is too slow for CI on two shared cores.
"""
from __future__ import annotations

import pytest
import torch

import cfin.peers
from peer_files import set5_scores, tampered
from cfin.errors import CFINError
from cfin.peers.smsr import image_masks, inference_multi_adds

FILE = "SMSR_X2_model_1000.pt"


@pytest.fixture(scope="module")
def path(shared):
    path = shared / "reference" / "peers" / FILE
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def test_released_checkpoint_loads_strictly(path):
    model = cfin.peers.load("smsr", path, 2)
    assert not model.training and model.scale == 2
    # every tensor of the file: 984,770 weights the paper counts plus 5 x 64 x 4 x 2 channel-mask logits
    assert sum(p.numel() for p in model.parameters()) == 984_770 + 2_560
    torch.manual_seed(0)
    lr = torch.rand(1, 3, 16, 20) * 255
    with torch.no_grad():
        out = model(lr)
    assert out.shape == (1, 3, 32, 40) and torch.isfinite(out).all()
    # on a flat image the trained spatial masks are empty: only the dense channels are computed, a small part
    # of the dense network's work (the channel masks keep 36, 21, 24, 3, 19 of each SMM's 256 outputs dense)
    masks = image_masks(model, torch.full((1, 3, 16, 20), 128.0))
    assert all(spa.sum() == 0 for _, _, spa in masks)
    assert [int(dense.sum()) for dense, _, _ in masks] == [36, 21, 24, 3, 19]
    assert inference_multi_adds(model, (16, 20), masks) < 0.25 * inference_multi_adds(model, (16, 20))


def test_a_renamed_key_is_named(path, tmp_path):
    def rename(sd):
        sd["body.0.body.mask"] = sd.pop("body.0.body.ch_mask")

    with pytest.raises(CFINError, match=r"missing 1 key\(s\), first 'body\.0\.body\.ch_mask'"):
        cfin.peers.load("smsr", tampered(path, tmp_path, rename), 2)


def test_a_reshaped_tensor_is_named(path, tmp_path):
    def reshape(sd):
        sd["collect.0.weight"] = sd["collect.0.weight"][:, :256]

    with pytest.raises(CFINError, match=r"key 'collect\.0\.weight' has shape \(64, 256, 1, 1\), expected "
                                        r"\(64, 320, 1, 1\)"):
        cfin.peers.load("smsr", tampered(path, tmp_path, reshape), 2)


def test_another_scales_file_says_which_scale(path):
    with pytest.raises(CFINError, match=r"does not fit SMSR x4 .*looks like an x2 SMSR checkpoint: use --scale 2"):
        cfin.peers.load("smsr", path, 4)


@pytest.mark.slow
def test_set5_x2_scores_the_printed_row(shared, path):
    """Table I prints SMSR x2 Set5 at 38.00 / 0.9601 (SMSR's paper). Ours, MATLAB-bicubic LR, Y channel,
    2-pixel border: 37.991 / 0.96023. 0.02 dB and 0.001 bound the evaluation-protocol differences (LR
    generation, rounding); a wrong network or mask is off by tenths of a dB or more."""
    scores = set5_scores(shared, "smsr", path, 2)
    assert abs(scores["psnr"] - 38.00) < 0.02 and abs(scores["ssim"] - 0.9601) < 0.001
