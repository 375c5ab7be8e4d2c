"""Pieces several peers share: the pixel-range adapter and EDSR's mean shift."""
from __future__ import annotations

import re

import torch
from torch import nn

RGB_MEAN_DIV2K = (0.4488, 0.4371, 0.4040)  # EDSR's DIV2K mean, in [0, 1]


def to_trained_range(x: torch.Tensor, trained_range: float) -> torch.Tensor:
    """RGB in [0, 255] -> the range a network was trained in (1.0 or 255.0)."""
    return x if trained_range == 255.0 else x * (trained_range / 255.0)


def from_trained_range(y: torch.Tensor, trained_range: float) -> torch.Tensor:
    """A network's output in its trained range -> RGB in [0, 255]."""
    return y if trained_range == 255.0 else y * (255.0 / trained_range)


class MeanShift(nn.Conv2d):
    """EDSR's mean shift: a frozen 1x1 conv adding ``sign x rgb_range x mean`` per channel.

    Its ``weight`` (identity) and ``bias`` are registered parameters, as in EDSR-style code, so
    released checkpoints that carry them load strictly; ``requires_grad`` is off.
    """

    def __init__(self, rgb_range: float = 255.0, mean=RGB_MEAN_DIV2K, std=(1.0, 1.0, 1.0), sign: int = -1):
        super().__init__(3, 3, kernel_size=1)
        std_t = torch.tensor(std)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1) / std_t.view(3, 1, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(mean) / std_t)
        for p in self.parameters():
            p.requires_grad = False


_WEIGHT_NORM_KEYS = ((re.compile(r"\.weight_g$"), ".parametrizations.weight.original0"),
                     (re.compile(r"\.weight_v$"), ".parametrizations.weight.original1"))


def weight_norm_key(key: str) -> str:
    """A ``torch.nn.utils.weight_norm`` key (``.weight_g`` / ``.weight_v``, what public code of the
    time saved) -> the key of ``torch.nn.utils.parametrizations.weight_norm``, which the peers use."""
    for pattern, repl in _WEIGHT_NORM_KEYS:
        key = pattern.sub(repl, key)
    return key
