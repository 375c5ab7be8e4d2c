"""Layers shared by the Table V blocks: channel statistics, channel attentions, ESA.

Every attention here keeps its paper's reduction ratio but never lets the hidden width of
its two-layer 1x1 MLP fall below 1, so narrow test widths (n_feats = 16 and below) build.
"""
from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from cfin.errors import CFINError

# Inside a square root: keeps d std / d x finite where a channel is constant (a 1x1 map).
STD_EPS = 1e-12


def check_width(block: str, n_feats: int, multiple: int = 1) -> int:
    """``n_feats`` as an int, or a CFINError naming the block and what it needs."""
    integral = isinstance(n_feats, numbers.Integral) and not isinstance(n_feats, bool)
    if not integral or n_feats < multiple or n_feats % multiple:
        need = "a positive int" if multiple == 1 else f"a positive multiple of {multiple}"
        raise CFINError(f"{block}: n_feats must be {need}, got {n_feats!r}")
    return int(n_feats)


def channel_std(x: torch.Tensor) -> torch.Tensor:
    """Per-channel standard deviation over the pixels, B x C x 1 x 1.

    Population variance, as IMDN's contrast; ``STD_EPS`` under the root keeps the gradient
    finite on constant channels (IMDN's code takes the bare root).
    """
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    return (var + STD_EPS).sqrt()


def squeeze_excite_mlp(channels: int, reduction: int, relu_out: bool = False) -> nn.Sequential:
    """1x1 conv C -> C/r, ReLU, 1x1 conv C/r -> C (both with bias), [ReLU,] sigmoid.

    ``relu_out`` adds the ReLU before the sigmoid that FDIWN's coefficient layer has.
    """
    hidden = max(1, channels // reduction)
    layers = [nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)]
    if relu_out:
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


class ChannelAttention(nn.Module):
    """Channel attention of RCAN (Zhang et al. ECCV 2018, Fig. 3): ``x * sigmoid(MLP(avgpool(x)))``.

    ESRT's CALayer is the same layer.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.mlp = squeeze_excite_mlp(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mlp(x.mean(dim=(2, 3), keepdim=True))


class CCALayer(nn.Module):
    """Contrast-aware channel attention of IMDN (Hui et al. ACM MM 2019).

    The pooled statistic is contrast = std + mean of each channel; then the RCAN MLP and
    sigmoid, multiplied onto ``x``.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.mlp = squeeze_excite_mlp(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        contrast = channel_std(x) + x.mean(dim=(2, 3), keepdim=True)
        return x * self.mlp(contrast)


class CombinationCoefficient(nn.Module):
    """Combination coefficients of LatticeNet (Luo et al. ECCV 2020), also FDIWN's CoffConv.

    Two branches, one on the channel means and one on the channel standard deviations, each
    MLP + sigmoid; the coefficient is their average (B x C x 1 x 1, returned, not applied).
    FDIWN uses reduction 8 and a ReLU before each sigmoid (``relu_out=True``).
    """

    def __init__(self, channels: int, reduction: int = 16, relu_out: bool = False):
        super().__init__()
        self.mean_branch = squeeze_excite_mlp(channels, reduction, relu_out)
        self.std_branch = squeeze_excite_mlp(channels, reduction, relu_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean_branch(x.mean(dim=(2, 3), keepdim=True))
        std = self.std_branch(channel_std(x))
        return (mean + std) / 2


class ESA(nn.Module):
    """Enhanced Spatial Attention of RFANet (Liu et al. CVPR 2020), as RFDN uses it.

    ``f = conv1x1(x)`` to C/4 channels; ``conv3x3 stride 2 (no padding)``; max-pool 7,
    stride 3; the conv group (3x3, ReLU, 3x3, ReLU, 3x3); bilinear upsampling to H x W;
    add ``conv1x1(f)`` (the skip); 1x1 conv back to C; sigmoid; multiply onto ``x``.

    Simplification: the strided conv and the 7x7 pool need at least 15 pixels per side;
    smaller maps are replicate-padded (bottom/right) to 15 before them. Maps of 15 pixels
    or more are unchanged.
    """

    MIN_SIZE = 15

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        f = max(1, channels // reduction)
        self.reduce = nn.Conv2d(channels, f, 1)
        self.skip = nn.Conv2d(f, f, 1)
        self.down = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.group = nn.Sequential(
            nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(f, f, 3, padding=1),
        )
        self.expand = nn.Conv2d(f, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        f = self.reduce(x)
        g = f
        if h < self.MIN_SIZE or w < self.MIN_SIZE:
            g = F.pad(g, (0, max(0, self.MIN_SIZE - w), 0, max(0, self.MIN_SIZE - h)), mode="replicate")
        g = F.max_pool2d(self.down(g), kernel_size=7, stride=3)
        g = F.interpolate(self.group(g), size=(h, w), mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.expand(g + self.skip(f)))
