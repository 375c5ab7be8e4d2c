"""The full count: what the network really costs.

Params: every parameter of every module the forward calls, once (a weight-normed conv's
``g`` and ``v``, the CGM's W and the CGA's omega included). Multi-Adds: every multiply-accumulate
of every convolution (transposed ones at input resolution: each input pixel scatters one
k x k x Cin x Cout product), linear layer and matrix product, per call: the CGM's unfold-matmul
(or grouped conv), the attention's ``q k^T`` and ``attn v`` and the CGM's small Linears
included. Elementwise work (activations, norms, the gate, softmax) is not a multiply-add of a
product and is not counted.

Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (FLOPs = 2 x MACs) on meta
tensors, so nothing is computed. Our ECA mixes three channels by hand (``unfold`` + sum), which
is a 1-D conv in the official code; its ``C x 3`` MACs per sample are added here.
x4 at 180 x 320: 3,382,410 params, 230.99G (REFERENCE.md: 231.0G; x3 409.2G, x2 920.3G).
"""
from __future__ import annotations

import time

import torch
import torch.nn.utils.parametrize as parametrize
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cfin.complexity.conventions import CONVENTIONS
from cfin.complexity.counts import Counts, ModuleCount, input_shape, meta_forward, meta_model
from cfin.models.ciam import ECA


def _eca_macs(module: ECA, inputs, output) -> int:
    return output.shape[0] * module.weight.numel()


# Modules whose products FlopCounterMode cannot see (done elementwise): MACs per call.
EXTRA_MACS = {ECA: _eca_macs}


def _owner_names(model: nn.Module) -> dict[str, str]:
    """Module name -> the name to charge it to (a parametrization's inside -> the parametrized module)."""
    owners = {}
    parametrized = [n for n, m in model.named_modules() if parametrize.is_parametrized(m)]
    for name, _ in model.named_modules():
        owner = next((p for p in parametrized if name.startswith(p + ".")), name)
        owners[name] = owner
    return owners


def count_full(model_or_config, lr_size=None, batch: int = 1) -> Counts:
    """Params used and all multiply-accumulates (module docstring), on the meta device."""
    t0 = time.perf_counter()
    model, config = meta_model(model_or_config)
    shape = input_shape(config or model, lr_size, batch)
    owners = _owner_names(model)
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    extra: dict[str, int] = {}

    def make_hook(name, fn):
        def hook(module, inputs, output):
            calls[name] = calls.get(name, 0) + 1
            if fn is not None:
                extra[name] = extra.get(name, 0) + int(fn(module, inputs, output))
        return hook

    # torch < 2.4 (no ModuleTracker) sees only the modules it is given; newer warns when given them
    mods = None if hasattr(torch.utils.flop_counter, "ModuleTracker") else model
    counter = FlopCounterMode(mods, display=False, depth=None)
    meta_forward(model, shape, [(m, make_hook(name, EXTRA_MACS.get(type(m)))) for name, m in modules.items()],
                 counter)

    # FlopCounterMode charges an op to every enclosing module: own = total - direct children.
    totals = {_strip_root(k): sum(v.values()) for k, v in counter.get_flop_counts().items() if k != "Global"}
    rows: dict[str, list] = {}
    for name, m in modules.items():
        if name not in calls:
            continue  # never called: its parameters are not used
        child_total = sum(totals.get(c, 0) for c in _nearest_called(name, m, calls))
        own_macs = (totals.get(name, 0) - child_total) // 2 + extra.get(name, 0)
        own_params = sum(p.numel() for p in m.parameters(recurse=False))
        owner = owners[name]
        if own_macs or own_params:
            row = rows.setdefault(owner, [type(modules[owner]).__name__.removeprefix("Parametrized"), 0, 0, 0])
            row[2] += own_params
            row[3] += own_macs
    for owner, row in rows.items():
        row[1] = calls.get(owner, 0)
    per_module = tuple(ModuleCount(n, k, c, p, a) for n, (k, c, p, a) in rows.items())
    by_op = {str(op).removeprefix("aten."): int(v) // 2 for op, v in counter.get_flop_counts()["Global"].items()}
    if extra:
        by_op["elementwise 1-D conv (ECA)"] = sum(extra.values())
    return Counts("full", CONVENTIONS["full"].label, shape,
                  params=sum(m.params for m in per_module),
                  multi_adds=sum(m.multi_adds for m in per_module),
                  per_module=per_module, by_operator=by_op,
                  seconds=time.perf_counter() - t0)


def _nearest_called(name: str, module: nn.Module, calls: dict[str, int]):
    """Names of the closest called descendants (through uncalled containers like nn.ModuleList)."""
    for child_name, child in module.named_children():
        full = f"{name}.{child_name}" if name else child_name
        if full in calls:
            yield full
        else:
            yield from _nearest_called(full, child, calls)


def _strip_root(key: str) -> str:
    """FlopCounterMode names modules ``<RootClass>.a.b``: drop the root's class name."""
    return key.split(".", 1)[1] if "." in key else ""
