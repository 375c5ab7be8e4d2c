"""The paper's equations computed on the released model's own weights, for side-by-side measurement.

Each function takes a submodule of :class:`cfin.CFIN` (which follows the official code) and
computes what the paper's equation says instead, reusing that module's parameters. The
model files stay untouched: these are functional re-readings, not layers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cfin.models.cfgt import CGA
from cfin.models.ciam import CIAM, LRELU_SLOPE, RIFU


def rifu_mask(rifu: RIFU, h: torch.Tensor) -> torch.Tensor:
    """The mask RIFU multiplies into X (eq. 6-8), as the module's own mask computes it."""
    return rifu.mask(h) if rifu.mask is not None else torch.ones_like(h[:, :1])


def rifu_eq9(rifu: RIFU, x: torch.Tensor) -> torch.Tensor:
    """Eq. (5)-(9): ``X = lrelu(conv(x))``, ``y = f_CA(conv(mask * X)) + x``.

    No activation after the second conv and a plain residual sum; the code adds a
    LeakyReLU there and learnable scalars on both paths.
    """
    h = F.leaky_relu(rifu.conv1(x), LRELU_SLOPE)
    h = h * rifu_mask(rifu, h)
    return rifu.eca(rifu.conv2(h)) + x


def ciam_eq10_12(ciam: CIAM, x: torch.Tensor) -> torch.Tensor:
    """Eq. (10)-(12) with the module's RIFUs and branch convs.

    ``x1 = RIFU(x)`` (10); ``x2 = sconv(deconv(x)) * sigmoid(RIFU(x1))`` (11);
    ``x3 = RIFU(x2 + x1) + x`` (12). The code instead gates RIFU2's output with
    ``sigmoid(sconv(lrelu(deconv(x))) + x)``, has no dense ``+ x1`` before the third RIFU,
    and scales the output residual with learnable scalars.
    """
    x1 = ciam.rifu1(x)
    x2 = ciam.down(ciam.up(x)) * torch.sigmoid(ciam.rifu2(x1))
    return ciam.rifu3(x2 + x1) + x


def ciam_branch(ciam: CIAM, x: torch.Tensor) -> torch.Tensor:
    """The code's up/down-sampling branch: ``sconv_s2(lrelu(deconv_2x2_s2(x)))``."""
    return ciam.down(F.leaky_relu(ciam.up(x), LRELU_SLOPE))


def ciam_branch_1x1(ciam: CIAM, x: torch.Tensor) -> torch.Tensor:
    """The same branch as two 1x1 convolutions at input resolution.

    A stride-2 1x1 conv samples the even rows and columns of the transposed conv's output,
    and output pixel (2i, 2j) of a 2x2 stride-2 transposed conv is input pixel (i, j) times
    kernel tap (0, 0): only that tap is ever read.
    """
    w_up = ciam.up.weight[:, :, 0, 0].t()[:, :, None, None]   # Cin x Cout -> Cout x Cin x 1 x 1
    h = F.leaky_relu(F.conv2d(x, w_up, ciam.up.bias), LRELU_SLOPE)
    return F.conv2d(h, ciam.down.weight, ciam.down.bias)


def cga_attention(cga: CGA, x: torch.Tensor, k1: torch.Tensor | None = None, v1: torch.Tensor | None = None,
                  omega: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """CGA's forward written out, returning its intermediates.

    ``omega`` replaces the learnable heads x d x d tensor (e.g. by a scalar: eq. 13's
    ``1/omega``). Returns ``out``, ``q``/``k`` (raw, after adding ``k1``), ``qn``/``kn``
    (L2-normalised over pixels), ``v`` and the ``logits`` before the softmax.
    """
    b, c, h, w = x.shape
    q, k, v = (t.reshape(b, cga.heads, c // cga.heads, h * w) for t in cga.qkv(x).chunk(3, dim=1))
    if k1 is not None:
        k = k + k1
        v = v + v1
    qn, kn = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    logits = (qn @ kn.transpose(-2, -1)) * (cga.omega if omega is None else omega)
    out = (logits.softmax(dim=-1) @ v).reshape(b, c, h, w)
    return {"out": out, "q": q, "k": k, "qn": qn, "kn": kn, "v": v, "logits": logits}
