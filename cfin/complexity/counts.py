"""The result type of every count, and the meta-device model every count runs on."""
from __future__ import annotations

import contextlib
import copy
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from cfin.config import CFINConfig
from cfin.errors import CFINError


@dataclass(frozen=True)
class ModuleCount:
    """One module's own share of a count (its children are rows of their own).

    Args:
        name: the module's path in our CFIN (``body.cfgts.3.igp.fc2``; ``""`` is the model).
        kind: its class name.
        calls: how many times the forward called it.
        params: parameters the convention charges to it (once, however often it is called).
        multi_adds: multiply-accumulates charged to it, summed over its calls.
    """

    name: str
    kind: str
    calls: int
    params: int
    multi_adds: int


@dataclass(frozen=True)
class Counts:
    """Params and Multi-Adds of one network under one convention.

    Args:
        convention: a key of :data:`cfin.complexity.conventions.CONVENTIONS`.
        label: that convention's label (what exactly was counted).
        input: the input shape ``(B, 3, H, W)``.
        params: total parameters under the convention.
        multi_adds: total multiply-accumulates (MACs) under the convention.
        per_module: each module's own share (empty where the tool gives none).
        skipped: operators or module types the tool left out (libraries only).
        notes: anything a reader must know to interpret the numbers.
        by_operator: MACs per operator kind, where the tool reports it.
    """

    convention: str
    label: str
    input: tuple[int, int, int, int]
    params: int
    multi_adds: int
    per_module: tuple[ModuleCount, ...] = ()
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    by_operator: dict[str, int] = field(default_factory=dict, compare=False)
    seconds: float = field(default=0.0, compare=False)

    def breakdown(self, depth: int | None = None, collapse_indices: bool = True) -> list[ModuleCount]:
        """Per-module rows, instances of a ModuleList merged (``cfgts.*``) and cut at ``depth``.

        ``depth`` counts path components (``body.cfgts.*`` is depth 3); None keeps every module.
        Rows keep the order in which the forward first reached them.
        """
        rows: dict[str, list] = {}
        for m in self.per_module:
            r = rows.setdefault(group_name(m.name, depth, collapse_indices), [[], 0, 0, 0])
            if m.kind not in r[0]:
                r[0].append(m.kind)
            r[1] += m.calls
            r[2] += m.params
            r[3] += m.multi_adds
        return [ModuleCount(n, "/".join(k), c, p, a) for n, (k, c, p, a) in rows.items()]

    def to_dict(self) -> dict:
        return {"params": self.params, "multi_adds": self.multi_adds, "label": self.label,
                "skipped": list(self.skipped), "notes": list(self.notes), "by_operator": dict(self.by_operator),
                "seconds": round(self.seconds, 3)}


def group_name(name: str, depth: int | None = None, collapse_indices: bool = True) -> str:
    """``body.cfgts.3.igp.fc2`` -> ``body.cfgts.*.igp.fc2`` (collapsed), cut to ``depth`` parts."""
    parts = name.split(".") if name else []
    if collapse_indices:
        parts = ["*" if re.fullmatch(r"\d+", p) else p for p in parts]
    if depth is not None:
        parts = parts[:depth]
    return ".".join(parts) or "(model)"


def _weight_norm_runs_on_meta() -> bool:
    v, g = torch.empty(2, 2, device="meta"), torch.empty(2, 1, device="meta")
    try:
        torch._weight_norm(v, g, 0)
        return True
    except (NotImplementedError, TypeError):  # torch 2.1: no meta kernel; 2.2: its meta kernel loses dim=0
        return False


def _shape_only_weight_norms(model: nn.Module) -> None:
    """Where torch cannot weight-norm on meta tensors, a weight-normed conv's weight is ``v``'s shape."""
    from torch.nn.utils.parametrizations import _WeightNorm

    for m in model.modules():
        if isinstance(m, _WeightNorm):
            m.forward = lambda weight_g, weight_v: torch.empty_like(weight_v)


def meta_model(model_or_config) -> tuple[nn.Module, CFINConfig | None]:
    """A copy of the network on the meta device, in eval mode: shapes without data or compute.

    Accepts a :class:`CFINConfig` (built directly on meta: no weights are ever allocated) or an
    ``nn.Module`` (deep-copied, then moved to meta; the original is untouched).
    """
    from cfin.models import CFIN

    if isinstance(model_or_config, CFINConfig):
        with torch.device("meta"):
            model, config = CFIN(model_or_config), model_or_config
    elif isinstance(model_or_config, nn.Module):
        model, config = copy.deepcopy(model_or_config).to("meta"), getattr(model_or_config, "config", None)
    else:
        raise CFINError(f"count needs a CFINConfig or an nn.Module, got {type(model_or_config).__name__}")
    if not _weight_norm_runs_on_meta():
        _shape_only_weight_norms(model)
    return model.eval(), config


def scale_of(model_or_config) -> int | None:
    """The upscaling factor of a CFINConfig, a CFIN (its ``.config``) or a peer network (its ``.scale``)."""
    if isinstance(model_or_config, CFINConfig):
        return model_or_config.scale
    config = getattr(model_or_config, "config", None)
    if isinstance(config, CFINConfig):
        return config.scale
    scale = getattr(model_or_config, "scale", None)
    return scale if isinstance(scale, int) and not isinstance(scale, bool) else None


def input_shape(model_or_config, lr_size, batch: int = 1) -> tuple[int, int, int, int]:
    """``(batch, 3, H, W)`` for the requested LR size (default: the paper's for the network's scale).

    ``model_or_config``: a CFINConfig, or a network carrying its scale (a CFIN, a peer); None
    where neither is known, which then needs an explicit ``lr_size``.
    """
    from cfin.complexity.conventions import check_lr_size, default_lr_size

    if not isinstance(batch, int) or batch < 1:
        raise CFINError(f"batch must be a positive int, got {batch!r}")
    scale = scale_of(model_or_config) if model_or_config is not None else None
    if lr_size is None:
        if scale is None:
            raise CFINError("a model without a CFINConfig or a scale needs an explicit lr_size (H, W)")
        lr_size = default_lr_size(scale)
    h, w = check_lr_size(lr_size, scale or 0)
    return batch, 3, h, w


def meta_forward(model: nn.Module, shape, hooks=(), mode=None) -> None:
    """One forward of ``model`` on a meta input of ``shape`` with forward ``hooks`` (pairs of module
    and hook) in place, and ``mode`` (a dispatch mode such as FlopCounterMode) entered; the hooks are
    removed afterwards, whatever happens: the one way every count runs a network."""
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_hook(hook))
        with torch.no_grad(), (mode if mode is not None else contextlib.nullcontext()):
            model(torch.empty(shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
