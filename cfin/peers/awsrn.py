"""AWSRN-M (Table I, x2 / x3 / x4).

Paper: C. Wang, Z. Li, J. Shi, "Lightweight Image Super-Resolution with Adaptive Weighted
Learning Network", arXiv:1904.02358, 2019.

Shapes and key names: ChaofWang/AWSRN @ b7e285e, ``code/src/model/awsrn.py`` (the file behind
the paper's AWSRN, -M and -S), ``code/src/option.py`` (``n_feats`` 32, ``block_feats`` 128,
``rgb_range`` 255) and README.md's commands (AWSRN-M: ``--n_resblocks 3``). Every conv is
weight-normed (``torch.nn.utils.weight_norm``: keys ``weight_g``, ``weight_v``; ours
``parametrizations.weight.original0/1``, mapped by :func:`weight_norm_key`). The released
checkpoints are on Google Drive only (not in shared/reference/peers).

Input: RGB in [0, 255]; the network subtracts the DIV2K mean x 255 and divides by 127.5, and
undoes it at the end (a constant, not a parameter).
"""
from __future__ import annotations


import torch
from torch import nn

from cfin.models.common import Scale, conv
from cfin.peers.common import RGB_MEAN_DIV2K, weight_norm_key
from cfin.peers.registry import PeerSpec, Source

N_FEATS = 32
BLOCK_FEATS = 128
N_LFB = 3  # AWSRN-M; AWSRN has 4, AWSRN-S 1
TAIL_KERNELS = (3, 5, 7, 9)


class AWRU(nn.Module):
    """Adaptive weighted residual unit (Sec. 3.2, Fig. 3(c)): ``lambda_res * body(x) + lambda_x * x``,
    body = weight-normed 3x3 conv C -> C_b, ReLU, 3x3 conv C_b -> C.

    Args:
        n_feats: C.
        block_feats: C_b, the wide inner width.
    """

    def __init__(self, n_feats: int, block_feats: int):
        super().__init__()
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)
        self.body = nn.Sequential(conv(n_feats, block_feats, 3, wn=True), nn.ReLU(inplace=True),
                                  conv(block_feats, n_feats, 3, wn=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_scale(self.body(x)) + self.x_scale(x)


class LFB(nn.Module):
    """Local fusion block (Sec. 3.2, Fig. 2): four chained AWRUs ``b0..b3``; the local residual
    fusion unit concatenates their outputs, fuses them with a weight-normed 3x3 conv 4C -> C
    (``reduction``) and adds the input, both adaptively weighted.

    Args:
        n_feats: C.
        block_feats: the AWRUs' inner width.
    """

    def __init__(self, n_feats: int, block_feats: int):
        super().__init__()
        self.b0 = AWRU(n_feats, block_feats)
        self.b1 = AWRU(n_feats, block_feats)
        self.b2 = AWRU(n_feats, block_feats)
        self.b3 = AWRU(n_feats, block_feats)
        self.reduction = conv(4 * n_feats, n_feats, 3, wn=True)
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.b0(x)
        x1 = self.b1(x0)
        x2 = self.b2(x1)
        x3 = self.b3(x2)
        return self.res_scale(self.reduction(torch.cat((x0, x1, x2, x3), dim=1))) + self.x_scale(x)


class AWMS(nn.Module):
    """Adaptive weighted multi-scale reconstruction (Sec. 3.3, Fig. 2): one weight-normed conv
    C -> 3 s^2 per kernel size k (``tail_k{k}``), each weighted by a learnable scalar
    (``scale_k{k}``), pixel-shuffled and summed.

    MAFFSRN's ``Tail`` is the same module with kernels (3, 5) weighted 0.5.

    Args:
        n_feats: C.
        scale: the upscaling factor s.
        kernels: the kernel sizes.
        init: each branch's initial weight.
    """

    def __init__(self, n_feats: int, scale: int, kernels: tuple[int, ...] = TAIL_KERNELS, init: float = 0.25):
        super().__init__()
        self.kernels = tuple(kernels)
        for k in self.kernels:
            setattr(self, f"tail_k{k}", conv(n_feats, 3 * scale ** 2, k, wn=True))
        self.pixelshuffle = nn.PixelShuffle(scale)
        for k in self.kernels:
            setattr(self, f"scale_k{k}", Scale(init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(self.pixelshuffle(getattr(self, f"scale_k{k}")(getattr(self, f"tail_k{k}")(x)))
                   for k in self.kernels)


class AWSRN(nn.Module):
    """AWSRN (Fig. 2): a weight-normed 3x3 head conv, ``n_lfb`` LFBs, AWMS, plus a skip branch
    from the normalised input (3x3 conv to 3 s^2, pixel shuffle). Public class: ``MODEL``.

    Args:
        scale: the upscaling factor (2, 3, 4).
        n_lfb: LFBs (AWSRN-M: 3).
        n_feats: C.
        block_feats: the AWRUs' inner width.
    """

    def __init__(self, scale: int, n_lfb: int = N_LFB, n_feats: int = N_FEATS, block_feats: int = BLOCK_FEATS):
        super().__init__()
        self.register_buffer("rgb_mean", torch.tensor(RGB_MEAN_DIV2K).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.head = nn.Sequential(conv(3, n_feats, 3, wn=True))
        self.body = nn.Sequential(*(LFB(n_feats, block_feats) for _ in range(n_lfb)))
        self.tail = AWMS(n_feats, scale)
        self.skip = nn.Sequential(conv(3, 3 * scale ** 2, 3, wn=True), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.rgb_mean) / 127.5
        out = self.tail(self.body(self.head(x))) + self.skip(x)
        return out * 127.5 + self.rgb_mean


SPECS = (
    PeerSpec(
        name="awsrn-m",
        title="AWSRN-M",
        paper="C. Wang, Z. Li, J. Shi, \"Lightweight Image Super-Resolution with Adaptive Weighted Learning "
              "Network\", arXiv:1904.02358, 2019",
        source=Source("ChaofWang/AWSRN", "b7e285e", ("code/src/model/awsrn.py", "code/src/option.py", "README.md")),
        scales=(2, 3, 4),
        builder=AWSRN,
        trained_range=255.0,
        tables=("I",),
        printed_counting=(
            "full (every conv MAC, weight-normed convs included, biases not): 1,063,742 / 244.11G at x2, "
            "1,143,017 / 116.41G at x3, 1,254,002 / 71.96G at x4 vs printed 1063K / 244.1G, 1143K / 116.6G, "
            "1254K / 72.0G; x3's 116.6G is the per-LR-pixel cost x 1280 x 720 / 9 = 102,400 pixels "
            "(116.59G), the suite's 240 x 426 LR has 102,240 (-0.16%). The torchsummaryX rule charges "
            "weight-normed convs once per call (1.06M Multi-Adds): not AWSRN's rule."),
        key_map=weight_norm_key,
        notes="AWSRN-M is the public MODEL with --n_resblocks 3 (n_feats 32, block_feats 128).",
    ),
)
