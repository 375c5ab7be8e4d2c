"""SMSR's eval path: the hard-mask computation equals SMSR's test-mode sparse convolution.

The reference below follows model/smsr.py's test mode step by step (our code, written from it):
dense features are convolved everywhere; sparse features exist only at the N masked pixels
(columns gathered with unfold at those pixels, multiplied by the kernels' slices, scattered back);
each layer's input channels split by the previous layer's hard channel mask. It also counts the
multiply-adds of each product it does, which :func:`cfin.peers.smsr.smb_multi_adds` must equal.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import cfin.peers
from cfin.complexity import count
from cfin.peers.smsr import SMB, smb_multi_adds, inference_multi_adds


def _sparse_reference(smb: SMB, x: torch.Tensor, spa: torch.Tensor) -> tuple[torch.Tensor, int]:
    """SMB on one image (1 x C x H x W) and its spatial mask (H x W) the test mode's way; (out, MACs)."""
    _, c, h, w = x.shape
    dense_all, sparse_all = smb.hard_channel_masks()
    d_mask, s_mask = dense_all[0, :, :, 0].bool(), sparse_all[0, :, :, 0].bool()  # C x L
    idx = spa.flatten().nonzero()[:, 0]
    macs = 0

    def cols(fmap):  # (channels x H x W) -> (channels * 9) x N, the 3x3 neighbourhoods of the masked pixels
        return F.unfold(fmap[None], 3, padding=1)[0][:, idx]

    def mm(a, b):
        nonlocal macs
        macs += a.shape[0] * a.shape[1] * b.shape[1]
        return a @ b

    dense_in, sparse_in = x[0], None
    d_in, s_in = torch.ones(c, dtype=torch.bool), torch.zeros(c, dtype=torch.bool)
    pieces = []
    for i, conv in enumerate(smb.body):
        wgt = conv.weight
        d_out, s_out = d_mask[:, i], s_mask[:, i]
        fd = F.conv2d(dense_in[None], wgt[d_out][:, d_in], padding=1)[0].reshape(int(d_out.sum()), -1)
        macs += fd.numel() * int(d_in.sum()) * 9
        fs = mm(wgt[s_out][:, d_in].reshape(int(s_out.sum()), -1), cols(dense_in))
        if sparse_in is not None and s_in.any():
            scattered = torch.zeros(int(s_in.sum()), h * w)
            scattered[:, idx] = sparse_in
            neighbours = cols(scattered.view(-1, h, w))
            fd[:, idx] += mm(wgt[d_out][:, s_in].reshape(int(d_out.sum()), -1), neighbours)
            fs = fs + mm(wgt[s_out][:, s_in].reshape(int(s_out.sum()), -1), neighbours)
        fd, fs = F.relu(fd), F.relu(fs)
        pieces.append((fd, fs, d_out, s_out))
        dense_in, sparse_in, d_in, s_in = fd.view(-1, h, w), fs, d_out, s_out
    kernel = smb.collect.weight[:, :, 0, 0]
    out = smb.collect.bias[:, None].repeat(1, h * w)
    for i, (fd, fs, d_out, s_out) in enumerate(pieces):
        block = kernel[:, i * c:(i + 1) * c]
        out = out + mm(block[:, d_out], fd)
        out[:, idx] += mm(block[:, s_out], fs)
    return out.view(1, c, h, w), macs


def test_hard_mask_forward_is_the_sparse_convolution():
    torch.manual_seed(0)
    c, h, w = 8, 11, 9
    smb = SMB(c).eval()
    with torch.no_grad():
        smb.ch_mask.normal_()
    dense, sparse = smb.hard_channel_masks()
    per_layer = dense[0, :, :, 0].sum(0), sparse[0, :, :, 0].sum(0)
    assert (per_layer[0] > 0).all() and (per_layer[1] > 0).all(), "each layer has dense and sparse channels"
    x = torch.randn(1, c, h, w)
    spa = (torch.rand(h, w) > 0.6).float()
    with torch.no_grad():
        ours = smb(x, spa[None, None])[0]
        ref, macs = _sparse_reference(smb, x, spa)
    # float32 sums of at most 4 x 8 x 9 products of O(1) values, in another order: far below 1e-4
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
    assert macs == smb_multi_adds(smb, h * w, [int(v) for v in per_layer[0]], [int(v) for v in per_layer[1]],
                                  int(spa.sum()))


def test_sparse_count_without_sparsity_is_the_own_convention():
    with torch.device("meta"):
        model = cfin.peers.build("smsr", 2)
    own = count(model, convention="own")
    assert own.multi_adds == inference_multi_adds(model, (360, 640))
    smb = model.body[0].body
    c, hw = 64, 360 * 640
    assert smb_multi_adds(smb, hw) == (4 * 9 * c * c + 4 * c * c) * hw  # four dense 3x3 convs and the 1x1 fusion
    # all channels sparse and an empty spatial mask: only the first layer's dense input is read, for nothing
    assert smb_multi_adds(smb, hw, [0] * 4, [c] * 4, 0) == 0


def test_training_forward_returns_the_image_and_keeps_the_sparsity():
    torch.manual_seed(0)
    model = cfin.peers.build("smsr", 2).train()
    out = model(torch.rand(1, 3, 8, 10) * 255)
    assert out.shape == (1, 3, 16, 20)
    assert model.sparsity.shape == (5, 64 * 4, 8, 10)  # per SMM: one map per channel and layer
    assert ((model.sparsity >= 0) & (model.sparsity <= 1)).all()
    model.eval()(torch.rand(1, 3, 8, 10) * 255)
    assert model.sparsity is None
