"""EMASRN (cfin.peers.emasrn): its EMAU, the one-value BatchNorm, and the public state_dict layout."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import cfin.peers
from cfin.peers.emasrn import EMAU, BatchNormOneValue


def test_pixel_unshuffle_is_the_public_space_to_depth():
    """The public SpaceToDepth (``F.unfold`` with stride = kernel = s, viewed as B x C s^2 x H/s x W/s)
    is the channel order of ``nn.PixelUnshuffle``, which the EMAU uses as ``down``."""
    x = torch.randn(2, 5, 12, 24)
    for s in (2, 3, 4):
        space_to_depth = F.unfold(x, s, stride=s).view(2, 5 * s * s, 12 // s, 24 // s)
        torch.testing.assert_close(EMAU(5, 7, s).down(x), space_to_depth)


def test_emau_conv1_gets_no_gradient():
    """The E and M steps run under no_grad and the output is rebuilt from them: conv1, which only
    feeds them, is never trained (as in the public code); conv2 and the identity path are."""
    torch.manual_seed(0)
    emau = EMAU(8, 16, 3)
    x = torch.randn(2, 8, 5, 6, requires_grad=True)
    emau(x).sum().backward()
    assert emau.conv1.weight.grad is None and emau.conv1.bias.grad is None
    assert emau.conv2[0].weight.grad is not None and x.grad is not None


def test_batchnorm_one_value_per_channel_uses_running_statistics():
    """A batch of one pooled 1 x 1 map: the running statistics (where nn.BatchNorm2d raises);
    anything larger: nn.BatchNorm2d's training-mode batch statistics."""
    torch.manual_seed(0)
    bn, ref = BatchNormOneValue(4), nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
    ref.load_state_dict(bn.state_dict())
    one = torch.randn(1, 4, 1, 1)
    torch.testing.assert_close(bn.train()(one), bn.eval()(one))
    two = torch.randn(2, 4, 1, 1)
    torch.testing.assert_close(bn.train()(two), ref.train()(two))


def test_state_dict_has_the_public_keys_and_shapes():
    """Facts of xyzhu1/EMASRN's CSUNET at the test JSON's settings (32 features, 3 groups): the
    projection kernels follow the scale (7 at x3, 8 at x4)."""
    for scale, k in ((3, 7), (4, 8)):
        with torch.device("meta"):
            sd = cfin.peers.build("emasrn", scale).state_dict()
        shapes = {key: tuple(v.shape) for key, v in sd.items()}
        assert shapes["block.upBlocks.2.0.weight"] == shapes["block.downBlocks.0.0.weight"] == (32, 32, k, k)
        assert shapes["block.uptranBlocks.1.0.weight"] == (32, 96, 1, 1)
        assert shapes["block.compress_out.0.weight"] == (32, 128, 1, 1)
        assert shapes["block.feedaspp1.aspp3.atrous_conv.weight"] == (32, 32, 3, 3)
        assert shapes["block.feedaspp1.aspp4.conv.0.weight"] == (32, 64, 1, 1)
        assert shapes["block.feedaspp1.global_avg_pool.2.running_var"] == (32,)
        assert shapes["block.feed_EMAU.mu"] == (1, 32, 64)
        assert shapes["block.feed_EMAU.conv1.weight"] == (32 * scale ** 2, 32, 1, 1)
        assert shapes["conv_in.0.weight"] == (128, 3, 3, 3) and shapes["conv_in.1.weight"] == (1,)
        assert shapes["out.0.weight"] == (32, 32, k, k) and shapes["conv_out.0.weight"] == (3, 32, 3, 3)
