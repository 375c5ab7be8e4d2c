"""Validation during training: mean PSNR on the Y channel over held-out images.

The protocol of the paper's tables (ITU-R BT.601 Y, ``scale`` border pixels cropped) on
whole images, the output quantised to uint8 by :mod:`cfin.metrics` as a saved image would
be. Random draws inside the model (the Gumbel mask at inference) come from a generator
seeded per image, outside the training stream, so validating never changes what training
does.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from cfin.train import distributed as D
from cfin.train.sampler import derive_seed

VALIDATION_STREAM = 2  # first key of derive_seed for validation draws


def as_pair(item) -> tuple[torch.Tensor, torch.Tensor]:
    """(lr, hr) as 3 x H x W float tensors in [0, 255].

    ``item`` is a ``dict(lr=, hr=)`` or an ``(lr, hr)`` pair of 3 x H x W tensors (a batch
    of them works too), or an object with ``lr`` and ``hr`` H x W x 3 arrays such as
    :class:`cfin.data.Sample`.
    """
    if isinstance(item, dict):
        lr, hr = item["lr"], item["hr"]
    elif isinstance(item, (tuple, list)):
        lr, hr = item
    else:
        lr, hr = (torch.from_numpy(np.ascontiguousarray(np.asarray(a).transpose(2, 0, 1))) for a in (item.lr, item.hr))
    return lr.float(), hr.float()


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).cpu().numpy().astype(np.float64)


@torch.no_grad()
def validate(model: nn.Module, val_set: Sequence, device: torch.device, seed: int,
             max_images: int | None = None, info: D.DistInfo = D.DistInfo()) -> float:
    """Mean Y-channel PSNR (crop border = scale) of ``model`` over ``val_set``.

    Items are ``dict(lr=, hr=)`` or ``(lr, hr)``: 3 x H x W tensors in [0, 255]. Under
    ``torchrun`` each process takes every ``world_size``-th image and the sums are
    combined, so every process returns the same value.
    """
    from cfin.metrics import psnr

    n = len(val_set) if max_images is None else min(max_images, len(val_set))
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    devices = [device] if device.type == "cuda" else []
    for i in range(info.rank, n, info.world_size):
        lr, hr = as_pair(val_set[i])
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(derive_seed(VALIDATION_STREAM, seed, i))
            sr = model(lr.unsqueeze(0).to(device))[0]
        scale = sr.shape[-1] // lr.shape[-1]
        hr = hr[:, : sr.shape[-2], : sr.shape[-1]]
        total[0] += float(psnr(_hwc(sr), _hwc(hr), crop_border=scale, test_y_channel=True))
        total[1] += 1
    model.train(was_training)
    D.all_reduce_sum(info, total)
    return float(total[0] / total[1])
