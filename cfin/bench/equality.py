"""Whether the paths compute the same function: each against the faithful one.

The outputs' largest absolute difference (0-255 scale; target :data:`~cfin.bench.spec.OUT_ATOL`)
and, for training, the gradients' relative difference (target
:data:`~cfin.bench.spec.GRAD_RTOL`); beside them ``float32_noise``, the same differences for
the faithful path against itself with its convolutions from ATen's own kernels (oneDNN or
cuDNN off).
"""
from __future__ import annotations

import contextlib
import warnings

import torch
import torch.nn.functional as F

from cfin.bench.calls import arithmetic
from cfin.bench.spec import GRAD_RTOL, OUT_ATOL, Variant


def compare(paths: list[Variant], models: dict, run: dict, x, y, train: bool, seed: int = 0) -> dict:
    """Each path against the faithful one on the same input and the same random draws.

    Inference: the largest absolute output difference. Training: also the relative
    difference of all parameter gradients of one L1 step (no optimizer step taken).
    The faithful entry gets ``float32_noise``: the same differences between the faithful
    path and itself with its convolutions from another float32 implementation
    (:func:`other_conv_kernels`), a yardstick for how far rounding alone moves them.
    """
    results, ref = {}, None
    for p in paths:
        got = _one_pass(p, models[p.name], run[p.name], x, y, train, seed)
        if ref is None:
            ref = got
            with other_conv_kernels(x.device) as method:
                noise = differences(_one_pass(p, models[p.name], run[p.name], x, y, train, seed), ref)
            results[p.name] = {"float32_noise": {**noise, "method": f"the faithful path with {method}"}}
        else:
            entry = differences(got, ref)
            entry["equal"] = (entry["max_abs_diff"] <= OUT_ATOL
                              and (not train or entry["grad_rel_diff"] <= GRAD_RTOL))
            results[p.name] = entry
    return results


@contextlib.contextmanager
def other_conv_kernels(device: torch.device):
    """Convolutions by another float32 implementation inside: ATen's own kernels instead of
    oneDNN (CPU) or cuDNN (CUDA); yields what it switched."""
    if device.type == "cuda":
        with torch.backends.cudnn.flags(enabled=False):
            yield "cuDNN off (ATen's CUDA convolutions)"
        return
    with warnings.catch_warnings():  # the flag's setter warns about oneDNN TF32 on Intel GPUs
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield "oneDNN off (ATen's CPU convolutions)"


def _one_pass(path: Variant, model, runner, x, y, train: bool, seed: int):
    """One forward (and, training, one L1 backward) from ``seed``: output and gradients."""
    model.train(train)
    model.zero_grad(set_to_none=True)
    with torch.random.fork_rng(devices=[x.device.index or 0] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        with torch.set_grad_enabled(train), arithmetic(path, x.device):
            out = runner(x).float()
    grads = None
    if train:
        F.l1_loss(out, y).backward()
        grads = [q.grad.detach().clone() if q.grad is not None else torch.zeros_like(q) for q in model.parameters()]
        model.zero_grad(set_to_none=True)
    return out.detach(), grads


def differences(got: tuple, ref: tuple) -> dict:
    """Largest absolute output difference of two (output, gradients or None) passes and, with
    gradients (lists of tensors in the same order), the norm of their difference over the norm
    of ``ref``'s. ``tests/numerics.py`` measures float32 noise with it."""
    (out, grads), (ref_out, ref_grads) = got, ref
    entry = {"max_abs_diff": float((out - ref_out).abs().max())}
    if grads is not None:
        diff = torch.sqrt(sum((g - r).double().square().sum() for g, r in zip(grads, ref_grads)))
        norm = torch.sqrt(sum(r.double().square().sum() for r in ref_grads))
        entry["grad_rel_diff"] = float(diff / norm)
    return entry
