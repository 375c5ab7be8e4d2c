"""FDIWN's released checkpoints (24wenjie-li/FDIWN, x2/x3/x4) load strictly into cfin.peers.fdiwn, and
checkpoints that do not fit fail with one CFINError naming what is wrong.

Set5 with these weights (the suite's evaluation; ``run_all.py --table I --peer-weights``, 2026-12-07, on
this project's 2-core AMD EPYC): x2 38.056 / 0.96069, x3 34.508 / 0.92801 and x4 32.216 / 0.89538,
against Table I's printed 38.07 / 0.9608, 34.52 / 0.9281 and 32.23 / 0.8955 (-0.014, -0.012, -0.014 dB).
CI scores x4 (below; seconds alone, minutes on a loaded machine); x2 and x3 are left to that command.
"""
from __future__ import annotations

import pytest
import torch

import cfin.peers
from peer_files import set5_scores, tampered
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
    return tampered(_path(shared, scale), tmp_path, edit)


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


def test_set5_x4_scores_the_printed_numbers(shared, one_thread):
    """Within the issue's 0.02 dB / 0.001 of Table I's row (measured -0.014 dB: the printed
    numbers are FDIWN's EDSR-code PSNR and MATLAB SSIM, whose protocols differ from the suite's by under
    1e-4 dB, tests/test_protocols.py; the rest is the released checkpoint's, not its paper's). Holds on any
    x86 CPU: float32 convolutions summed in another order flip at most a few uint8 outputs (~1e-5 dB)."""
    from ablations.table_01_sota import TABLE

    scale = 4
    psnr, ssim = TABLE.row(f"x{scale} FDIWN").paper.metrics["Set5"]
    got = set5_scores(shared, "fdiwn", _path(shared, scale), scale)
    assert abs(got["psnr"] - psnr) <= 0.02 and abs(got["ssim"] - ssim) <= 0.001
