"""A convolution and the activation after it in one oneDNN call (CPU inference only).

oneDNN applies an activation to each output tile while it is still in cache (a
"post-op"). PyTorch reaches this through ``torch.ops.mkldnn._convolution_pointwise``, the
op its inductor backend emits. It pays where the activation is costly, the exact (erf)
GELU after the IGP's first CGM (ATen's erf slows down on large inputs, oneDNN's does not);
a ReLU or an addition gains nothing measurable (docs/performance.md).
The op has no backward, so it is taken only where no gradient is needed, on float32 CPU
tensors; the same function in plain ops runs everywhere else, and wherever the installed
torch lacks the op.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cfin.models.common import records_grad

ACTIVATIONS = ("relu", "gelu", "leaky_relu")


def _pointwise_op():
    try:
        return torch.ops.mkldnn._convolution_pointwise.default
    except (AttributeError, RuntimeError):
        return None


_POINTWISE = _pointwise_op()


def fusable(x: torch.Tensor, *params: torch.Tensor | None) -> bool:
    """Whether the fused oneDNN call may run: CPU, float32, and no gradient to take."""
    if _POINTWISE is None or x.device.type != "cpu" or x.dtype != torch.float32 \
            or not torch.backends.mkldnn.is_available():
        return False
    return not records_grad(x, *params)


def activation(y: torch.Tensor, act: str, slope: float = 0.01) -> torch.Tensor:
    """``act(y)``, in place where the op allows it (for a fresh conv output, whose backward
    does not read it): relu, gelu (exact erf form) or leaky_relu with ``slope``."""
    if act == "relu":
        return F.relu_(y)
    if act == "leaky_relu":
        return F.leaky_relu_(y, slope)
    if act == "gelu":
        return F.gelu(y)
    raise ValueError(f"unknown activation {act!r}; valid: {', '.join(ACTIVATIONS)}")


def conv_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: str,
             slope: float = 0.01) -> torch.Tensor:
    """``act(conv2d(x, weight, bias))``, stride 1, padding ``k // 2`` (see :func:`activation`)."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; valid: {', '.join(ACTIVATIONS)}")
    pad = int(weight.shape[-1]) // 2   # an int, as in modulated_conv (a jit trace gives sizes as tensors)
    if fusable(x, weight, bias):
        scalars, algorithm = ([slope], "") if act == "leaky_relu" else ([], "none" if act == "gelu" else "")
        return _POINTWISE(x, weight, bias, [pad, pad], [1, 1], [1, 1], 1, act, scalars, algorithm)
    return activation(F.conv2d(x, weight, bias, padding=pad), act, slope)
