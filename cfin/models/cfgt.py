"""The Transformer stage: CGA (eq. 13, 17), IGP and CFGT (eq. 14-16), Fig. 5."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.models.cgm import CGM
from cfin.models.common import LayerNorm2d


def token_mixer(kind: str, in_ch: int, out_ch: int, k: int, impl: str = "unfold") -> nn.Module:
    """The projection inside CGA and IGP (Table VI): ``cgm``, ``linear`` (1x1 conv) or
    ``gconv`` (k x k grouped conv, 8 groups)."""
    if kind == "cgm":
        return CGM(in_ch, out_ch, k, impl)
    if kind == "linear":
        return nn.Conv2d(in_ch, out_ch, 1)
    if kind == "gconv":
        return nn.Conv2d(in_ch, out_ch, k, padding=k // 2, groups=8)
    raise ValueError(f"unknown token mixer {kind!r}; valid: cgm, linear, gconv")


class CGA(nn.Module):
    """Context Guided Attention: transposed (channel) attention on CGM projections.

    ``q, k, v = split(CGM(x))``; with the first CGA's ``k1, v1`` given (eq. 17):
    ``k = k + k1``, ``v = v + v1``. q and k are L2-normalised over pixels and
    ``attn = softmax((q k^T) * omega)`` with omega a learnable heads x d x d tensor
    (elementwise, where eq. 13 divides by a scalar); out ``= attn v``. Returns
    ``(out, k, v)`` with k normalised and v raw, for the next CGA.
    """

    def __init__(self, dim: int, heads: int, k: int = 1, mixer: str = "cgm", impl: str = "unfold"):
        super().__init__()
        self.heads = heads
        self.qkv = token_mixer(mixer, dim, 3 * dim, k, impl)
        self.omega = nn.Parameter(torch.randn(heads, dim // heads, dim // heads) * 1e-3)

    def forward(self, x: torch.Tensor, k1: torch.Tensor | None = None, v1: torch.Tensor | None = None):
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in self.qkv(x).chunk(3, dim=1))
        if k1 is not None:
            k = k + k1
            v = v + v1
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.omega).softmax(dim=-1)
        return (attn @ v).reshape(b, c, h, w), k, v


class IGP(nn.Module):
    """Interactive Guidance Perceptron: CGM (k = 1), GELU, CGM (k = 3)."""

    def __init__(self, dim: int, mixer: str = "cgm", impl: str = "unfold"):
        super().__init__()
        self.fc1 = token_mixer(mixer, dim, dim, 1, impl)
        self.fc2 = token_mixer(mixer, dim, dim, 3, impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class CFGT(nn.Module):
    """Cross-receptive Field Guide Transformer (eq. 14-16), post-norm on each branch.

    ``y, k1, v1 = CGA1(x)``; ``x = x + LN1(y)``; ``x = x + LN2(CGA2(x, k1, v1))``;
    ``x = x + LN3(IGP(x))``. ``kv_share=False`` drops the K/V hand-over (Table VII).
    """

    def __init__(self, dim: int, heads: int, kernels: tuple[int, int] = (1, 1), kv_share: bool = True,
                 mixer: str = "cgm", impl: str = "unfold"):
        super().__init__()
        self.kv_share = kv_share
        self.cga1 = CGA(dim, heads, kernels[0], mixer, impl)
        self.norm1 = LayerNorm2d(dim)
        self.cga2 = CGA(dim, heads, kernels[1], mixer, impl)
        self.norm2 = LayerNorm2d(dim)
        self.igp = IGP(dim, mixer, impl)
        self.norm3 = LayerNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, k1, v1 = self.cga1(x)
        x = x + self.norm1(y)
        y = self.cga2(x, k1, v1)[0] if self.kv_share else self.cga2(x)[0]
        x = x + self.norm2(y)
        return x + self.norm3(self.igp(x))
