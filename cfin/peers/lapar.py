"""LAPAR: Li, Zhou, Qi, Jiang, Lu, Jia, "LAPAR: Linearly-Assembled Pixel-Adaptive Regression
Network for Single Image Super-resolution and Beyond", NeurIPS 2020.

Shapes, widths and key names read from dvlab-research/Simple-SR @ 08c71e9
(``exps/LAPAR_A_x{2,3,4}/network.py``: ``ComponentDecConv``, ``Network``;
``exps/LAPAR_A_x{2,3,4}/config.py``: LAPAR-A is ``N_CHANNEL=32, RES_BLOCK=4, N_WEIGHT=72,
KERNEL_SIZE=5``; ``utils/modules/lightWeightNet.py``: ``Scale``, ``AWRU``, ``AWMS``, ``LFB``,
``WeightNet``). One network per scale, differing in the upsampler's width (32 s^2).

Serves Table I's LAPAR-A rows (x2, x3, x4). Trained on RGB in [0, 1] (DIV2K + Flickr2K); the
network here takes and returns [0, 255] and converts at its ends. Its convs are weight-normed
(``torch.nn.utils.weight_norm`` in the public code: keys ``weight_g``, ``weight_v``; ours
``parametrizations.weight.original0/1``, mapped by :func:`weight_norm_key`).

The filter dictionary. LAPAR assembles each output pixel from 72 fixed 5 x 5 filters (Gaussian
and difference-of-Gaussian, Eq. 5) applied to the bicubic upsampling, weighted per pixel by
the network. The public code reads them from ``kernel/kernel_72_k5.pkl`` (a pickled float64
numpy array, 1 x 72 x 25) into the buffer ``decom_conv.weight`` (72 x 1 x 5 x 5). That file is
data of the method and is not part of this project: the buffer is built here with a
placeholder (every filter the 5 x 5 identity, so the network starts as a per-pixel gain on the
bicubic image). A released ``LAPAR_A_x{s}.pth`` carries the real dictionary in its state_dict
(the buffer is saved with it); to train from scratch, read the file with
:func:`load_filter_dictionary` into ``decom_conv.weight``.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cfin.errors import CFINError
from cfin.models.common import Scale, conv
from cfin.peers.common import RGB_MEAN_DIV2K, from_trained_range, to_trained_range, weight_norm_key
from cfin.peers.registry import PeerSpec, Source

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct

N_CHANNEL = 32
RES_BLOCK = 4
N_WEIGHT = 72  # filters in the dictionary
KERNEL_SIZE = 5


class AWRU(nn.Module):
    """Adaptive weighted residual unit (from AWSRN): weight-normed conv, ReLU, weight-normed conv,
    scaled by ``res_scale``, plus the input scaled by ``x_scale``.

    Args:
        nf: width.
        kernel_size: conv kernel size.
    """

    def __init__(self, nf: int, kernel_size: int = 3):
        super().__init__()
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)
        self.body = nn.Sequential(conv(nf, nf, kernel_size, wn=True), nn.ReLU(inplace=True),
                                  conv(nf, nf, kernel_size, wn=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_scale(self.body(x)) + self.x_scale(x)


class LFB(nn.Module):
    """Local fusion block (Fig. 3): four AWRUs in a chain, a 3x3 weight-normed reduction of their
    concatenated outputs, scaled, plus the scaled input.

    Args:
        nf: width.
    """

    def __init__(self, nf: int):
        super().__init__()
        self.b0, self.b1, self.b2, self.b3 = (AWRU(nf, 3) for _ in range(4))
        self.reduction = conv(nf * 4, nf, 3, wn=True)
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs, h = [], x
        for block in (self.b0, self.b1, self.b2, self.b3):
            h = block(h)
            outs.append(h)
        return self.res_scale(self.reduction(torch.cat(outs, dim=1))) + self.x_scale(x)


class AWMS(nn.Module):
    """Adaptive weighted multi-scale tail (from AWSRN): 3x3 and 5x5 weight-normed convs, each
    scaled (0.5), summed, a 3x3 fusion with ReLU, and a 3x3 conv to the ``out_chl`` filter weights.

    Args:
        nf: width.
        out_chl: output channels (the dictionary size, 72).
    """

    def __init__(self, nf: int, out_chl: int):
        super().__init__()
        self.tail_k3 = conv(nf, nf, 3, wn=True)
        self.tail_k5 = conv(nf, nf, 5, wn=True)
        self.scale_k3 = Scale(0.5)
        self.scale_k5 = Scale(0.5)
        self.fuse = conv(nf, nf, 3, wn=True)
        self.act = nn.ReLU(inplace=True)
        self.w_conv = conv(nf, out_chl, 3, wn=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_conv(self.act(self.fuse(self.scale_k3(self.tail_k3(x)) + self.scale_k5(self.tail_k5(x)))))


class WeightNet(nn.Module):
    """The network that predicts the per-pixel filter weights Phi (Fig. 2): mean subtraction, a 3x3
    head with ReLU, the LFBs, a sub-pixel upsampler (conv to nf s^2, ReLU, shuffle), the AWMS tail.

    Args:
        scale: upscaling factor.
        in_chl: input channels (3).
        nf: width (32 for LAPAR-A).
        n_block: LFBs (4).
        out_chl: filter weights per pixel (72).
    """

    def __init__(self, scale: int, in_chl: int = 3, nf: int = N_CHANNEL, n_block: int = RES_BLOCK,
                 out_chl: int = N_WEIGHT):
        super().__init__()
        self.register_buffer("rgb_mean", torch.tensor(RGB_MEAN_DIV2K).view(1, 3, 1, 1))
        self.head = nn.Sequential(conv(in_chl, nf, 3, wn=True), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*(LFB(nf) for _ in range(n_block)))
        self.up = nn.Sequential(conv(nf, nf * scale ** 2, 3, wn=True), nn.ReLU(inplace=True), nn.PixelShuffle(scale))
        self.tail = AWMS(nf, out_chl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.up(self.body(self.head(x - self.rgb_mean))))


class ComponentDecConv(nn.Module):
    """The filter dictionary D as a fixed convolution (Eq. 5): one channel in, one output per filter,
    no padding (the caller pads). ``weight`` is a buffer (module docstring: a placeholder until the
    method's dictionary is loaded).

    Args:
        n_filters: L (72).
        k_size: filter size (5).
    """

    def __init__(self, n_filters: int = N_WEIGHT, k_size: int = KERNEL_SIZE):
        super().__init__()
        identity = torch.zeros(n_filters, 1, k_size, k_size)
        identity[:, :, k_size // 2, k_size // 2] = 1.0
        self.register_buffer("weight", identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight)


class LAPAR(nn.Module):
    """LAPAR (Fig. 2, Eq. 4): each SR pixel is the linear combination, with the WeightNet's
    per-pixel weights, of the dictionary's filters applied to the bicubic upsampling (torch's
    bicubic, as the public code; reflect padding of k // 2).

    Args:
        scale: upscaling factor.
        nf: WeightNet width (32 for LAPAR-A).
        n_block: LFBs (4).
        n_weight: dictionary size (72).
        k_size: filter size (5).
    """

    trained_range = 1.0

    def __init__(self, scale: int, nf: int = N_CHANNEL, n_block: int = RES_BLOCK, n_weight: int = N_WEIGHT,
                 k_size: int = KERNEL_SIZE):
        super().__init__()
        self.s, self.k_size = scale, k_size
        self.w_conv = WeightNet(scale, 3, nf, n_block, n_weight)
        self.decom_conv = ComponentDecConv(n_weight, k_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = to_trained_range(x, self.trained_range)
        b, c, h, w = x.shape
        bic = F.interpolate(x, scale_factor=self.s, mode="bicubic", align_corners=False)
        pad = self.k_size // 2
        padded = F.pad(bic, (pad, pad, pad, pad), mode="reflect")
        components = self.decom_conv(padded.flatten(0, 1).unsqueeze(1)).view(b, c, -1, self.s * h, self.s * w)
        weights = self.w_conv(x).view(b, 1, -1, self.s * h, self.s * w)
        return from_trained_range((weights * components).sum(dim=2), self.trained_range)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else (no code from the file runs)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a pickled numpy array")
        return getattr(np, name) if module == "numpy" else _reconstruct


def load_filter_dictionary(path: str | Path, n_filters: int = N_WEIGHT, k_size: int = KERNEL_SIZE) -> torch.Tensor:
    """LAPAR's filter dictionary (Simple-SR's ``kernel/kernel_72_k5.pkl``) as the ``decom_conv.weight``
    buffer, ``n_filters x 1 x k x k`` float32. Only a pickled numpy array is accepted."""
    from cfin.paths import existing_file

    path = existing_file(path, "LAPAR filter dictionary")
    try:
        with open(path, "rb") as f:
            array = _ArrayUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise CFINError(f"{path} is not a pickled numpy array (LAPAR's kernel_{n_filters}_k{k_size}.pkl): "
                        f"{e}") from None
    if not isinstance(array, np.ndarray) or array.size != n_filters * k_size * k_size:
        got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
        raise CFINError(f"{path}: expected {n_filters} filters of {k_size} x {k_size} "
                        f"({n_filters * k_size * k_size} values), got {got}")
    return torch.from_numpy(np.asarray(array, dtype=np.float32).copy()).view(n_filters, 1, k_size, k_size)


SPECS = (
    PeerSpec(
        name="lapar-a",
        title="LAPAR-A",
        paper="Li, Zhou, Qi, Jiang, Lu, Jia, LAPAR: Linearly-Assembled Pixel-Adaptive Regression Network for "
              "Single Image Super-resolution and Beyond, NeurIPS 2020",
        source=Source("dvlab-research/Simple-SR", "08c71e9", (
            "exps/LAPAR_A_x4/network.py", "exps/LAPAR_A_x4/config.py", "utils/modules/lightWeightNet.py")),
        scales=(2, 3, 4),
        builder=LAPAR,
        trained_range=LAPAR.trained_range,
        tables=("I",),
        printed_counting="Params: 547,866 / 594,266 / 659,226 under every convention vs printed 548K / 594K / "
                         "659K. Multi-Adds not reproduced exactly: conv weights x output pixels (the torchsummaryX "
                         "rule with plain convs) 170.30G / 113.57G / 93.71G; + biases (thop's rule) 170.76G / "
                         "113.88G / 93.97G; + ReLUs (ptflops when weight-normed convs were still nn.Conv2d) "
                         "170.95G / 113.99G / 94.06G, vs printed 171.0G / 114.0G / 94.0G (x3 at exactly 1280 x 720 "
                         "output, LR 102,400 pixels). None includes the dictionary conv (5,400 MACs per HR pixel, "
                         "4.98G), which full counts: 175.28G / 118.36G (LR 240 x 426) / 98.69G. The torchsummaryX "
                         "rule on the weight-normed tree charges g + v once: 0.0005G.",
        key_map=weight_norm_key,
        notes="decom_conv.weight (72 x 1 x 5 x 5) is a buffer: a placeholder (identity filters) until the "
              "method's dictionary is loaded, from a released checkpoint's state_dict or with "
              "load_filter_dictionary(kernel_72_k5.pkl); the file is not part of this project.",
    ),
)
