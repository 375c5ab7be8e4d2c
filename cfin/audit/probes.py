"""Measuring a model from the outside: forward hooks, call counts, gradients."""
from __future__ import annotations

from collections import Counter
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def capture_inputs(model: nn.Module, kind: type):
    """Record the first positional input of every call of each ``kind`` submodule.

    Yields a dict ``name -> [input tensor per call]``, filled while the block runs.
    """
    seen: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, kind):
            def hook(_m, args, name=name):
                seen.setdefault(name, []).append(args[0].detach())
            handles.append(mod.register_forward_pre_hook(hook))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def call_counts(model: nn.Module, x: torch.Tensor, kinds: tuple[type, ...]) -> dict[str, int]:
    """How many times each submodule of the given types is called in one forward on ``x``."""
    counts: Counter[str] = Counter()
    handles = [mod.register_forward_pre_hook(lambda _m, _a, name=name: counts.update([name]))
               for name, mod in model.named_modules() if isinstance(mod, kinds)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return dict(counts)


def gradients(model: nn.Module, x: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor | None]:
    """``name -> .grad`` of every parameter after one backward of a random projection of the output.

    A random projection (not the mean) keeps every output pixel's gradient non-zero.
    """
    model.zero_grad(set_to_none=True)
    out = model(x)
    g = torch.Generator(device="cpu").manual_seed(seed)
    (out * torch.randn(out.shape, generator=g).to(out.device)).sum().backward()
    return {n: (p.grad.detach().clone() if p.grad is not None else None) for n, p in model.named_parameters()}


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / ||a||`` (Frobenius)."""
    return float((a - b).norm() / a.norm().clamp_min(1e-30))


def replace_forward(model: nn.Module, kind: type, fn) -> nn.Module:
    """A deep copy of ``model`` whose ``kind`` submodules compute ``fn(module, *args, **kwargs)`` instead."""
    import copy
    import types

    model = copy.deepcopy(model)
    for mod in model.modules():
        if isinstance(mod, kind):
            mod.forward = types.MethodType(lambda self, *args, **kwargs: fn(self, *args, **kwargs), mod)
    return model
