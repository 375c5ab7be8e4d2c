"""Small layers shared across CFIN: mean shift, learnable scalars, channel LayerNorm, convs."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

if TYPE_CHECKING:
    from cfin.config import CFINConfig


def records_grad(*tensors: torch.Tensor | None) -> bool:
    """Whether autograd would record an op on these tensors (grad mode on, one of them requiring grad)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def conv(in_ch: int, out_ch: int, k: int, *, bias: bool = True, wn: bool = False, stride: int = 1) -> nn.Module:
    """A k x k convolution with 'same' padding, optionally weight-normed (Salimans & Kingma, dim 0)."""
    c = nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=k // 2, bias=bias)
    return weight_norm(c, dim=0) if wn else c


class ConvStageBlock(nn.Module):
    """The contract of a conv-stage block F_C (eq. 2): CIAM or a Table V alternative.

    ``Block(n_feats)`` builds it, every other argument a keyword with a default; B x n_feats x
    H x W in, the same shape out. :meth:`from_config` builds it for a CFIN config, the one way
    :func:`cfin.models.blocks.build_conv_block` builds every block: from the width alone,
    unless a block reads more of the config (CIAM overrides it).
    """

    @classmethod
    def from_config(cls, cfg: CFINConfig) -> ConvStageBlock:
        return cls(cfg.n_feats)


class MeanShift(nn.Conv2d):
    """Subtracts (sign=-1) or adds (sign=+1) ``rgb_range * rgb_mean`` as a 1x1 conv.

    Trainable, as in the official code: its ``requires_grad = False`` is set on the module,
    which freezes nothing, so official checkpoints carry trained values.
    """

    def __init__(self, rgb_range: float, rgb_mean: tuple[float, float, float], sign: int):
        super().__init__(3, 3, 1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(rgb_mean))


class Scale(nn.Module):
    """A learnable scalar multiplier (initialised to ``init``)."""

    def __init__(self, init: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([float(init)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class LayerNorm2d(nn.Module):
    """LayerNorm over channels at every pixel (with bias, eps 1e-5, biased variance).

    The official code reshapes to (B, HW, C) and normalises by hand; ``F.layer_norm`` on the
    channel-last view computes the same function.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)
