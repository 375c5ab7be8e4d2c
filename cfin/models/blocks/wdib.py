"""WDIB: wide-residual distillation interaction block of FDIWN (Gao et al., AAAI 2022)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.models.blocks.common import CombinationCoefficient, check_width
from cfin.models.common import ConvStageBlock, Scale, conv

LRELU_SLOPE = 0.05


def shuffle_groups(channels: int, groups: int) -> int:
    """The largest g <= ``groups`` with 2g dividing ``channels`` (``groups`` itself when it fits)."""
    for g in range(min(groups, channels // 2), 0, -1):
        if channels % (2 * g) == 0:
            return g
    raise ValueError(f"shuffle attention needs an even channel count, got {channels}")


class ShuffleAttention(nn.Module):
    """Shuffle attention (SA-Net, Zhang & Yang 2021) as FDIWN's units use it.

    Channels are cut into g groups, each halved: one half is gated by a per-channel affine
    of its global average (channel attention), the other by a per-channel affine of its
    GroupNorm (spatial attention, one channel per norm group); halves are rejoined and the
    channels shuffled across the two halves.
    """

    def __init__(self, channels: int, groups: int = 6):
        super().__init__()
        self.groups = shuffle_groups(channels, groups)
        c = channels // (2 * self.groups)
        self.c_weight = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.c_bias = nn.Parameter(torch.ones(1, c, 1, 1))
        self.s_weight = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.s_bias = nn.Parameter(torch.ones(1, c, 1, 1))
        self.norm = nn.GroupNorm(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        xc, xs = x.reshape(b * self.groups, c // self.groups, h, w).chunk(2, dim=1)
        xc = xc * torch.sigmoid(self.c_weight * xc.mean(dim=(2, 3), keepdim=True) + self.c_bias)
        xs = xs * torch.sigmoid(self.s_weight * self.norm(xs) + self.s_bias)
        out = torch.cat((xc, xs), dim=1).reshape(b, c, h, w)
        return out.reshape(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)


class WideBody(nn.Sequential):
    """Wide-activation body: weight-normed 1x1 conv to the wide width, ReLU, 1x1 conv down, 3x3 conv out."""

    def __init__(self, cin: int, wide: int, slim: int, cout: int):
        super().__init__(conv(cin, wide, 1, wn=True), nn.ReLU(inplace=True),
                         conv(wide, slim, 1, wn=True), conv(slim, cout, 3, wn=True))


class WIRW(nn.Module):
    """Wide identical residual weighting unit: ``l_res * SA(body(x)) + l_x * x``.

    Body widths C -> 5C/2 -> C/2 -> C (FDIWN's code).
    """

    def __init__(self, channels: int, groups: int = 6):
        super().__init__()
        self.body = WideBody(channels, channels * 5 // 2, channels // 2, channels)
        self.attention = ShuffleAttention(channels, groups)
        self.scale_res = Scale(1.0)
        self.scale_skip = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale_res(self.attention(self.body(x))) + self.scale_skip(x)


class WCRW(nn.Module):
    """Wide convolutional residual weighting unit: ``l_res * SA(body(x)) + l_x * conv3x3(x)``.

    The skip is a 3x3 conv, so the unit can change the width: ``cin -> cout``. Body widths
    follow FDIWN's code: ``wide``, ``slim`` given by the caller.
    """

    def __init__(self, cin: int, wide: int, slim: int, cout: int, groups: int = 6):
        super().__init__()
        self.body = WideBody(cin, wide, slim, cout)
        self.attention = ShuffleAttention(cout, groups)
        self.skip = conv(cin, cout, 3)
        self.scale_res = Scale(1.0)
        self.scale_skip = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale_res(self.attention(self.body(x))) + self.scale_skip(self.skip(x))


class WDIB(ConvStageBlock):
    """Wide-residual distillation interaction block (FDIWN, "MY" in its code).

    Two lattice-like interaction stages (as LatticeNet's butterflies, FDIWN's coefficients:
    reduction 8) whose residual branches are ``WIRW -> LeakyReLU -> split`` (half the
    channels distilled, half refined by a WCRW C/2 -> C); below, ``distilled(z)`` and
    ``rest(z)`` are the two halves of ``LeakyReLU(WIRW(z))``:

    - ``a = WCRW(rest(x))``; ``Pb = A1(a) * a + x``; ``Pa = B1(x) * x + a``
    - ``b = WCRW(rest(Pb))``; ``Qb = (A2(Pa) * Pa + b) * sigmoid(conv3x3(distilled(Pb)))``;
      ``Qa = (B2(b) * b + Pa) * sigmoid(conv3x3(distilled(x)))`` (distillation interaction:
      each stage's distilled half gates the other path)
    - ``oa = WIRW(Qa)``, ``ob = WIRW(Qb)``, ``c = concat(s1 * oa, s2 * ob)``
    - self-calibration fusion: ``y = WCRW(c) + sigmoid(conv1x1(c)) * ob + x``; out ``= SA(y)``.

    Widths relative to C as FDIWN's code (WIRW C -> 5C/2 -> C/2 -> C; branch WCRW
    C/2 -> 9C/4 -> C/2 -> C; fusion WCRW 2C -> 9C/2 -> C -> C), weight-normed wide bodies,
    shuffle attention with 6 groups. The coefficient layer keeps the code's ReLU before its
    sigmoid. Simplification: where C is not a multiple of 12 the shuffle attention uses
    the largest group count <= 6 that divides C into even groups.

    Args:
        n_feats: width C (even).
        groups: shuffle-attention groups (6).
        reduction: combination-coefficient reduction (8).
    """

    def __init__(self, n_feats: int, *, groups: int = 6, reduction: int = 8):
        super().__init__()
        c = check_width("WDIB", n_feats, multiple=2)
        half = c // 2
        self.half = half
        self.stem1 = WIRW(c, groups)
        self.stem2 = WIRW(c, groups)
        self.branch1 = WCRW(half, half * 9 // 2, half, c, groups)
        self.branch2 = WCRW(half, half * 9 // 2, half, c, groups)
        self.a1 = CombinationCoefficient(c, reduction, relu_out=True)
        self.b1 = CombinationCoefficient(c, reduction, relu_out=True)
        self.a2 = CombinationCoefficient(c, reduction, relu_out=True)
        self.b2 = CombinationCoefficient(c, reduction, relu_out=True)
        self.gate_b = conv(half, c, 3, bias=False)
        self.gate_a = conv(half, c, 3, bias=False)
        self.out_a = WIRW(c, groups)
        self.out_b = WIRW(c, groups)
        self.scale_a = Scale(1.0)
        self.scale_b = Scale(1.0)
        self.fuse = WCRW(2 * c, 2 * c * 9 // 4, c, c, groups)
        self.fuse_gate = conv(2 * c, c, 1, bias=False)
        self.attention = ShuffleAttention(c, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.half, self.half)
        distilled_a, rest = torch.split(F.leaky_relu(self.stem1(x), LRELU_SLOPE), split, dim=1)
        a = self.branch1(rest)
        pb = self.a1(a) * a + x
        pa = self.b1(x) * x + a
        distilled_b, rest = torch.split(F.leaky_relu(self.stem2(pb), LRELU_SLOPE), split, dim=1)
        b = self.branch2(rest)
        qb = (self.a2(pa) * pa + b) * torch.sigmoid(self.gate_b(distilled_b))
        qa = (self.b2(b) * b + pa) * torch.sigmoid(self.gate_a(distilled_a))
        oa, ob = self.out_a(qa), self.out_b(qb)
        c = torch.cat((self.scale_a(oa), self.scale_b(ob)), dim=1)
        y = self.fuse(c) + torch.sigmoid(self.fuse_gate(c)) * ob + x
        return self.attention(y)
