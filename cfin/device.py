"""One place that turns a ``--device`` string into a ``torch.device`` (CUDA when present)."""
from __future__ import annotations

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
