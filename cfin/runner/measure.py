"""A row's complexity under the counting conventions of :mod:`cfin.complexity`, for records and reports.

Counts are a pure function of the config and the input size, so they are cached per process.
``--complexity-only`` and the committed reports use the conventions that run on meta tensors
(:data:`REPORT_CONVENTIONS`); a training run records every convention.
"""
from __future__ import annotations

import json
from functools import lru_cache

from cfin.complexity import CONVENTIONS, count
from cfin.config import CFINConfig

ALL_CONVENTIONS = tuple(name for name, c in CONVENTIONS.items() if not c.peers_only)  # what a CFIN record holds
# --complexity-only and the committed reports: every convention that runs on meta tensors
# (paper rule, full, ptflops): a fraction of a second each. fvcore traces real tensors at 720p
# (about a minute a model on a CPU) and is in training records only.
REPORT_CONVENTIONS = tuple(name for name in ALL_CONVENTIONS if not CONVENTIONS[name].needs_data)


@lru_cache(maxsize=256)
def _count(config_json: str, convention: str) -> dict:
    config = CFINConfig.from_dict(json.loads(config_json))
    c = count(config, convention=convention)
    d = c.to_dict()
    d.pop("seconds", None)  # timing is not part of the count (keeps reports deterministic)
    d["input"] = list(c.input)
    return d


def complexity(config: CFINConfig, conventions=REPORT_CONVENTIONS) -> dict:
    """``{convention: {params, multi_adds, label, input, skipped, notes}}`` at the paper's input size
    (the LR whose output is 1280 x 720)."""
    key = json.dumps(config.to_dict(), sort_keys=True)
    return {name: dict(_count(key, name)) for name in conventions}


@lru_cache(maxsize=256)
def _peer_count(name: str, scale: int, convention: str) -> dict:
    import torch

    from cfin.peers import build

    with torch.device("meta"):
        model = build(name, scale)
    c = count(model, convention=convention)
    d = c.to_dict()
    d.pop("seconds", None)
    d["input"] = list(c.input)
    return d


def peer_complexity(name: str, scale: int, conventions=REPORT_CONVENTIONS) -> dict:
    """:func:`complexity` of a rebuilt peer (:mod:`cfin.peers`), with its own counting rule (``own``)
    where it has one."""
    from cfin.complexity.conventions import applies
    from cfin.peers import spec

    if spec(name).own_count is not None and "own" not in conventions:
        conventions = (*conventions, "own")
    probe = type("Peer", (), {"peer": spec(name).name})()  # applies() reads the name only
    return {c: dict(_peer_count(spec(name).name, scale, c)) for c in conventions if applies(c, probe)}


MIB = 2 ** 20


def memory(config: CFINConfig, device, batch: int, patch: int) -> dict:
    """Peak memory of one training step at the run's batch and patch size (the paper's memory
    column is a training figure: batch 16 of 48 x 48 at the paper budget).

    ``peak_mb``: on CUDA the allocator's peak over the step (weights, Adam state, activations),
    as the paper's GPU memory; on CPU the resident-set peak of the step above the process's
    baseline, measured in a fresh process (:func:`cfin.complexity.memory.measure_memory`).
    """
    from cfin.complexity.memory import measure_memory

    m = measure_memory(config, device, mode="training", lr_size=(patch, patch), batch=batch)
    cuda = device.type == "cuda"
    peak = m["peak_bytes"] if cuda else m["call_bytes"]
    what = "allocator peak" if cuda else "peak RSS above the process baseline"
    return {"peak_mb": round(peak / MIB, 1), "condition": f"memory: {what} of one training step, batch {batch} "
            f"of {patch}x{patch} LR patches, {device} {m['dtype']}", "raw": m}


# CPU latency is timed on a small input (a 720p forward of CFIN takes seconds on a CPU core).
CPU_LATENCY_LR = (64, 64)


def latency(model, device, progress: bool = False) -> dict:
    """Median inference time of one forward: at the paper's 720p-output input on CUDA (as its
    Time column), at a 64 x 64 LR input on CPU (:func:`cfin.complexity.latency.measure_latency`)."""
    from cfin.complexity.latency import measure_latency

    cuda = device.type == "cuda"
    lr_size = None if cuda else CPU_LATENCY_LR
    runs, warmup = (20, 3) if cuda else (5, 1)
    t = measure_latency(model, device, lr_size=lr_size, runs=runs, warmup=warmup, progress=progress)
    b, c, h, w = t["input"]
    return {"seconds": round(t["median_ms"] / 1e3, 6),
            "condition": f"time: median of {runs} forwards at {b}x{c}x{h}x{w} LR, {device} {t['dtype']} "
                         f"({t['timer']})", "raw": t}


def memory_latency(model, config: CFINConfig, device, recipe) -> dict:
    """``{"memory": ..., "latency": ...}`` for a record (see :func:`memory`, :func:`latency`)."""
    return {"memory": memory(config, device, recipe.batch_size, recipe.patch_size),
            "latency": latency(model, device)}


def training_step_seconds(config: CFINConfig, recipe, device, impl: str = "faithful", steps: int = 3,
                          warmup: int = 1) -> float:
    """Median seconds of one training step (forward, the recipe's loss, backward, Adam) at the
    recipe's batch and patch on ``device``, random inputs: what ``run_all.py --dry-run`` multiplies
    by the recipe's iterations for a training's cost."""
    import time

    import torch

    from cfin.models import CFIN
    from cfin.train.trainer import LOSS_FUNCTIONS, build_optimizer

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        model = CFIN(config.with_impl(impl)).to(device).train()
        optimizer = build_optimizer(model, recipe)
        p, s = recipe.patch_size, config.scale
        x = torch.rand(recipe.batch_size, 3, p, p, device=device) * 255
        y = torch.rand(recipe.batch_size, 3, p * s, p * s, device=device) * 255
        times = []
        for _ in range(warmup + steps):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            loss = LOSS_FUNCTIONS[recipe.loss](model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
    return sorted(times[warmup:])[len(times[warmup:]) // 2]
