"""Honest complexity: the paper's Params / Multi-Adds reproduced, and what CFIN really costs.

``count(model_or_config, lr_size=None, convention="paper")`` is the one entry point for counts:

* ``paper``: the torchsummaryX rule as it applied to the official module tree
  (:mod:`cfin.complexity.paper`): x4 698,826 / 31.18G at 320x180;
* ``full``: every used parameter and every multiply-add (:mod:`cfin.complexity.full`):
  x4 3,382,410 / 231.0G;
* ``fvcore``, ``ptflops``, ``ptflops_aten``: what those libraries report on our model, with the
  operators they skipped (:mod:`cfin.complexity.libraries`).

Memory and latency on a device are in :mod:`cfin.complexity.memory` and
:mod:`cfin.complexity.latency`; :mod:`cfin.complexity.report` puts everything side by side.
Conventions, default sizes and the paper's printed numbers are pinned in
:mod:`cfin.complexity.conventions`.
"""
from __future__ import annotations

import torch

from cfin.complexity.conventions import (CONVENTIONS, PAPER_PRINTED, Convention, convention, default_lr_size,
                                         resolve_lr_size)
from cfin.complexity.counts import Counts, ModuleCount


def counted_form(model_or_config):
    """What is counted for ``model_or_config``: a CFIN computed another way than the official one
    (the fast path's switches, :data:`cfin.config.COMPUTE_FIELDS`) is counted as its faithful
    config, since its parameters and the function's multiply-adds are the same; the rewrites
    (folded convs, the Gram form) are how it runs, not what it is. Anything else as given."""
    from cfin.config import COMPUTE_FIELDS, CFINConfig

    config = model_or_config if isinstance(model_or_config, CFINConfig) else getattr(model_or_config, "config", None)
    if not isinstance(config, CFINConfig):
        return model_or_config
    defaults = CFINConfig()
    faithful = config.replace(**{name: getattr(defaults, name) for name in COMPUTE_FIELDS})
    return model_or_config if faithful == config else faithful


def count(model_or_config, lr_size=None, convention: str = "paper", batch: int = 1) -> Counts:
    """Params and Multi-Adds (MACs) of a CFIN variant or a peer network under one convention.

    Args:
        model_or_config: a :class:`cfin.CFINConfig` (any variant; nothing is allocated) or an
            ``nn.Module`` (copied to the meta device; needs ``lr_size`` unless it has ``.config`` or,
            as a peer from :func:`cfin.peers.build` has, ``.scale``).
        lr_size: ``(H, W)`` or ``"HxW"`` of the LR input; default: the paper's size for the
            config's scale (output 1280 x 720).
        convention: ``paper``, ``full``, ``fvcore``, ``ptflops``, ``ptflops_aten``, or ``own`` (a peer's
            own counting rule, where it has one).
        batch: input batch size (the paper rule ignores it, as torchsummaryX does).

    ``paper``, ``full`` and the ptflops ones run on meta tensors (seconds at 720p); ``fvcore``
    traces the model on real CPU tensors (about a minute at 720p x4 on two cores). The fast
    path's switches count as the official computation (:func:`counted_form`).
    """
    from cfin.complexity.conventions import convention as _check

    _check(convention)
    model_or_config = counted_form(model_or_config)
    if convention == "fvcore":  # a jit trace refuses cached parametrizations
        return _count(model_or_config, lr_size, convention, batch)
    # a weight-normed conv's weight is the same function of g and v at every call: computed once per count
    # (nothing here counts its elementwise work), not once per call of the module (FDIWN: 817 calls)
    with torch.nn.utils.parametrize.cached():
        return _count(model_or_config, lr_size, convention, batch)


def _count(model_or_config, lr_size, convention: str, batch: int) -> Counts:
    if convention == "paper":
        from cfin.complexity.paper import count_paper

        return count_paper(model_or_config, lr_size, batch)
    if convention == "full":
        from cfin.complexity.full import count_full

        return count_full(model_or_config, lr_size, batch)
    if convention == "own":
        from cfin.complexity.own import count_own

        return count_own(model_or_config, lr_size, batch)
    from cfin.complexity.libraries import count_library

    return count_library(model_or_config, lr_size, convention, batch)


__all__ = ["count", "Counts", "ModuleCount", "CONVENTIONS", "Convention", "convention", "PAPER_PRINTED",
           "default_lr_size", "resolve_lr_size"]
