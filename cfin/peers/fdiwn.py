"""FDIWN and FDIWN-M (Table I: FDIWN x2/x3/x4; Table IX: FDIWN-M x4).

Paper: G. Gao, W. Li, J. Li, F. Wu, H. Lu, Y. Yu, "Feature Distillation Interaction Weighting
Network for Lightweight Image Super-Resolution", AAAI 2022.

Shapes, widths and key names read from 24wenjie-li/FDIWN @ fa93977:
FDIWN_TrainCode/code/model/FDIWNx{2,3,4}.py (``MODEL(args)``, ``n_feats=64``) and its
model/common.py. Released weights: FDIWN_TrainCode/experiment/FDIWNx{s}/model/model_best.pt,
RGB in [0, 255] (the mean shift is inside the network).

The public code writes one file per scale, and they are not the same network:

* x2 and x3 widen the tail (``conv1``: 24 -> 64, the second path's ``conv2``: 3 -> 64) and
  feed the second path the raw image; x4 uses 32 channels there and feeds it the mean-shifted
  image;
* the 1x1 expansions of the wide units differ: x2/x3 WIRW C -> 2C, branch WCRW C -> 4C, fusion
  WCRW C -> 2C (C its input width); x4 5C/2, 9C/2 and 9C/4.

:data:`SCALE_CONFIGS` holds the two as data. Everything else is shared: n_feats 64, body width
3 x 64 / 8 = 24, three FSWGs of three WDIBs, and the wide-residual distillation connection
(WRDC) that calls the FSWGs six times in the order 1, 1, 2, 3, 2, 3.

The mean shifts train: the public code's ``MeanShift`` sets ``requires_grad = False`` on the
module, not on its parameters (the released x2 ``Sub_mean`` has 0.909 on its diagonal), so we
use CFIN's trainable :class:`cfin.models.common.MeanShift`.

FDIWN-M (the paper's smaller model, x4 only here) has no code in the repository;
:func:`fdiwn_m` documents what was reconstructed and how its counts compare.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from cfin.models.blocks.common import channel_std, squeeze_excite_mlp
from cfin.models.common import MeanShift, Scale, conv
from cfin.peers.registry import PeerSpec, Source

RGB_MEAN = (0.4488, 0.4371, 0.4040)
LRELU_SLOPE = 0.05
SA_GROUPS = 6
COEFF_REDUCTION = 8
SOURCE = Source("24wenjie-li/FDIWN", "fa93977",
                tuple(f"FDIWN_TrainCode/code/model/FDIWNx{s}.py" for s in (2, 3, 4))
                + ("FDIWN_TrainCode/code/model/common.py",))
PAPER = ("G. Gao, W. Li, J. Li, F. Wu, H. Lu, Y. Yu, \"Feature Distillation Interaction Weighting Network "
         "for Lightweight Image Super-Resolution\", AAAI 2022")


def _times(n: int, ratio: Fraction) -> int:
    """``n * ratio`` rounded down, as the public code's ``n * 9 // 2``."""
    return n * ratio.numerator // ratio.denominator


@dataclass(frozen=True)
class FDIWNConfig:
    """One scale's FDIWN as the public code builds it.

    Args:
        scale: upscaling factor (2, 3, 4).
        n_feats: the code's ``n_feats`` (64); the body runs at ``3 * n_feats // 8``.
        wirw_expand: WIRW's first 1x1 conv, C -> ``C * wirw_expand``.
        branch_expand: the WDIB branch WCRW's first 1x1 conv (on C/2 channels).
        fuse_expand: the self-calibration fusion WCRW's first 1x1 conv (on 2C channels).
        tail_width: channels of ``conv1`` (body -> tail) and of the second path's ``conv2``.
        raw_second_path: the second path (``conv2``, ``UP2``) reads the raw image (x2, x3) rather
            than the mean-shifted one (x4).
        n_groups: FSWGs (``Li1``, ``Li2``, ...).
        order: the FSWG called at each step of the WRDC (1-based), after the first ``Li1`` call.
    """

    scale: int
    n_feats: int = 64
    wirw_expand: Fraction = Fraction(2)
    branch_expand: Fraction = Fraction(4)
    fuse_expand: Fraction = Fraction(2)
    tail_width: int = 64
    raw_second_path: bool = True
    n_groups: int = 3
    order: tuple[int, ...] = (1, 2, 3, 2, 3)


# Table I's FDIWN: FDIWNx2.py / FDIWNx3.py share their widths; FDIWNx4.py differs.
SCALE_CONFIGS = {
    2: FDIWNConfig(scale=2),
    3: FDIWNConfig(scale=3),
    4: FDIWNConfig(scale=4, wirw_expand=Fraction(5, 2), branch_expand=Fraction(9, 2),
                   fuse_expand=Fraction(9, 4), tail_width=32, raw_second_path=False),
}


class ShuffleAttention(nn.Module):
    """Shuffle attention (SA-Net) as FDIWN's ``sa_layer``: 6 groups, each halved into a channel
    gate ``sigmoid(w * avgpool + b)`` and a spatial gate ``sigmoid(w * GroupNorm + b)``; the
    halves are rejoined and the channels shuffled across two groups.

    Args:
        channels: C, a multiple of 12.
        groups: attention groups (6).
    """

    def __init__(self, channels: int, groups: int = SA_GROUPS):
        super().__init__()
        self.groups = groups
        c = channels // (2 * groups)
        self.cweight = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, c, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, c, 1, 1))
        self.gn = nn.GroupNorm(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        xc, xs = x.reshape(b * self.groups, c // self.groups, h, w).chunk(2, dim=1)
        xc = xc * torch.sigmoid(self.cweight * xc.mean(dim=(2, 3), keepdim=True) + self.cbias)
        xs = xs * torch.sigmoid(self.sweight * self.gn(xs) + self.sbias)
        out = torch.cat((xc, xs), dim=1).reshape(b, c, h, w)
        return channel_shuffle(out, 2)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: (g, C/g) channel order -> (C/g, g)."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class WideBody(nn.Sequential):
    """The wide-activation body of FDIWN's units: weight-normed 1x1 (cin -> wide), ReLU,
    1x1 (wide -> slim), 3x3 (slim -> cout)."""

    def __init__(self, cin: int, wide: int, slim: int, cout: int):
        super().__init__(conv(cin, wide, 1, wn=True), nn.ReLU(inplace=True),
                         conv(wide, slim, 1, wn=True), conv(slim, cout, 3, wn=True))


class WIRW(nn.Module):
    """Wide identical residual weighting unit (the code's ``SRBW1``):
    ``res_scale * SA(body(x)) + x_scale * x``; body C -> wide -> C/2 -> C.

    Args:
        channels: C.
        expand: the first 1x1 conv's width over C.
    """

    def __init__(self, channels: int, expand: Fraction):
        super().__init__()
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)
        self.body = WideBody(channels, _times(channels, expand), channels // 2, channels)
        self.SAlayer = ShuffleAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_scale(self.SAlayer(self.body(x))) + self.x_scale(x)


class WCRW(nn.Module):
    """Wide convolutional residual weighting unit (the code's ``SRBW`` and ``SRBW2``):
    ``res_scale * SA(body(x)) + x_scale * conv3x3(x)``; it changes the width.

    Args:
        cin: input channels.
        wide: the first 1x1 conv's width.
        slim: the second 1x1 conv's width.
        cout: output channels.
    """

    def __init__(self, cin: int, wide: int, slim: int, cout: int):
        super().__init__()
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)
        self.conv = conv(cin, cout, 3)
        self.body = WideBody(cin, wide, slim, cout)
        self.SAlayer = ShuffleAttention(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_scale(self.SAlayer(self.body(x))) + self.x_scale(self.conv(x))


class CoffConv(nn.Module):
    """Combination coefficients (LatticeNet's, FDIWN's ``CoffConv``): the average of
    ``sigmoid(ReLU(MLP(mean)))`` and ``sigmoid(ReLU(MLP(std)))`` over each channel (B x C x 1 x 1).

    Args:
        channels: C (the MLP's hidden width is C / 8).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.upper_branch = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                          *squeeze_excite_mlp(channels, COEFF_REDUCTION, relu_out=True))
        self.lower_branch = squeeze_excite_mlp(channels, COEFF_REDUCTION, relu_out=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.upper_branch(x) + self.lower_branch(channel_std(x))) / 2


class WDIB(nn.Module):
    """Wide-residual distillation interaction block (the code's ``MY``).

    With ``d(z), r(z)`` the two halves of ``LeakyReLU(WIRW(z))``:
    ``a = WCRW(r(x))``, ``Pb = A1(a) a + x``, ``Pa = B1(x) x + a``; ``b = WCRW(r(Pb))``,
    ``Qb = (A2(Pa) Pa + b) sigmoid(conv(d(Pb)))``, ``Qa = (B2(b) b + Pa) sigmoid(conv(d(x)))``;
    ``oa, ob = WIRW(Qa), WIRW(Qb)``, ``c = [s1 oa, s2 ob]``; self-calibration fusion
    ``y = WCRW(c) + sigmoid(conv1x1(c)) ob + x``; out ``SA(y)``.

    Args:
        channels: C (a multiple of 24: shuffle attention on C/2 x 2 channels).
        config: the scale's widths.
    """

    def __init__(self, channels: int, config: FDIWNConfig):
        super().__init__()
        c, half = channels, channels // 2
        self.half = half
        self.srb1 = WIRW(c, config.wirw_expand)
        self.srb2 = WIRW(c, config.wirw_expand)
        self.rb1 = WCRW(half, _times(half, config.branch_expand), half, c)
        self.rb2 = WCRW(half, _times(half, config.branch_expand), half, c)
        self.A1_coffconv = CoffConv(c)
        self.B1_coffconv = CoffConv(c)
        self.A2_coffconv = CoffConv(c)
        self.B2_coffconv = CoffConv(c)
        self.conv_distilled1 = conv(half, c, 3, bias=False)
        self.conv_distilled2 = conv(half, c, 3, bias=False)
        self.scale_x1 = Scale(1.0)
        self.scale_x2 = Scale(1.0)
        self.srb3 = WIRW(c, config.wirw_expand)
        self.srb4 = WIRW(c, config.wirw_expand)
        self.fuse1 = WCRW(2 * c, _times(2 * c, config.fuse_expand), c, c)
        self.fuse2 = conv(2 * c, c, 1, bias=False)
        self.SAlayer = ShuffleAttention(c)

    def _split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.split(F.leaky_relu(z, LRELU_SLOPE), (self.half, self.half), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled_a, rest_a = self._split(self.srb1(x))
        a = self.rb1(rest_a)
        pb = self.A1_coffconv(a) * a + x
        pa = self.B1_coffconv(x) * x + a
        distilled_b, rest_b = self._split(self.srb2(pb))
        b = self.rb2(rest_b)
        qb = (self.A2_coffconv(pa) * pa + b) * torch.sigmoid(self.conv_distilled1(distilled_b))
        qa = (self.B2_coffconv(b) * b + pa) * torch.sigmoid(self.conv_distilled2(distilled_a))
        oa, ob = self.srb3(qa), self.srb4(qb)
        # the code builds the concatenation twice, each calling scale_x1 and scale_x2
        fused = self.fuse1(torch.cat((self.scale_x1(oa), self.scale_x2(ob)), dim=1))
        gate = torch.sigmoid(self.fuse2(torch.cat((self.scale_x1(oa), self.scale_x2(ob)), dim=1)))
        return self.SAlayer(fused + gate * ob + x)


class FSWG(nn.Module):
    """Feature shuffle weighted group (the code's ``Li``): three WDIBs,
    ``o1 = W1(x)``, ``o2 = W2(o1)``, ``o3 = W3(o2 + conv(o1))``; the outputs are fused by two
    grouped 3x3 convs after channel shuffles, ``f = g2(shuffle([g1(shuffle([o1, o2])), o3]))``;
    out ``0.5-init scale_x * (f + o3) + scale_res * WIRW(x)``.

    Args:
        channels: C.
        config: the scale's widths.
    """

    def __init__(self, channels: int, config: FDIWNConfig):
        super().__init__()
        c = channels
        self.MY1 = WDIB(c, config)
        self.MY2 = WDIB(c, config)
        self.MY3 = WDIB(c, config)
        self.conv = conv(c, c, 3, bias=False)
        self.conv1 = nn.Conv2d(2 * c, c, 3, padding=1, groups=4, bias=False)
        self.conv2 = nn.Conv2d(2 * c, c, 3, padding=1, groups=4, bias=False)
        self.rb1 = WIRW(c, config.wirw_expand)
        self.scale_x = Scale(0.5)
        self.scale_res = Scale(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1 = self.MY1(x)
        o2 = self.MY2(o1)
        o3 = self.MY3(o2 + self.conv(o1))
        f = self.conv1(channel_shuffle(torch.cat((o1, o2), dim=1), 4))
        f = self.conv2(channel_shuffle(torch.cat((f, o3), dim=1), 4))
        return self.scale_x(f + o3) + self.scale_res(self.rb1(x))


class FDIWN(nn.Module):
    """FDIWN (the code's ``MODEL``): RGB [0, 255] in and out.

    ``x0 = Sub_mean(x)``, ``y = Li1(head(x0))``; the WRDC runs the FSWGs in ``config.order``,
    each on the running sum of the previous outputs (``d_k = d_{k-1} + u_k``, the last output
    not added), and the tail upsamples ``conv1(y + u_1 + ... + u_5)``; a second path
    ``UP2(conv2(x0 or x))`` is added before ``Add_mean``.

    Args:
        config: the scale's architecture (:data:`SCALE_CONFIGS`).
    """

    def __init__(self, config: FDIWNConfig):
        super().__init__()
        self.arch = config
        s, body, tail = config.scale, 3 * config.n_feats // 8, config.tail_width
        self.Sub_mean = MeanShift(255.0, RGB_MEAN, -1)
        self.Add_mean = MeanShift(255.0, RGB_MEAN, 1)
        self.head = conv(3, body, 3)
        for i in range(1, config.n_groups + 1):
            self.add_module(f"Li{i}", FSWG(body, config))
        self.conv1 = conv(body, tail, 3, bias=False)
        self.UP1 = nn.Sequential(conv(tail, 3 * s * s, 3), nn.PixelShuffle(s))
        self.conv2 = conv(3, tail, 3)
        self.UP2 = nn.Sequential(conv(tail, 3 * s * s, 3), nn.PixelShuffle(s))

    def group(self, i: int) -> FSWG:
        return getattr(self, f"Li{i}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.Sub_mean(x)
        y = self.Li1(self.head(x0))
        running, total = y, y
        for step, i in enumerate(self.arch.order):
            u = self.group(i)(running)
            total = total + u
            if step < len(self.arch.order) - 1:
                running = running + u
        out = self.UP1(self.conv1(total)) + self.UP2(self.conv2(x if self.arch.raw_second_path else x0))
        return self.Add_mean(out)


def fdiwn(scale: int) -> FDIWN:
    """Table I's FDIWN at ``scale``, as FDIWNx{scale}.py builds it."""
    return FDIWN(SCALE_CONFIGS[scale])


def fdiwn_m(scale: int) -> FDIWN:
    """Table IX's FDIWN-M: FDIWN with two FSWGs, each run twice (``Li1``, ``Li1``, ``Li2``, ``Li2``).

    The repository has no FDIWN-M code or weights (its README lists only the numbers). With
    the scale's FDIWN widths, two FSWGs and four FSWG calls give the torchsummaryX counts of
    FDIWN-M's printed rows at x4 (454,248 / 19.60G vs 454K / 19.6G) and x3 (446,414 / 35.93G
    vs 446K / 35.9G); three groups or another number of calls do not. The counts do not fix
    the order of the calls after the first ``Li1``; we follow FDIWN, whose every FSWG runs
    twice.
    """
    return FDIWN(replace(SCALE_CONFIGS[scale], n_groups=2, order=(1, 2, 2)))


def _wn_key(key: str) -> str:
    return key.replace(".weight_g", ".parametrizations.weight.original0").replace(
        ".weight_v", ".parametrizations.weight.original1")


SPECS = (
    PeerSpec(
        name="fdiwn", title="FDIWN", paper=PAPER, source=SOURCE, scales=(2, 3, 4), builder=fdiwn,
        trained_range=255.0, tables=("I",), key_map=_wn_key,
        weights={s: f"FDIWNx{s}_model_best.pt" for s in (2, 3, 4)},
        printed_counting=("torchsummaryX rule (paper convention): 628,576 / 112.02G at x2 vs printed 629K / 112.0G, "
                          "645,886 / 51.48G at x3 vs 645K / 51.5G, 663,248 / 28.36G at x4 vs 664K / 28.4G (Params "
                          "within 0.14%, Multi-Adds within 0.16%; the 600 shuffle-attention gate parameters sit on "
                          "modules with children, unseen by the rule). The full count's Params (629,176 / 646,486 / "
                          "663,848) round to x2's and x4's printed numbers but not to x3's."),
        notes="x2/x3 and x4 are different networks in the public code (SCALE_CONFIGS); the mean shifts train.",
    ),
    PeerSpec(
        name="fdiwn-m", title="FDIWN-M", paper=PAPER, source=SOURCE, scales=(4,), builder=fdiwn_m,
        trained_range=255.0, tables=("IX",), key_map=_wn_key,
        printed_counting=("torchsummaryX rule (paper convention): 454,248 / 19.60G at x4 vs printed 454K / 19.6G; the "
                          "rule's counts of this reconstruction at x3 (446,414 / 35.93G) also give the README's "
                          "446K / 35.9G, its x2 (429,104 / 76.99G) not the README's 433K / 73.6G."),
        notes="no public code or weights: reconstructed from FDIWN's code and the printed counts (fdiwn_m).",
    ),
)
