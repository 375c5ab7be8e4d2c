"""One place that turns a ``--device`` string into a ``torch.device`` (CUDA when present), and
sets the float32 arithmetic a CUDA device runs."""
from __future__ import annotations

import contextlib
import re

import torch

from cfin.errors import CFINError

VALID_FORMS = ("cpu", "cuda", "cuda:N", "mps")


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """The device ``name`` names, checked; ``None`` or ``"auto"`` -> CUDA if available, else CPU.

    Valid forms: ``cpu``, ``cuda``, ``cuda:N`` (N an index below the number of GPUs), ``mps``.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(name).strip().lower()
    if name == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", name)
    if m:
        if not torch.cuda.is_available():
            raise CFINError(f"device {name!r} asked for but CUDA is not available "
                            f"(torch {torch.__version__}); use --device cpu")
        index = int(m[1] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise CFINError(f"device {name!r}: only {count} CUDA device(s), valid indices 0..{count - 1}")
        return torch.device("cuda", index)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise CFINError("device 'mps' asked for but MPS is not available; use --device cpu")
        return torch.device("mps")
    raise CFINError(f"unknown device {name!r}; valid forms: {', '.join(VALID_FORMS)}")


@contextlib.contextmanager
def tf32_mode(device: torch.device, on: bool):
    """TF32 for CUDA matmuls and cuDNN convolutions on or off inside, restored after; nothing
    elsewhere. PyTorch's default runs cuDNN float32 convolutions in TF32 (a 10-bit mantissa),
    which is not the float32 function: evaluation and training here turn it off unless asked."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
