"""RFDN (cfin.peers.rfdn, the public E-RFDN): the AIM 2020 challenge counter (its ``own`` count)
against closed forms, and the clear error for inputs too small for ESA."""
import math

import pytest
import torch
from torch import nn

import cfin.peers
from cfin.complexity import count
from cfin.errors import CFINError
from cfin.peers.rfdn import aim2020_count


def test_aim_counter_charges_convs_without_bias_and_activation_modules():
    """conv 3->8 3x3 (bias) on 10 x 12, LeakyReLU module, BatchNorm2d (affine), a functional
    sigmoid (free), flatten, Linear 960 -> 5 (bias); one frozen parameter left out of Params."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.BatchNorm2d(8),
                        nn.Sigmoid(), nn.Flatten(), nn.Linear(8 * 10 * 12, 5))
    net[2].weight.requires_grad_(False)
    net = net.to("meta")
    params, macs = aim2020_count(net, (2, 3, 10, 12))
    pixels = 2 * 10 * 12
    assert macs == 9 * 3 * 8 * pixels + 8 * pixels + 2 * 8 * pixels + 2 * 960 * 5
    assert params == sum(p.numel() for p in net.parameters()) - 8


def test_rfdn_own_count_is_the_paper_rule_plus_activation_outputs():
    """Both charge a conv k*k*Cin*Cout per output pixel without bias; the AIM counter adds every
    ReLU/LeakyReLU output: per LR pixel 4 RFDBs x (3 x 25 + 3 x 50 + 25) + 50 (the fusion), plus
    ESA's two ReLUs on its 12 x 28 x 51 pooled map (180 x 320: stride-2 conv 89 x 159, pool 7/3)."""
    with torch.device("meta"):
        model = cfin.peers.build("e-rfdn", 4)
    own, paper = count(model, convention="own"), count(model, convention="paper")
    pooled = ((180 - 3) // 2 + 1 - 7) // 3 + 1, ((320 - 3) // 2 + 1 - 7) // 3 + 1
    assert pooled == (28, 51)
    activations = (4 * (3 * 25 + 3 * 50 + 25) + 50) * 180 * 320 + 4 * 2 * 12 * math.prod(pooled)
    assert own.params == paper.params == 433_448
    assert own.multi_adds - paper.multi_adds == activations


def test_inputs_smaller_than_esa_needs_are_one_clear_error(one_thread):
    model = cfin.peers.build("e-rfdn", 4).eval()
    with pytest.raises(CFINError, match=r"RFDN needs an LR input of at least 15 x 15 pixels.*got \(14, 40\)"):
        model(torch.zeros(1, 3, 14, 40))
    assert model(torch.zeros(1, 3, 15, 15)).shape == (1, 3, 60, 60)
