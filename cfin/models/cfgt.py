"""The Transformer stage: CGA (eq. 13, 17), IGP and CFGT (eq. 14-16), Fig. 5."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.config import CGA_GRAM_CHOICES, TOKEN_MIXERS
from cfin.models.cgm import CGM, modulated_conv
from cfin.models.common import LayerNorm2d
from cfin.models.gram import GRAM_ROLES, NORM_EPS, KeyMap, ValueMap, gram, gram_saving, norm_from_quadratic


class ChannelLinear(nn.Linear):
    """The "Linear" token mixer of Table VI: an ``nn.Linear`` over the channels of every pixel.

    The same function as a 1x1 conv, kept an ``nn.Linear`` because that is how the paper's
    counting rule saw it: torchsummaryX charges a Linear its weights once, not once per pixel
    (Table VI prints 4.1104G for the Linear row against 4.1105G for the CGM row).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.movedim(1, -1), self.weight, self.bias).movedim(-1, 1)


def token_mixer(kind: str, in_ch: int, out_ch: int, k: int, impl: str = "unfold", groups: int = 4) -> nn.Module:
    """The projection inside CGA and IGP (Table VI): ``cgm``, ``linear`` (a per-pixel
    :class:`ChannelLinear`) or ``gconv`` (k x k grouped conv with bias, ``groups`` groups)."""
    if kind == "cgm":
        return CGM(in_ch, out_ch, k, impl)
    if kind == "linear":
        return ChannelLinear(in_ch, out_ch)
    if kind == "gconv":
        return nn.Conv2d(in_ch, out_ch, k, padding=k // 2, groups=groups)
    raise ValueError(f"unknown token mixer {kind!r}; valid: {', '.join(TOKEN_MIXERS)}")


class CGA(nn.Module):
    """Context Guided Attention: transposed (channel) attention on CGM projections.

    ``q, k, v = split(CGM(x))``; with the first CGA's ``k1, v1`` given (eq. 17):
    ``k = k + k1``, ``v = v + v1``. q and k are L2-normalised over pixels and
    ``attn = softmax((q k^T) * omega)`` with omega a learnable heads x d x d tensor
    (elementwise, where eq. 13 divides by a scalar); out ``= attn v``. Returns
    ``(out, k, v)`` with k normalised and v raw, for the next CGA.

    ``fused=True`` computes the same function with fewer passes over the pixels. With a 1x1
    CGM (the released model) q and k are never materialised: every product and norm the
    attention needs comes from the C x C Gram matrix of the input (``q k^T = Wq x x^T
    Wk^T``), and the first CGA hands its normalised keys over as that map (:class:`KeyMap`);
    ``attn v = (blockdiag(attn) W_v) x`` is one per-sample 1x1 conv of x, and the values
    handed over are the pair (:class:`ValueMap`), so ``attn2 (v2 + v1)`` is two such convs.
    Otherwise the L2 norms divide the d x d product ``q k^T`` instead of q and k.

    ``gram`` picks between those two fused forms where the Gram form applies: ``"auto"`` takes
    it where it costs fewer multiply-adds (:func:`gram_saving`; ``role`` says who reads this
    CGA's keys), ``"always"`` or ``"never"`` forces it.
    """

    def __init__(self, dim: int, heads: int, k: int = 1, mixer: str = "cgm", impl: str = "unfold",
                 fused: bool = False, groups: int = 4, gram: str = "auto", role: str = "alone"):
        super().__init__()
        if gram not in CGA_GRAM_CHOICES:
            raise ValueError(f"unknown gram choice {gram!r}; valid: {', '.join(CGA_GRAM_CHOICES)}")
        if role not in GRAM_ROLES:
            raise ValueError(f"unknown CGA role {role!r}; valid: {', '.join(GRAM_ROLES)}")
        self.heads = heads
        self.fused = fused
        self.gram, self.role = gram, role
        self.qkv = token_mixer(mixer, dim, 3 * dim, k, impl, groups)
        self.omega = nn.Parameter(torch.randn(heads, dim // heads, dim // heads) * 1e-3)

    def forward(self, x: torch.Tensor, k1: torch.Tensor | None = None, v1=None, return_kv: bool = True):
        if self.fused:
            return self._forward_fused(x, k1, v1, return_kv)
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in self.qkv(x).chunk(3, dim=1))
        if k1 is not None:
            k = k + k1
            v = v + v1
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.omega).softmax(dim=-1)
        return (attn @ v).reshape(b, c, h, w), k, v

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """B x C x H x W -> a B x heads x d x HW view (NCHW or channels-last alike)."""
        return t.flatten(2).unflatten(1, (self.heads, t.shape[1] // self.heads))

    def _forward_fused(self, x, k1, v1, return_kv):
        folded = isinstance(self.qkv, CGM) and self.qkv.k == 1
        if folded and (k1 is None or isinstance(k1, KeyMap)) and self._takes_gram(x, keys_given=k1 is not None):
            return self._forward_gram(x, k1, v1, return_kv)
        b, c, h, w = x.shape
        if folded:  # q and k as a conv; v stays a 1x1 kernel on x
            kernel = self.qkv.kernel(x)
            q, k = (self._heads(t) for t in modulated_conv(x, kernel[:, :2 * c], self.qkv.impl).chunk(2, dim=1))
            v = ValueMap(x, kernel[:, 2 * c:].flatten(2))
        else:
            q, k, v = (self._heads(t) for t in self.qkv(x).chunk(3, dim=1))
        if k1 is not None:
            k = k + (self._heads(k1.materialise(self.qkv.impl)) if isinstance(k1, KeyMap) else k1)
        # F.normalize divides by max(||.||, eps); dividing q k^T by the outer product of
        # the two norms is the same function without normalising the full q and k
        nq = _l2_norm(q).clamp_min(NORM_EPS)
        nk = _l2_norm(k).clamp_min(NORM_EPS)
        scores = (q @ k.transpose(-2, -1)) / (nq.unsqueeze(-1) * nk.unsqueeze(-2))
        attn = (scores * self.omega).softmax(dim=-1)
        if folded:
            out = v.apply(attn, self.qkv.impl)
            if v1 is not None:  # into the fresh conv output (its backward does not read it)
                out = out.add_(v1.apply(attn, self.qkv.impl) if isinstance(v1, ValueMap)
                               else self._attend(attn, v1, x))
        else:
            if v1 is not None:
                v = v + (self._heads(v1.materialise(self.qkv.impl)) if isinstance(v1, ValueMap) else v1)
            out = self._attend(attn, v, x)
        if not return_kv:
            return out, None, None
        if folded and v1 is not None:  # the summed values, materialised (the CFGT never asks)
            v = v.materialise(self.qkv.impl) + (v1.materialise(self.qkv.impl) if isinstance(v1, ValueMap) else
                                                v1.reshape(b, c, h, w))
        return out, k / nk.unsqueeze(-1), v

    def _takes_gram(self, x: torch.Tensor, keys_given: bool) -> bool:
        if self.gram != "auto":
            return self.gram == "always"
        c = x.shape[1]
        role = "second" if keys_given else ("alone" if self.role == "second" else self.role)
        return gram_saving(x.shape[-2] * x.shape[-1], c, c // self.heads, role) > 0

    def _forward_gram(self, x, k1, v1, return_kv):
        """The folded CGA from Gram matrices: q and k are never materialised.

        With ``q = Wq x`` and ``k = Wk x`` per pixel (the gated 1x1 kernel), ``q k^T = Wq G Wk^T``
        and ``||q_i||^2 = (Wq G Wq^T)_ii`` with ``G = x x^T`` summed over pixels (C x C). With
        eq. (17)'s ``k = Wk x + K1 x1`` (``K1``: the first CGA's normalised key kernel) the
        same holds on the stacked input ``[x; x1]`` and its 2C x 2C Gram matrix.
        """
        b, c = x.shape[:2]
        kernel = self.qkv.kernel(x).flatten(2)                          # B x 3C x C
        wq, wk, wv = kernel.split(c, dim=1)
        g = gram(x, x)
        if k1 is None:  # q and k of x alone
            g_q, g_k, k_of = g, g, wk
        else:           # q of x; k of the stacked [x; x1]
            g21 = gram(x, k1.x)
            g_q = torch.cat([g, g21], dim=2)                            # B x C x 2C
            g_k = torch.cat([g_q, torch.cat([g21.transpose(1, 2), k1.gram], dim=2)], dim=1)
            k_of = torch.cat([wk, k1.normalised_kernel()], dim=2)
        qg, kg = wq @ g_q, k_of @ g_k                                   # B x C x (C or 2C)
        nq = norm_from_quadratic(qg[..., :c], wq)
        nk = norm_from_quadratic(kg, k_of)
        heads, d = self.heads, c // self.heads
        products = qg.view(b, heads, d, -1) @ k_of.view(b, heads, d, -1).transpose(-2, -1)   # per head: q k^T
        scores = products / (nq.view(b, heads, d, 1) * nk.view(b, heads, 1, d))
        attn = (scores * self.omega).softmax(dim=-1)
        v = ValueMap(x, wv)
        out = v.apply(attn, self.qkv.impl)
        if v1 is not None:  # into the fresh conv output (its backward does not read it)
            out = out.add_(v1.apply(attn, self.qkv.impl))
        if not return_kv:
            return out, None, None
        if k1 is None:
            return out, KeyMap(x, wk, nk, g), v
        k = (modulated_conv(x, wk[..., None, None], self.qkv.impl) + k1.materialise(self.qkv.impl))
        v = v.materialise(self.qkv.impl) + v1.materialise(self.qkv.impl)
        return out, self._heads(k) / nk.view(b, heads, d, 1), v

    @staticmethod
    def _attend(attn: torch.Tensor, v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``attn v`` back to B x C x H x W, in the memory layout of ``like``."""
        out = (attn @ v).view(like.shape)
        if like.is_contiguous(memory_format=torch.channels_last):
            out = out.contiguous(memory_format=torch.channels_last)
        return out


def _l2_norm(t: torch.Tensor) -> torch.Tensor:
    """L2 norm over the last (pixel) axis as the root of a sum of squares: on a channels-last view
    ``torch.linalg.vector_norm`` reduces that strided axis slowly (docs/performance.md)."""
    return t.square().sum(dim=-1).sqrt()


class IGP(nn.Module):
    """Interactive Guidance Perceptron (eq. 16, Fig. 5): CGM (k = 1), GELU, CGM (k = 3).

    As the official code builds it; ``kernels`` sets the two CGMs' k ((1, 1): no cross receptive
    fields, Table VII). The paper (section III-C.2) says only that the IGP connects a
    CGM with k = 3 and one with k = 1 "using a residual structure"; the code has no residual inside
    the IGP (the one around it is eq. (16)'s, in :class:`CFGT`).

    ``fused``: the GELU runs inside the first CGM's convolution where it can (the same function).
    """

    def __init__(self, dim: int, mixer: str = "cgm", impl: str = "unfold", groups: int = 4, fused: bool = False,
                 kernels: tuple[int, int] = (1, 3)):
        super().__init__()
        self.fc1 = token_mixer(mixer, dim, dim, kernels[0], impl, groups)
        self.fc2 = token_mixer(mixer, dim, dim, kernels[1], impl, groups)
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused and isinstance(self.fc1, CGM):
            return self.fc2(self.fc1(x, act="gelu"))
        return self.fc2(F.gelu(self.fc1(x)))


class CFGT(nn.Module):
    """Cross-receptive Field Guide Transformer (eq. 14-16), post-norm on each branch.

    ``y, k1, v1 = CGA1(x)``; ``x = x + LN1(y)``; ``x = x + LN2(CGA2(x, k1, v1))``;
    ``x = x + LN3(IGP(x))``. ``kv_share=False`` drops the K/V hand-over (Table VII).
    ``kernels``: the CGM sizes of the two CGAs' qkv projections. The paper's CGAs use different
    k (its "Cross"); the official code passes (1, 3) but builds both at k = 1, which the
    presets follow (``cga_kernels=(1, 1)``, REFERENCE.md). ``igp_kernels``: the IGP's two CGMs.
    ``fused`` selects the fewer-pass CGAs and adds each branch in place into its
    LayerNorm's output (the same function).
    """

    def __init__(self, dim: int, heads: int, kernels: tuple[int, int] = (1, 1), kv_share: bool = True,
                 mixer: str = "cgm", impl: str = "unfold", fused: bool = False, gconv_groups: int = 4,
                 gram: str = "auto", igp_kernels: tuple[int, int] = (1, 3)):
        super().__init__()
        self.kv_share = kv_share
        self.fused = fused
        second_folds = mixer == "cgm" and kernels[1] == 1   # can take the Gram form with the keys handed over
        roles = (("pair" if second_folds else "keys"), "second") if kv_share else ("alone", "alone")
        self.cga1 = CGA(dim, heads, kernels[0], mixer, impl, fused, gconv_groups, gram, roles[0])
        self.norm1 = LayerNorm2d(dim)
        self.cga2 = CGA(dim, heads, kernels[1], mixer, impl, fused, gconv_groups, gram, roles[1])
        self.norm2 = LayerNorm2d(dim)
        self.igp = IGP(dim, mixer, impl, gconv_groups, fused, igp_kernels)
        self.norm3 = LayerNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, k1, v1 = self.cga1(x)
        x = self._residual(x, self.norm1(y))
        y = self.cga2(x, k1, v1, return_kv=False)[0] if self.kv_share else self.cga2(x, return_kv=False)[0]
        if self.fused:  # release the first CGA's keys and values before the IGP (the official code holds them)
            del k1, v1
        x = self._residual(x, self.norm2(y))
        return self._residual(x, self.norm3(self.igp(x)))

    def _residual(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        # fused: into the LayerNorm's fresh output (its backward reads the input, not the output)
        # where both share a layout; else in x's layout, so an NCHW batch is not copied later
        if self.fused and branch.is_contiguous(memory_format=torch.channels_last) == \
                x.is_contiguous(memory_format=torch.channels_last):
            return branch.add_(x)
        return x + branch
