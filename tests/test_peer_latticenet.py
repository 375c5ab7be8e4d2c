"""LatticeNet's parts against their formulas (cfin.peers.latticenet)."""
from __future__ import annotations

import torch

import cfin.peers
from cfin.peers.latticenet import CombinationCoefficient


def test_combination_coefficient_averages_mean_and_unbiased_std_attention():
    """(sigmoid(MLP_mean(mean)) + sigmoid(MLP_std(std))) / 2, std unbiased over the pixels as
    ``torch.std`` in the public code (not the population std of Table V's LB block)."""
    torch.manual_seed(0)
    cc = CombinationCoefficient(32, reduction=16)
    x = torch.randn(2, 32, 5, 7)
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = ((x - mean) ** 2).sum(dim=(2, 3), keepdim=True).div(5 * 7 - 1).sqrt()
    want = (cc.conv_mean(mean) + cc.conv_std(std)) / 2
    torch.testing.assert_close(cc(x), want)
    assert cc(x).shape == (2, 32, 1, 1)


def test_state_dict_has_the_public_keys_and_shapes():
    """Facts of the public code's state_dict (model/latticenet.py): 208 tensors at every scale."""
    for scale in (2, 3, 4):
        with torch.device("meta"):
            sd = cfin.peers.build("latticenet", scale).state_dict()
        assert len(sd) == 208
        shapes = {k: tuple(v.shape) for k, v in sd.items()}
        assert shapes["body_unit1.conv_block0.2.weight"] == (48, 48, 3, 3)
        assert shapes["body_unit4.x_ca2.conv_std.0.weight"] == (4, 64, 1, 1)
        assert shapes["T_tdm3.0.weight"] == shapes["L_tdm1.0.weight"] == (32, 64, 1, 1)
        assert shapes["tail.1.weight"] == (3 * scale ** 2, 64, 3, 3)
        assert shapes["sub_mean.weight"] == shapes["add_mean.weight"] == (3, 3, 1, 1)
