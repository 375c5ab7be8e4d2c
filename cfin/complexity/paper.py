"""The paper's counting rule: torchsummaryX on the official module tree, emulated on ours.

The paper's Params and Multi-Adds (Tables I, II, V-X) are what ``torchsummaryX.summary``
printed for the official IVIPLab/CFIN model at 1280 x 720 output. torchsummaryX (1.3) puts a
forward hook on every module without children and, for each call of a hooked module:

* params: the ``numel`` of all its parameters, but only the first time the module is called
  (a later call of the same module is marked "(recursive)" and its params are dropped);
* Multi-Adds: for a parameter named exactly ``weight``: ``weight.numel() * prod(out.shape[2:])``
  when the class name contains ``"Conv"``, else ``weight.numel()`` once; for any other parameter
  whose name contains ``"weight"`` (``weight_g``, ``weight_v``): its ``numel()`` once; biases and
  everything else: nothing. Multi-Adds are summed over every call.

Applied to the official tree this gives (x4, LR 180 x 320, HW = 57,600 pixels):

* the CGM (``to_qkv``, ``fc1``, ``fc2``) subclasses nn.Conv2d but has children (``ce``, ``ci``,
  ``gd``, ``gd2``: nn.Linear), so it is not hooked: its W (``weight_conv``), and its unused
  ``weight``, ``bias``, ``bias_conv``, are not counted; only the four Linears are, each
  ``weight.numel()`` params and Multi-Adds. Per CFGT that leaves out 2 x 62,208 + 20,736 +
  186,624 = 331,776 W params (2,654,208 for the 8 CFGTs) and the whole modulated convolution;
* the CGA's omega (official ``attn.weight``, heads x d x d) sits on a module with children:
  not counted (29,376 params at x2 and x4, 34,560 at x3), and neither are the attention matmuls;
* a weight-normed conv (``torch.nn.utils.weight_norm``: parameters ``weight_g``, ``weight_v``,
  ``bias``; ``weight`` is a plain attribute) is charged ``weight_g + weight_v`` Multi-Adds once
  per call instead of once per output pixel: RIFU's two 3x3 convs and the squeeze (and the
  expand at x2) cost almost nothing;
* the mean shifts are EDSR's ``MeanShift(nn.Conv2d)``: the class name lacks "Conv", so each
  costs 9 Multi-Adds; LayerNorm (``WithBias_LayerNorm``) costs its 144 weights;
* the CIAM (and everything in it) runs twice per forward (the loop): params once, Multi-Adds
  twice. Its transposed conv is charged ``weight.numel()`` x its 2H x 2W output: 4x the
  multiply-adds a 2x2 stride-2 transposed conv does (each input pixel meets the kernel once),
  22.65G of the 31.18G at x4, where the full count has 5.66G.

Params = used params (3,382,410 at x4) - 2,654,208 (W) - 29,376 (omega) = 698,826; likewise
675,938 at x2 and 680,640 at x3: exactly the printed numbers. At x4 the Multi-Adds are
``541,344 x H x W + 1,227,922``: per LR pixel 8 CIAM calls x (48x64x2x2 x 4 + 64x48 + 3 x 48x3)
= 421,248, the expands 8 x 6,912, the body/tail convs 3 x 20,736 and the head/second-path convs
2 x 1,296; once per call the weight-normed convs' g + v (8 x 3 x 2 x 20,784 + 8 x 6,960), the
ECAs (24 x 144 x 48), LayerNorms (24 x 144), Linears (8 x 656) and mean shifts (2 x 9). At
180 x 320 that is 31,182,642,322 = 31.18G (x2 116.85G, x3 53.49G): REFERENCE.md to the last
printed digit (tests/test_complexity.py checks the closed form at three sizes).

Our module tree differs from the official one, so each of our modules is shown to the rule as
the official module it stands for (:func:`official_view`):

* a weight-normed conv (ours: ``torch.nn.utils.parametrizations.weight_norm``, which adds a
  ``parametrizations`` child) is one leaf with ``weight_g``, ``weight_v`` (and ``bias``);
* our ECA (one module with a C x 1 x 3 weight) is the official ``CA.conv``: a leaf whose class
  name contains "Conv" and whose output runs along the C channels, so it is charged
  ``weight.numel() x C`` per call. The official output length is not recorded; taking 1 instead
  of C would move x4 by 144 x 47 x 24 calls = 162K Multi-Adds (0.0005%);
* everything else maps one to one (CGM -> CGM with Linear children, CGA -> Attention with
  children, RIFUMask -> MaskPredictor with its 1x1 conv, LayerNorm2d -> WithBias_LayerNorm,
  Scale -> Scale, MeanShift -> MeanShift, nn.Sequential containers alike).

Ablation variants need no special case: their blocks (cfin/models/blocks) are plain convs,
linears and norms, counted by the same rule; a module that is never called (e.g. an unused
branch) is never hooked, as in torchsummaryX.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.utils.parametrize as parametrize
from torch import nn

from cfin.complexity.conventions import CONVENTIONS
from cfin.complexity.counts import Counts, ModuleCount, input_shape, meta_forward, meta_model
from cfin.models.ciam import ECA

# Our class -> the official class name torchsummaryX saw (only where the names differ in a way
# the rule reads: whether "Conv" is in it). A peer's class says it itself, as a class attribute
# ``official_class = "..."`` (the class name in the peer's public code).
OFFICIAL_CLASS = {ECA: "Conv1d"}


def official_view(module: nn.Module) -> tuple[bool, str, dict[str, int]] | None:
    """How torchsummaryX would see ``module`` in the official tree.

    Returns ``(hooked, class_name, {parameter name: numel})``, or None for a module that is
    part of another module's view (the inside of a weight-norm parametrization).
    """
    if parametrize.is_parametrized(module):
        params = {}
        for name, p in module.named_parameters():
            if name.startswith("parametrizations.weight.original"):
                name = {"0": "weight_g", "1": "weight_v"}[name[-1]]
            params[name] = p.numel()
        return True, type(module).__name__.removeprefix("Parametrized"), params
    cls = OFFICIAL_CLASS.get(type(module)) or getattr(type(module), "official_class", None) or type(module).__name__
    params = {n: p.numel() for n, p in module.named_parameters(recurse=False)}
    return len(module._modules) == 0, cls, params


def official_output_positions(module: nn.Module, output: torch.Tensor) -> int:
    """``prod(out.shape[2:])`` of the official module's output (the ECA's runs over channels)."""
    if isinstance(module, ECA):
        return module.weight.shape[0]
    return math.prod(output.shape[2:])


def rule_multi_adds(cls: str, params: dict[str, int], positions: int) -> int:
    """torchsummaryX's Multi-Adds of one call of a hooked module."""
    macs = 0
    for name, numel in params.items():
        if name == "weight":
            macs += numel * positions if "Conv" in cls else numel
        elif "weight" in name:
            macs += numel
    return macs


def _hooked_modules(model: nn.Module):
    """(name, module, class, params) for each module the rule hooks, skipping parametrization internals."""
    inside = set()
    for name, m in model.named_modules():
        if any(name.startswith(p + ".") for p in inside):
            continue
        hooked, cls, params = official_view(m)
        if parametrize.is_parametrized(m):
            inside.add(name)
        if hooked:
            yield name, m, cls, params


def count_paper(model_or_config, lr_size=None, batch: int = 1) -> Counts:
    """Params and Multi-Adds under the paper's rule (module docstring), on the meta device."""
    t0 = time.perf_counter()
    model, config = meta_model(model_or_config)
    shape = input_shape(config or model, lr_size, batch)
    rows: dict[str, list] = {}

    def make_hook(name, cls, params):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            row = rows.setdefault(name, [cls, 0, sum(params.values()), 0])
            row[1] += 1
            row[3] += rule_multi_adds(cls, params, official_output_positions(module, out))
        return hook

    # torchsummaryX shows a parameter-free leaf as "-": it adds nothing
    meta_forward(model, shape, [(m, make_hook(name, cls, params))
                                for name, m, cls, params in _hooked_modules(model) if params])
    per_module = tuple(ModuleCount(n, k, c, p, a) for n, (k, c, p, a) in rows.items())
    notes = (("CGM kernels (W), the modulated convolution, CGA omega and the attention matmuls are not counted; "
              "weight-normed convs are charged their weights once per call",) if config is not None
             else unseen_notes(model))
    return Counts("paper", CONVENTIONS["paper"].label, shape,
                  params=sum(m.params for m in per_module),
                  multi_adds=sum(m.multi_adds for m in per_module),
                  per_module=per_module, notes=notes,
                  seconds=time.perf_counter() - t0)


def unseen_notes(model: nn.Module) -> tuple[str, ...]:
    """What the rule cannot see in any network: parameters held by a module with children (never
    hooked), and every functional product (matmuls and convolutions outside a hooked leaf)."""
    hidden = {}
    for name, m in model.named_modules():
        if m._modules and not parametrize.is_parametrized(m):
            n = sum(p.numel() for p in m.parameters(recurse=False))
            if n:
                hidden[type(m).__name__] = hidden.get(type(m).__name__, 0) + n
    notes = []
    if hidden:
        notes.append("parameters of modules with children are not counted (torchsummaryX hooks leaves only): "
                     + ", ".join(f"{k} {v:,}" for k, v in sorted(hidden.items(), key=lambda kv: -kv[1])))
    notes.append("operations outside hooked leaf modules (functional matmuls, attention, F.conv2d) are not counted")
    return tuple(notes)
