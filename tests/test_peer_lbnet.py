"""LBNet: the torchsummaryX rule reproduces its printed counts; weights shared across the recursions."""
from __future__ import annotations

import pytest
import torch

import cfin.peers
from cfin.complexity import count
from cfin.peers.lbnet import LBNet


# LBNet's README / paper (Params, Multi-Adds) for a 1280 x 720 output; CFIN's Table II quotes x4.
PRINTED = {2: (731e3, 153.2e9), 3: (736e3, 68.4e9), 4: (742e3, 38.9e9)}


@pytest.mark.parametrize("scale", sorted(PRINTED))
def test_paper_rule_reproduces_lbnets_printed_counts(scale):
    """The torchsummaryX rule: params within 0.1%, Multi-Adds within 0.5% (the project's targets)."""
    with torch.device("meta"):
        model = LBNet(scale)
    model.scale = scale
    c = count(model, convention="paper")
    assert abs(c.params - PRINTED[scale][0]) / PRINTED[scale][0] < 0.001
    assert abs(c.multi_adds - PRINTED[scale][1]) / PRINTED[scale][1] < 0.005


def test_symmetric_cnn_and_recursive_transformer_reuse_their_weights():
    """Each LFFM runs twice and each TransBlock three times: params counted once, Multi-Adds per call."""
    with torch.device("meta"):
        model = cfin.peers.build("lbnet", 4)
    rows = {m.name: m for m in count(model, (9, 11), convention="paper").per_module}
    assert rows["r1.b1.c1"].calls == 2 and rows["r3.c3"].calls == 2 and rows["se1.conv_du.0"].calls == 1
    assert rows["attention.atten.qkv"].calls == 3 and rows["attention2.mlp.fc2"].calls == 3
    assert rows["head"].calls == 1
    # a 1x1 conv 32 -> 32 with bias on 9 x 11 pixels, twice
    assert rows["r1.b1.c1"].multi_adds == 2 * 32 * 32 * 9 * 11 and rows["r1.b1.c1"].params == 32 * 32 + 32


def test_mean_shifts_are_trainable_as_in_the_official_code():
    model = cfin.peers.build("lbnet", 4)
    assert model.sub_mean.weight.requires_grad and model.add_mean.bias.requires_grad
    torch.testing.assert_close(model.add_mean.bias, 255.0 * torch.tensor([0.4488, 0.4371, 0.4040]))
