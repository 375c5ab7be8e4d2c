"""ESRT: Efficient Super-Resolution Transformer (Table II).

Paper: Zhisheng Lu, Juncheng Li, Hong Liu, Chaoyan Huang, Linlin Zhang, Tieyong Zeng,
"Transformer for Single Image Super-Resolution", CVPR Workshops (NTIRE) 2022.
Shapes and key names: luissen/ESRT @ 311c6b3, model/esrt.py (the network: ``ESRT(upscale)``,
32 channels, one body block), model/common.py (conv, Scale, EDSR Upsampler), util/transformer.py
(``MLABlock``, ``EffAttention``, ``Mlp``), util/tools.py (3 x 3 patch unfold / fold); test.py feeds
RGB in [0, 1] (``trained_range`` 1.0), without a mean shift. Serves Table II (x4); Table V's HPB
block (cfin/models/blocks/hpb.py) is this network's HPB at CFIN's width, with other key names.

Paper names, and the official class each stands for: :class:`RU` (``one_conv``), :class:`ARFB`
(``one_module``), :class:`HPB` (``Updownblock``), :class:`EMHA` (``EffAttention``), :class:`ET`
(``MLABlock``), :class:`ESRTBody` (``Un``: the LCB of three HPBs and the LTB of one ET). The module
tree and keys are the official ones. LBNet (cfin/peers/lbnet.py) reuses :class:`CALayer`,
:class:`EMHA`, :class:`Mlp` and the patch unfold / fold: the same layers in its code.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cfin.models.common import Scale
from cfin.peers.common import from_trained_range, to_trained_range
from cfin.peers.registry import PeerSpec, Source


def conv(in_ch: int, out_ch: int, k: int, bias: bool = True) -> nn.Conv2d:
    """A k x k convolution with 'same' padding (EDSR's ``default_conv``)."""
    return nn.Conv2d(in_ch, out_ch, k, padding=k // 2, bias=bias)


def unfold3(x: torch.Tensor) -> torch.Tensor:
    """B x C x H x W -> B x HW x 9C: every pixel's 3 x 3 neighbourhood (zero padded) as one token."""
    return F.unfold(x, 3, padding=1).transpose(1, 2)


def fold3(tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The adjoint of :func:`unfold3`: B x HW x 9C -> B x C x H x W, overlapping patches summed."""
    return F.fold(tokens.transpose(1, 2), size, 3, padding=1)


class CALayer(nn.Module):
    """Channel attention (RCAN): ``x * sigmoid(W2 ReLU(W1 avgpool(x)))``, reduction 16.

    Args:
        channels: width C.
        reduction: C / hidden width.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class BasicConv(nn.Module):
    """A convolution without bias followed by a ReLU (ESRT's ``BasicConv`` as it is used).

    Args:
        in_ch: input channels.
        out_ch: output channels.
        k: kernel size (padding ``k // 2``).
    """

    def __init__(self, in_ch: int, out_ch: int, k: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, k, padding=k // 2, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class RU(nn.Module):
    """Residual unit (ESRT Fig. 3, Eq. 2): ``l_res * x + l_x * Ex(PReLU(Re(x)))``.

    Reduction ``Re``: 3x3 conv C -> C/2; expansion ``Ex``: 3x3 conv C/2 -> C; ``weight1``,
    ``weight2``: the adaptive weights (learnable scalars).

    Args:
        channels: width C.
    """

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.conv = conv(channels, half, 3)
        self.conv1 = conv(half, channels, 3)
        self.relu = nn.PReLU(half)
        self.weight1 = Scale(1.0)
        self.weight2 = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight1(x) + self.weight2(self.conv1(self.relu(self.conv(x))))


class ARFB(nn.Module):
    """Adaptive residual feature block (ESRT Fig. 3): two RUs, their weighted outputs concatenated,
    1x1 conv + ReLU, channel attention, 3x3 conv + ReLU; ``l_res * x + l_x * that``.

    ``weight1`` is registered and never used, as in the official code.

    Args:
        channels: width C.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.layer1 = RU(channels)
        self.layer2 = RU(channels)
        self.layer4 = BasicConv(channels, channels, 3)
        self.alise = BasicConv(2 * channels, channels, 1)
        self.atten = CALayer(channels)
        self.weight1 = Scale(1.0)
        self.weight2 = Scale(1.0)
        self.weight3 = Scale(1.0)
        self.weight4 = Scale(1.0)
        self.weight5 = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        y = self.layer4(self.atten(self.alise(torch.cat((self.weight2(x2), self.weight3(x1)), 1))))
        return self.weight4(x) + self.weight5(y)


class HPB(nn.Module):
    """High preserving block (ESRT Fig. 2): ARFB; the HFM splits its output into a 2x2-average-pooled
    low-frequency map, refined by one ARFB applied ``low_steps`` times (shared weights), and the
    high-frequency residue ``x - up(pool(x))``, refined by one ARFB; both at full size are
    concatenated, fused by a 1x1 conv + ReLU, channel attention and an ARFB, plus the input.

    Pooling is ``nn.AvgPool2d(2)`` (an odd last row or column is dropped), upsampling bilinear with
    ``align_corners=True``, as in the official code.

    Args:
        channels: width C.
        low_steps: applications of the low-frequency ARFB (5).
    """

    def __init__(self, channels: int, low_steps: int = 5):
        super().__init__()
        self.low_steps = low_steps
        self.encoder = ARFB(channels)
        self.decoder_low = ARFB(channels)
        self.decoder_high = ARFB(channels)
        self.alise = ARFB(channels)
        self.alise2 = BasicConv(2 * channels, channels, 1)
        self.down = nn.AvgPool2d(kernel_size=2)
        self.att = CALayer(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x1 = self.encoder(x)
        low = self.down(x1)
        high = x1 - F.interpolate(low, size=size, mode="bilinear", align_corners=True)
        for _ in range(self.low_steps):
            low = self.decoder_low(low)
        low = F.interpolate(low, size=size, mode="bilinear", align_corners=True)
        return self.alise(self.att(self.alise2(torch.cat((low, self.decoder_high(high)), 1)))) + x


class Mlp(nn.Module):
    """The ET's feed-forward network: Linear (D -> D/4), ReLU, Linear (D/4 -> D).

    Args:
        dim: token width D.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, dim // 4)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(dim // 4, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EMHA(nn.Module):
    """Efficient multi-head attention (ESRT Fig. 4): a Linear reduces D to D/2, a Linear makes Q, K, V
    (no bias); the N tokens are split into consecutive chunks of ``N // splits`` (the last one
    shorter), softmax attention runs within each chunk; a Linear projects D/2 back to D.

    Args:
        dim: token width D.
        num_heads: heads (over D/2).
        splits: the chunk length is ``N // splits`` (ESRT 4; LBNet 16). Where ``N < splits`` the
            official code fails (a chunk of 0 tokens); here the chunk is at least one token.
    """

    def __init__(self, dim: int, num_heads: int = 8, splits: int = 4):
        super().__init__()
        self.num_heads, self.splits = num_heads, splits
        self.scale = (dim // num_heads) ** -0.5  # the official scale: from D, not D/2
        self.reduce = nn.Linear(dim, dim // 2, bias=False)
        self.qkv = nn.Linear(dim // 2, dim // 2 * 3, bias=False)
        self.proj = nn.Linear(dim // 2, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        chunk = max(1, n // self.splits)
        out = []
        for qi, ki, vi in zip(q.split(chunk, -2), k.split(chunk, -2), v.split(chunk, -2)):
            attn = ((qi @ ki.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            out.append((attn @ vi).transpose(1, 2))
        return self.proj(torch.cat(out, dim=1).reshape(b, n, c))


class ET(nn.Module):
    """Efficient Transformer (ESRT Fig. 4): the map's 3 x 3 patches as tokens (D = 9C), then
    ``x + EMHA(LN(x))`` and ``x + MLP(LN(x))``. Returns tokens (B x HW x D).

    Args:
        dim: token width D (288 for C = 32).
        num_heads: EMHA heads.
    """

    def __init__(self, dim: int, num_heads: int = 8):
        super().__init__()
        self.atten = EMHA(dim, num_heads, splits=4)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = unfold3(x)
        x = x + self.atten(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ESRTBody(nn.Module):
    """The LCB (three HPBs) and the LTB (ESRT Fig. 2): the HPB outputs concatenated, a 3x3 conv to C,
    one ET on its 3 x 3 patches, the tokens folded back (overlaps summed), a 3x3 conv;
    ``l1 * x + l2 * that``.

    Args:
        channels: width C.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.encoder1 = HPB(channels)
        self.encoder2 = HPB(channels)
        self.encoder3 = HPB(channels)
        self.reduce = conv(3 * channels, channels, 3)
        self.weight2 = Scale(1.0)
        self.weight1 = Scale(1.0)
        self.attention = ET(9 * channels)
        self.alise = conv(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.encoder1(x)
        x2 = self.encoder2(x1)
        x3 = self.encoder3(x2)
        tokens = self.attention(self.reduce(torch.cat((x1, x2, x3), 1)))
        return self.weight1(x) + self.weight2(self.alise(fold3(tokens, x.shape[-2:])))


def edsr_upsampler(scale: int, channels: int) -> nn.Sequential:
    """EDSR's upsampler: per factor 2 (or once for 3) a 3x3 conv to ``r^2 C`` and a pixel shuffle."""
    steps = [2] * int(math.log2(scale)) if scale in (2, 4) else [3]
    layers = []
    for r in steps:
        layers += [conv(channels, r * r * channels, 3), nn.PixelShuffle(r)]
    return nn.Sequential(*layers)


class ESRT(nn.Module):
    """ESRT (Fig. 2): a 3x3 head conv, the body, a 3x3 conv; two reconstructions added: EDSR
    upsampler + 3x3 conv on the body output, EDSR upsampler + 3x3 conv (no bias) + ReLU on the head
    output. Takes and returns RGB in [0, 255] (its weights: [0, 1]).

    Args:
        scale: upscaling factor.
        n_feats: width C (32).
    """

    def __init__(self, scale: int, n_feats: int = 32):
        super().__init__()
        self.head = nn.Sequential(conv(3, n_feats, 3))
        self.body = nn.Sequential(ESRTBody(n_feats))
        self.tail = nn.Sequential(edsr_upsampler(scale, n_feats), conv(n_feats, 3, 3))
        self.up = nn.Sequential(edsr_upsampler(scale, n_feats), BasicConv(n_feats, 3, 3))
        self.reduce = conv(n_feats, n_feats, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(to_trained_range(x, 1.0))
        y = self.tail(self.reduce(self.body(head))) + self.up(head)
        return from_trained_range(y, 1.0)


SPECS = (
    PeerSpec(
        name="esrt",
        title="ESRT",
        paper=("Lu, Li, Liu, Huang, Zhang, Zeng: Transformer for Single Image Super-Resolution, "
               "CVPR Workshops 2022"),
        source=Source("luissen/ESRT", "311c6b3", ("model/esrt.py", "model/common.py", "util/transformer.py",
                                                   "util/tools.py")),
        scales=(4,),
        builder=ESRT,
        trained_range=1.0,
        tables=("II",),
        printed_counting=(
            "Params: 751,767 registered (751,755 used: the torchsummaryX rule) vs printed 751K; x2 677,783 and x3 "
            "770,263 as its paper's 677K / 770K. Multi-Adds 67.7G not reproduced: at 1280 x 720 the torchsummaryX "
            "rule gives 47.69G (convolutions only), ptflops 58.91G, convolutions + linears 58.44G (thop's rules, "
            "whose profile call is commented out in model/esrt.py, count these), full 297.32G (238.88G of it the "
            "attention's q k^T and attn v); its x2 / x3 (191.4G / 96.4G) are missed alike (118.05G / 62.69G "
            "convolutions, 161.04G / 81.77G with the linears)."),
        unused=(r"body\.0\.encoder\d\.\w+\.weight1\.scale$",),
        notes=("One body block (n_blocks 1) of three HPBs and one ET, 32 channels, as the public code. "
               "Each ARFB's weight1 is registered but unused (official)."),
    ),
)
