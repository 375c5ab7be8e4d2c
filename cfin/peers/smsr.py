"""SMSR: sparse mask super-resolution (Table I: x2, x3, x4).

Paper: L. Wang, X. Dong, Y. Wang, X. Ying, Z. Lin, W. An, Y. Guo, "Exploring Sparsity in Image
Super-Resolution for Efficient Inference", CVPR 2021.

Shapes and key names read from LongguangWang/SMSR @ e1fd21e, model/smsr.py with the defaults
of option.py (``n_feats`` 64, RGB range 255) and model/common.py (``MeanShift``, frozen).
Released weights: experiment/SMSR_X2/model/model_1000.pt (x2 only), RGB in [0, 255].

Five sparse mask modules (SMMs) each predict a spatial mask (which pixels matter) and carry a
learned channel mask per layer (which output channels are computed only at those pixels,
"sparse", and which everywhere, "dense"). In training both masks are Gumbel-softmax samples
(temperature ``tau``; the public trainer calls a ``_set_tau`` the model does not define, so tau
stays 1) and the network returns ``[sr, sparsity]``; here the forward returns ``sr`` and keeps
the sparsity map as ``model.sparsity``. In eval the masks are hard and the public code runs a
sparse convolution (gathers, matrix products, scatters, batch 1). We compute the same numbers
as dense convolutions with masks (:meth:`SMB.forward_hard`), for any batch; tests/
test_peer_smsr.py checks them against a gather/scatter sparse convolution.

Simplification: the spatial mask branch halves and doubles the resolution, so on an odd LR
side the public code fails; we pad such an input by one replicated row/column before that
branch and crop its mask back. Even sizes (every count at the paper's input) are unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.models.blocks.common import squeeze_excite_mlp
from cfin.peers.common import MeanShift
from cfin.peers.registry import OwnCount, PeerSpec, Source

N_FEATS = 64
N_BLOCKS = 5
N_LAYERS = 4
CA_REDUCTION = 16


def gumbel_softmax(logits: torch.Tensor, dim: int, tau: float) -> torch.Tensor:
    """``softmax((logits + g) / tau)`` with Gumbel noise ``g = -log(-log u)``, u uniform in (0, 1)."""
    u = torch.rand_like(logits).clamp_min(torch.finfo(logits.dtype).tiny)
    return ((logits - torch.log(-torch.log(u))) / tau).softmax(dim)


class CALayer(nn.Module):
    """RCAN's channel attention ``x * sigmoid(MLP(avgpool(x)))`` (reduction 16), SMM's last step.

    Args:
        channels: C.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = squeeze_excite_mlp(channels, CA_REDUCTION)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class SMB(nn.Module):
    """Sparse mask block: four bias-free 3x3 convs with ReLU, whose
    outputs are concatenated and fused by a 1x1 conv (with bias). ``ch_mask`` holds, per layer
    and output channel, the logits of (dense, sparse).

    Args:
        channels: C (input and output).
        n_layers: conv layers (4).
    """

    def __init__(self, channels: int, n_layers: int = N_LAYERS):
        super().__init__()
        self.n_layers = n_layers
        self.tau = 1.0
        self.ch_mask = nn.Parameter(torch.rand(1, channels, n_layers, 2))
        self.body = nn.Sequential(*(nn.Conv2d(channels, channels, 3, padding=1, bias=False)
                                    for _ in range(n_layers)))
        self.collect = nn.Conv2d(channels * n_layers, channels, 1)

    def hard_channel_masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(dense, sparse)``, each 1 x C x L x 1: the test mode's ``ch_mask.softmax(3).round()``."""
        hard = self.ch_mask.softmax(3).round()
        return hard[..., :1], hard[..., 1:]

    def forward(self, x: torch.Tensor, spa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(out, channel mask sample)`` in training (:meth:`forward_soft`); ``(out, None)`` in eval
        (:meth:`forward_hard`). ``spa``: the spatial mask, B x 1 x H x W."""
        if self.training:
            return self.forward_soft(x, spa)
        return self.forward_hard(x, spa), None

    def forward_soft(self, x: torch.Tensor, spa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training forward (Gumbel-softmax channel masks, the public code's formula):
        layer ``i`` reads its input through its own mask ``m_i`` = (d, s) and writes
        ``d (f_d + spa f_s) + s spa (f_d + f_s)`` with ``f_d, f_s = conv_i(x d), conv_i(x s)``."""
        ch = gumbel_softmax(self.ch_mask, 3, self.tau)
        outs, fea = [], x
        for i, conv in enumerate(self.body):
            d, s = ch[:, :, i:i + 1, :1], ch[:, :, i:i + 1, 1:]
            if i == 0:
                fea = conv(fea)
                fea = fea * s * spa + fea * d
            else:
                f_d, f_s = conv(fea * d), conv(fea * s)
                fea = f_d * s * spa + f_d * d + f_s * s * spa + f_s * d * spa
            fea = F.relu(fea)
            outs.append(fea)
        return self.collect(torch.cat(outs, 1)), ch

    def forward_hard(self, x: torch.Tensor, spa: torch.Tensor) -> torch.Tensor:
        """The test mode's sparse convolution, computed densely with hard masks.

        A layer's input channels split by the previous layer's masks (``d'``, ``s'``; the first
        layer's input is dense): ``A = conv(x d')`` everywhere, ``B = conv(x s')`` (sparse
        features are zero off the mask), both kept only where the public code computes them:
        dense outputs ``A + spa B``, sparse outputs ``spa (A + B)`` (a channel whose rounded
        softmax is (0, 0) is computed by neither and is 0). The 1x1 fusion of zero-filled sparse
        features equals the code's scatter-add of its sparse part at the masked pixels.
        """
        dense, sparse = self.hard_channel_masks()
        outs, fea, prev = [], x, None
        for i, conv in enumerate(self.body):
            d, s = dense[:, :, i:i + 1], sparse[:, :, i:i + 1]
            keep = d + s
            if prev is None:
                fea = conv(fea) * (d + s * spa)
            else:
                a, b = conv(fea * prev[0]), conv(fea * prev[1])
                fea = a * (d + s * spa) + b * spa * keep
            fea = F.relu(fea)
            outs.append(fea)
            prev = (d, s)
        return self.collect(torch.cat(outs, 1))


class SMM(nn.Module):
    """Sparse mask module: a spatial mask from a small conv branch (3x3, ReLU,
    avg-pool 2, 3x3, ReLU, stride-2 transposed 3x3 to two logits), the SMB under it, channel
    attention and a residual: ``x + CA(SMB(x, spa))``.

    Args:
        channels: C.
    """

    def __init__(self, channels: int):
        super().__init__()
        q = channels // 4
        self.spa_mask = nn.Sequential(
            nn.Conv2d(channels, q, 3, 1, 1), nn.ReLU(inplace=True), nn.AvgPool2d(2),
            nn.Conv2d(q, q, 3, 1, 1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(q, 2, 3, 2, 1, output_padding=1))
        self.body = SMB(channels)
        self.ca = CALayer(channels)
        self.tau = 1.0

    def spatial_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The mask branch's two logits per pixel, B x 2 x H x W (odd sides: see the module docstring)."""
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        return self.spa_mask(x)[..., :h, :w]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(out, spatial mask, channel mask)``: in training the Gumbel-softmax samples (for the
        sparsity loss); in eval the hard spatial mask (B x 1 x H x W) and None."""
        logits = self.spatial_logits(x)
        if self.training:
            spa = gumbel_softmax(logits, 1, self.tau)[:, 1:]
        else:
            spa = (logits[:, 1:] > logits[:, :1]).to(x.dtype)
        out, ch = self.body(x, spa)
        return self.ca(out) + x, spa, ch


class SMSR(nn.Module):
    """SMSR: head (3x3, ReLU, 3x3), five SMMs, a 1x1 + 3x3 fusion of their
    outputs with a global residual, a sub-pixel tail, plus the bicubic upsampling of the
    mean-shifted input. RGB [0, 255] in and out.

    Args:
        scale: upscaling factor (2, 3, 4).
        n_feats: width (64; the fusion is written for 64 in the public code).
    """

    def __init__(self, scale: int, n_feats: int = N_FEATS):
        super().__init__()
        self.upscale = scale
        self.sub_mean = MeanShift(255.0, sign=-1)
        self.head = nn.Sequential(nn.Conv2d(3, n_feats, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.body = nn.Sequential(*(SMM(n_feats) for _ in range(N_BLOCKS)))
        self.collect = nn.Sequential(nn.Conv2d(n_feats * N_BLOCKS, n_feats, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.tail = nn.Sequential(nn.Conv2d(n_feats, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        self.add_mean = MeanShift(255.0, sign=1)
        self.sparsity: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.sub_mean(x)
        head = self.head(x0)
        outs, sparsity, fea = [], [], head
        for smm in self.body:
            fea, spa, ch = smm(fea)
            outs.append(fea)
            if self.training:  # per channel and layer: 1 where dense, the spatial mask where sparse
                sparsity.append(spa * ch[..., 1].reshape(1, -1, 1, 1)
                                + torch.ones_like(spa) * ch[..., 0].reshape(1, -1, 1, 1))
        self.sparsity = torch.cat(sparsity, 0) if self.training else None
        fea = self.collect(torch.cat(outs, 1)) + head
        up = F.interpolate(x0, scale_factor=self.upscale, mode="bicubic", align_corners=False)
        return self.add_mean(self.tail(fea) + up)


def smsr(scale: int) -> SMSR:
    """Table I's SMSR at ``scale``."""
    return SMSR(scale)


def _conv_macs(conv: nn.Module, positions: int) -> int:
    """Multiply-adds of a conv (or a transposed conv, at its input positions) over ``positions``."""
    return conv.weight.numel() * positions


def smb_multi_adds(smb: SMB, pixels: int, dense: list[int] | None = None, sparse: list[int] | None = None,
                   masked: int = 0) -> int:
    """Multiply-adds of one SMB as the test mode's sparse convolution (model/smsr.py ``_sparse_conv``).

    A layer with ``D'``, ``S'`` dense and sparse input channels (the previous layer's; the first
    layer reads C dense), ``D``, ``S`` dense and sparse outputs, ``HW`` = ``pixels`` and ``N`` =
    ``masked`` of them in the spatial mask: ``9 (D' D HW + D' S N + S' (D + S) N)``; the 1x1
    fusion ``C (sum D HW + sum S N)``. ``dense``, ``sparse``: ``D`` and ``S`` per layer; None:
    every channel dense (no sparsity).
    """
    c = smb.collect.out_channels
    dense = [c] * smb.n_layers if dense is None else dense
    sparse = [0] * smb.n_layers if sparse is None else sparse
    k2 = smb.body[0].weight[0, 0].numel()
    macs, d_in, s_in = 0, c, 0
    for d_out, s_out in zip(dense, sparse):
        macs += k2 * (d_in * d_out * pixels + d_in * s_out * masked + s_in * (d_out + s_out) * masked)
        d_in, s_in = d_out, s_out
    return macs + c * (sum(dense) * pixels + sum(sparse) * masked)


def inference_multi_adds(model: SMSR, lr_size: tuple[int, int],
                         masks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None) -> int:
    """Multiply-adds of SMSR's test mode: every conv once (a transposed conv at its input
    positions), the SMBs' by :func:`smb_multi_adds`; the bicubic path and biases not counted.

    Args:
        model: the network (its shapes are read; meta tensors are fine without ``masks``).
        lr_size: (H, W) of the LR input (even sides).
        masks: per SMM, ``(dense, sparse, spatial)``: the hard channel masks (L x C, 0/1) and the
            spatial mask (H x W, 0/1) of one image (:func:`image_masks`). None: no sparsity (every
            channel dense), the dense network SMSR's FLOPs reductions are relative to.
    """
    h, w = lr_size
    hw = h * w
    macs = sum(_conv_macs(m, hw) for m in (model.head[0], model.head[2], model.collect[0], model.collect[2],
                                           model.tail[0]))
    for k, smm in enumerate(model.body):
        branch = smm.spa_mask
        macs += _conv_macs(branch[0], hw) + _conv_macs(branch[3], hw // 4) + _conv_macs(branch[5], hw // 4)
        macs += sum(m.weight.numel() for m in smm.ca.conv_du if isinstance(m, nn.Conv2d))
        if masks is None:
            macs += smb_multi_adds(smm.body, hw)
        else:
            d, s, spa = masks[k]
            macs += smb_multi_adds(smm.body, hw, [int(v) for v in d.sum(1)], [int(v) for v in s.sum(1)],
                                   int(spa.sum()))
    return macs


def image_masks(model: SMSR, lr: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per SMM, the hard ``(dense, sparse, spatial)`` masks the eval forward uses on one LR image
    (1 x 3 x H x W in [0, 255]): the input of :func:`inference_multi_adds`."""
    spatial = []
    hooks = [smm.register_forward_hook(lambda m, i, out: spatial.append(out[1][0, 0])) for smm in model.body]
    try:
        with torch.no_grad():
            model.eval()(lr)
    finally:
        for hook in hooks:
            hook.remove()
    masks = []
    for smm, spa in zip(model.body, spatial):
        dense, sparse = smm.body.hard_channel_masks()
        masks.append((dense[0, :, :, 0].T, sparse[0, :, :, 0].T, spa))
    return masks


def _own_count(model: SMSR, shape: tuple[int, int, int, int]) -> tuple[int, int]:
    used = sum(p.numel() for p in model.parameters())
    return used, shape[0] * inference_multi_adds(model, shape[2:])


SPECS = (
    PeerSpec(
        name="smsr", title="SMSR",
        paper=("L. Wang, X. Dong, Y. Wang, X. Ying, Z. Lin, W. An, Y. Guo, \"Exploring Sparsity in Image "
               "Super-Resolution for Efficient Inference\", CVPR 2021"),
        source=Source("LongguangWang/SMSR", "e1fd21e", ("model/smsr.py", "model/common.py", "option.py")),
        scales=(2, 3, 4), builder=smsr, trained_range=255.0, tables=("I",),
        weights={2: "SMSR_X2_model_1000.pt"},
        printed_counting=("torchsummaryX rule (paper convention) on the dense computation with masks, where layers "
                          "2-4 of each SMB run twice (on the dense and on the sparse input channels, as in training): "
                          "984,770 / 351.45G at x2 vs printed 985K / 351.5G, 993,425 / 156.84G at x3 vs 993K / "
                          "156.8G, 1,005,542 / 89.06G at x4 vs 1006K / 89.1G. So the printed Multi-Adds are neither "
                          "SMSR's sparse FLOPs nor its dense network (own: every conv once, 223.80G / 100.20G / "
                          "57.15G), from which its abstract's 41% / 33% / 27% reductions are taken."),
        own_count=OwnCount("SMSR's test mode with no sparsity: every conv once per pixel, the SMBs as its sparse "
                           "convolution's matrix products with every channel dense (inference_multi_adds)",
                           _own_count),
        notes="eval: hard masks, the sparse convolution computed densely (SMB.forward_hard); odd LR sides padded "
              "before the mask branch.",
    ),
)
