"""The Gram form of the fast path's CGA (:class:`cfin.models.cfgt.CGA`, ``fused=True``).

With a 1x1 CGM, every product and norm the attention needs comes from the C x C Gram matrix
``x x^T`` of the CGA's input (:func:`gram`, on the fastest kernel at hand); the keys and values
handed to eq. (17)'s second CGA stay maps of that input (:class:`KeyMap`, :class:`ValueMap`);
:func:`gram_saving` says where the form costs fewer multiply-adds than materialising q and k.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from cfin.models.cgm import modulated_conv
from cfin.models.common import records_grad

NORM_EPS = 1e-12  # F.normalize's default
GRAM_ROLES = ("alone", "pair", "keys", "second")


def gram_saving(pixels: int, c: int, d: int, role: str) -> int:
    """Multiply-adds per image that a folded CGA saves in the Gram form against the direct
    one (negative: it costs more); C channels, head width d. Backward scales both alike.

    Per pixel, the direct form materialises q and k (2 C^2), multiplies them (C d) and
    applies the values (C^2); the Gram form computes ``x x^T`` (C^2) and applies the values.
    Per image, the Gram form adds C x C algebra that does not grow with the image: ``Wq G``
    and ``Wk G`` (2 C^3) and the heads' products (C^2 d); for eq. 17's second CGA, on the
    stacked 2C x 2C Gram matrix, 6 C^3 and 2 C^2 d, while the handed-over keys then need no
    1x1 conv (C^2 per pixel) and the cross Gram takes one (C^2). ``role``: ``"alone"``, a
    CGA whose keys no other reads; ``"second"``, eq. 17's CGA given the first's keys as a
    map; ``"pair"``, the first CGA of a pair whose second can take the Gram form too (the
    saving of both in it against both direct: the second takes it only after the first);
    ``"keys"``, the first CGA of a pair whose second materialises the handed-over keys.
    """
    first, second = 2 * c ** 3 + c * c * d, 6 * c ** 3 + 2 * c * c * d
    per_pixel, cost = {"alone": (c * c + c * d, first), "second": (c * c + c * d, second),
                       "pair": (c * c + 2 * c * d, first + second), "keys": (c * d, first)}[role]
    return per_pixel * pixels - cost


class ValueMap(NamedTuple):
    """CGA values kept as a map, not a tensor: ``v = kernel x`` at every pixel.

    ``x``: B x C x H x W; ``kernel``: B x C x C (the CGM's gated 1x1 kernel for v).
    ``apply(attn)`` is ``attn v`` as one 1x1 conv of x with ``blockdiag(attn) @ kernel``.
    """

    x: torch.Tensor
    kernel: torch.Tensor

    def apply(self, attn: torch.Tensor, impl: str) -> torch.Tensor:
        """``attn v``."""
        b, heads, d, _ = attn.shape
        mixed = (attn @ self.kernel.view(b, heads, d, -1)).view(b, heads * d, -1)   # blockdiag(attn) @ kernel
        return modulated_conv(self.x, mixed[..., None, None], impl)

    def materialise(self, impl: str) -> torch.Tensor:
        return modulated_conv(self.x, self.kernel[..., None, None], impl)


class KeyMap(NamedTuple):
    """The first CGA's normalised keys kept as a map: ``k = (kernel x) / norm`` at every pixel.

    ``x``: B x C x H x W; ``kernel``: B x C x C (the gated 1x1 key kernel); ``norm``: B x C,
    each key's L2 norm over the pixels (clamped as F.normalize does); ``gram``: ``x x^T``.
    """

    x: torch.Tensor
    kernel: torch.Tensor
    norm: torch.Tensor
    gram: torch.Tensor

    def normalised_kernel(self) -> torch.Tensor:
        return self.kernel / self.norm.unsqueeze(-1)

    def materialise(self, impl: str) -> torch.Tensor:
        return modulated_conv(self.x, self.normalised_kernel()[..., None, None], impl)


def gram(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a b^T`` summed over pixels: B x C x H x W, B x C' x H x W -> B x C x C'.

    One image on the CPU goes through oneDNN, whose convolutions outrun the MKL matmul that
    serves batches and other devices: in NCHW as a convolution whose kernel is the whole
    image (the planes of ``a`` as a batch, those of ``b`` as filters). Channels-last without
    gradients it is the weight gradient of a 1x1 convolution (``a`` as the output gradient,
    ``b`` as the input), which oneDNN reduces over the pixels straight from that layout,
    faster than the transposed convolution below, which the autograd path keeps (each
    operand a pixels x channels matrix, the pixels as its input channels; it reorders both
    operands first). Timings: docs/performance.md.
    """
    if a.shape[0] == 1 and a.device.type == "cpu":
        h, w = a.shape[2:]
        if a.is_contiguous() and b.is_contiguous():
            return F.conv2d(a.view(-1, 1, h, w), b.view(-1, 1, h, w)).view(1, a.shape[1], b.shape[1])
        if a.is_contiguous(memory_format=torch.channels_last) and b.is_contiguous(memory_format=torch.channels_last):
            if _weight_gradient_gram(a, b):
                weight = a.new_empty(a.shape[1], b.shape[1], 1, 1)
                return torch.ops.aten.convolution_backward(a, b, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0],
                                                           1, [False, True, False])[1].view(1, a.shape[1], b.shape[1])
            pa, pb = a.permute(0, 2, 3, 1).reshape(h * w, -1), b.permute(0, 2, 3, 1).reshape(h * w, -1)
            g = F.conv_transpose2d(pa.view(1, h * w, -1, 1), pb.view(h * w, -1, 1, 1))   # 1 x C' x C x 1: b a^T
            return g.view(1, b.shape[1], a.shape[1]).transpose(1, 2)
    return a.flatten(2) @ b.flatten(2).transpose(1, 2)


def _weight_gradient_gram(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether :func:`gram` may call the conv weight gradient: float32 operands, no gradient
    to take through it, and no autocast (which casts the transposed convolution's operands
    to one dtype, where the weight gradient would get a mix)."""
    return a.dtype == b.dtype == torch.float32 and not _autocast_on(a.device.type) \
        and not records_grad(a, b)


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def norm_from_quadratic(wg: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``max(sqrt((W G W^T)_ii), eps)`` from ``W G`` and ``W``: the L2 norms of ``W x`` over pixels."""
    return (wg * w).sum(dim=-1).clamp_min(NORM_EPS ** 2).sqrt()
