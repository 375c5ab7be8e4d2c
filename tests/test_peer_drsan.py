"""DRSAN (cfin.peers.drsan): a DRAG's n-th output weighs the group input and every earlier output
with DRA entries laid out as in the public code (RB 1: a0; RB 2: a1, a2; RB 3: a3..a5; RB 4:
a6..a9), gated by the sigmoid of the RB's own output (RSA); DRSAN-32m's params are the printed
0.69M / 0.74M / 0.73M."""
import pytest
import torch

import cfin.peers
from cfin.peers.drsan import DRAG

PUBLIC_DRA_INDEX = ((0,), (1, 2), (3, 4, 5), (6, 7, 8, 9))


def test_drag_follows_the_public_dra_layout(one_thread):
    """The same float32 ops written out by hand: equal to 1e-5 (a few ulps on values of order 1)."""
    torch.manual_seed(0)
    drag = DRAG(8, 4).eval()
    x = torch.randn(2, 8, 5, 6)
    with torch.no_grad():
        a = drag.drm(x)
        feats = [x]
        for rb, index in zip(drag.rbs, PUBLIC_DRA_INDEX):
            r = rb(feats[-1])
            add = sum(feats[k] * a[:, i:i + 1] for k, i in enumerate(index))
            feats.append((r + add) * torch.sigmoid(r))
        expected = drag.fuse(torch.cat(feats, dim=1))
        torch.testing.assert_close(drag(x), expected, atol=1e-5, rtol=0)
    assert a.shape == (2, 10, 1, 1)


@pytest.mark.parametrize("scale, millions", [(2, 0.69), (3, 0.74), (4, 0.73)])
def test_params_are_the_printed_ones(scale, millions):
    with torch.device("meta"):
        model = cfin.peers.build("drsan", scale)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == millions
