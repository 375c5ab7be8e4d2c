"""Context Guided MaxConv (CGM, Fig. 5), a context-gated convolution (Lin et al. [24]).

The per-sample convolution lives in :func:`modulated_conv` alone, so that a faster kernel
replaces it in one place.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.config import CGM_IMPLS
from cfin.models.postops import activation, conv_act


def context_pool(x: torch.Tensor, k: int, impl: str = "unfold") -> torch.Tensor:
    """Adaptive max pooling of x (B x C x H x W) to k x k: the CGM's context ``p``.

    ``unfold`` (the official layer) calls ``F.adaptive_max_pool2d``; ``conv`` computes the
    same maxima off the CPU as two reductions (rows, then columns, over the same bins:
    max is separable and exact), since CUDA's adaptive max pool runs one thread per output
    value, each scanning its whole bin, slow where a bin is most of the image (timings:
    docs/performance.md). With gradients ATen's stays: its backward routes each bin's
    gradient to one maximum, ``amax``'s splits it among tied maxima.
    """
    if impl == "unfold" or x.device.type == "cpu" or x.requires_grad:
        return F.adaptive_max_pool2d(x, k)
    return separable_max_pool(x, k)


def separable_max_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    """``F.adaptive_max_pool2d(x, k)`` as row maxima then column maxima over the same bins."""
    h, w = x.shape[-2:]
    rows = torch.stack([x[:, :, lo:hi].amax(2) for lo, hi in _bins(h, k)], 2)        # B x C x k x W
    return torch.stack([rows[..., lo:hi].amax(-1) for lo, hi in _bins(w, k)], -1)    # B x C x k x k


def _bins(n: int, k: int) -> list[tuple[int, int]]:
    """Adaptive pooling's bins: [floor(i n / k), ceil((i + 1) n / k)) for i < k."""
    return [(i * n // k, -(-(i + 1) * n // k)) for i in range(k)]


def modulated_conv(x: torch.Tensor, kernel: torch.Tensor, impl: str = "unfold", act: str | None = None) -> torch.Tensor:
    """Convolve each sample of ``x`` (B x Cin x H x W) with its own kernel (B x Cout x Cin x k x k).

    Padding ``k // 2``, stride 1, no bias. ``unfold`` is the official computation (F.unfold
    then a batched matmul: it materialises B x Cin*k*k x H*W). ``conv`` computes the same
    function without that tensor: one sample is a plain ``F.conv2d`` (it keeps a
    channels-last layout); a batch is one grouped convolution with the batch folded into
    the groups, NCHW (on the CPU at k = 1 too). Off the CPU a batch at k = 1 is one batched
    matmul (:func:`per_sample_pointwise`), since cuDNN computes a grouped convolution's
    weight gradient with a launch per group, i.e. per sample (the measurements behind both
    choices: docs/performance.md; equality: ``tests/test_fast_path.py``, ``tests/test_cuda.py``).
    An activation ``act`` (relu, gelu, leaky_relu) follows, fused into the conv where
    :mod:`cfin.models.postops` can.
    """
    b, cin, h, w = x.shape
    cout, k = kernel.shape[1], kernel.shape[-1]
    if impl == "unfold":
        cols = F.unfold(x, k, padding=k // 2)                       # B x Cin*k*k x HW
        y = torch.matmul(kernel.reshape(b, cout, cin * k * k), cols).view(b, cout, h, w)
        return y if act is None else activation(y, act)
    if impl != "conv":
        raise ValueError(f"unknown modulated_conv impl {impl!r}; valid: {', '.join(CGM_IMPLS)}")
    pad = int(k) // 2   # an int: torch <= 2.7 (at least) takes no 0-d tensor padding, a jit trace's size
    if b == 1:
        return F.conv2d(x, kernel[0], padding=pad) if act is None else conv_act(x, kernel[0], None, act)
    if k == 1 and x.device.type != "cpu":
        y = per_sample_pointwise(x, kernel)
    else:
        y = F.conv2d(x.reshape(1, b * cin, h, w), kernel.reshape(b * cout, cin, k, k), padding=pad, groups=b)
        y = y.view(b, cout, h, w)
    return y if act is None else activation(y, act)


def per_sample_pointwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each sample of ``x`` (B x Cin x H x W) through its own 1x1 kernel (B x Cout x Cin x 1 x 1),
    as one batched matmul: ``kernel[b] @ x[b]`` over the pixels."""
    b, cin, h, w = x.shape
    return torch.bmm(kernel.reshape(b, -1, cin), x.reshape(b, cin, h * w)).view(b, -1, h, w)


class CGM(nn.Module):
    """Context Guided MaxConv: a k x k convolution whose kernel is gated per sample.

    ``p`` = adaptive max pool of x to k x k per channel; ``e = ce(p)`` (k^2 -> L,
    L = floor(k^2/2) + 1). Branch A: ``gd(relu(e))``, one k x k map per input channel.
    Branch B: the input channels in groups of 8, a shared ``ci`` (8 -> Cout/(Cin/8)) on
    ``relu(e)``, ReLU, ``gd2``: one k x k map per output channel. The kernel is
    ``sigmoid(A_i + B_o) * W`` (W: Cout x Cin x k x k), applied without bias, padding k//2.

    The official layer subclasses nn.Conv2d and registers an unused ``weight``, ``bias`` and
    ``bias_conv`` (its W is ``weight_conv``); this one holds only what the forward uses.
    """

    group = 8

    def __init__(self, in_ch: int, out_ch: int, k: int = 1, impl: str = "unfold"):
        super().__init__()
        if in_ch % self.group or out_ch % (in_ch // self.group):
            raise ValueError(f"CGM needs in_ch % 8 == 0 and out_ch % (in_ch/8) == 0, got {in_ch} -> {out_ch}")
        self.in_ch, self.out_ch, self.k, self.impl = in_ch, out_ch, k, impl
        latent = k * k // 2 + 1
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, k, k))
        self.ce = nn.Linear(k * k, latent, bias=False)
        self.ci = nn.Linear(self.group, out_ch // (in_ch // self.group), bias=False)
        self.gd = nn.Linear(latent, k * k, bias=False)
        self.gd2 = nn.Linear(latent, k * k, bias=False)
        nn.init.kaiming_normal_(self.weight)
        for lin in (self.ce, self.ci, self.gd, self.gd2):
            nn.init.trunc_normal_(lin.weight, std=0.02)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-sample gate sigmoid(A_i + B_o): B x Cout x Cin x k x k."""
        b, c = x.shape[:2]
        k = self.k
        e = F.relu(self.ce(context_pool(x, k, self.impl).reshape(b, c, k * k)))  # B x Cin x L
        a = self.gd(e)                                                            # B x Cin x k^2
        g = c // self.group
        o = self.ci(e.reshape(b, g, self.group, -1).transpose(2, 3))              # B x g x L x Cout/g
        o = self.gd2(F.relu(o.transpose(2, 3).reshape(b, self.out_ch, -1)))      # B x Cout x k^2
        return torch.sigmoid(a.view(b, 1, c, k, k) + o.view(b, self.out_ch, 1, k, k))

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """The per-sample kernel ``gate(x) * W``: B x Cout x Cin x k x k."""
        return self.gate(x) * self.weight

    def forward(self, x: torch.Tensor, act: str | None = None) -> torch.Tensor:
        """The CGM's output, followed by the activation ``act`` (see :func:`modulated_conv`)."""
        return modulated_conv(x, self.kernel(x), self.impl, act)

    def extra_repr(self) -> str:
        return f"{self.in_ch}, {self.out_ch}, k={self.k}, impl={self.impl}"
