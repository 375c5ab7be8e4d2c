"""Inference latency on the device at hand: warm-up, then N timed forwards; median and spread.

GPU: each forward is timed with a pair of ``torch.cuda.Event`` (device time, synchronised after
each run; float32 with TF32 off). CPU: ``time.perf_counter`` around each forward; the thread count is part of the label.
Reported in milliseconds: median, interquartile range (q1, q3, iqr), min, max and mean, with
device, dtype, batch and input size. Inputs are random images in [0, rgb_range]; the model runs
in ``torch.inference_mode`` and eval mode (the official Gumbel mask still samples).
"""
from __future__ import annotations

import statistics
import time

import torch
from tqdm.auto import tqdm

from cfin.complexity.memory import build, random_input, resolve_dtype, rgb_range_of
from cfin.device import tf32_mode
from cfin.errors import CFINError


def summarize(times_ms: list[float]) -> dict:
    """Median, quartiles, IQR, min, max, mean of a list of timings (ms)."""
    if not times_ms:
        raise CFINError("no timed runs: runs must be at least 1")
    xs = sorted(times_ms)
    if len(xs) >= 2:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    else:
        q1 = q3 = xs[0]
    return {"median_ms": statistics.median(xs), "q1_ms": q1, "q3_ms": q3, "iqr_ms": q3 - q1,
            "min_ms": xs[0], "max_ms": xs[-1], "mean_ms": statistics.fmean(xs)}


def measure_latency(model_or_config, device: torch.device, lr_size=None, batch: int = 1, runs: int = 20,
                    warmup: int = 3, dtype: str = "float32", progress: bool = True) -> dict:
    """Time ``runs`` inference forwards after ``warmup`` untimed ones (module docstring).

    Args:
        model_or_config: a CFINConfig (random weights), a CFIN or a peer (:func:`cfin.peers.build`).
        device: a torch.device (see :func:`cfin.device.resolve_device`).
        lr_size: (H, W) of the LR input (default: the paper's 720p-output size for the scale).
        batch: images per forward.
        runs, warmup: timed and untimed forwards.
        dtype: ``float32``, ``float16`` or ``bfloat16``.
        progress: show a tqdm bar (with ETA) over the forwards.
    """
    from cfin.complexity.conventions import check_lr_size, default_lr_size

    for name, v, low in (("runs", runs, 1), ("warmup", warmup, 0), ("batch", batch, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise CFINError(f"{name} must be an int >= {low}, got {v!r}")
    if device.type not in ("cpu", "cuda"):
        raise CFINError(f"latency measurement supports cpu and cuda devices, got {device}")
    torch_dtype = resolve_dtype(dtype)
    from cfin.complexity.counts import scale_of

    scale = scale_of(model_or_config)
    if lr_size is None:
        if scale is None:
            raise CFINError("a model without a CFINConfig or a scale needs an explicit lr_size")
        lr_size = default_lr_size(scale)
    lr_size = check_lr_size(lr_size, scale or 0)
    model = build(model_or_config, device, torch_dtype).eval()
    x = random_input(lr_size, batch, device, torch_dtype, rgb_range_of(model_or_config))
    cuda = device.type == "cuda"
    times = []
    bar = tqdm(total=warmup + runs, desc="latency", unit="fwd", disable=not progress, leave=False)
    with torch.inference_mode(), tf32_mode(device, False):  # float32 means float32 (cfin.device.tf32_mode)
        for i in range(warmup + runs):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                stream = torch.cuda.current_stream(device)  # the device's, not the current device's
                start.record(stream)
                model(x)
                end.record(stream)
                torch.cuda.synchronize(device)
                elapsed = start.elapsed_time(end)
            else:
                t0 = time.perf_counter()
                model(x)
                elapsed = (time.perf_counter() - t0) * 1e3
            if i >= warmup:
                times.append(elapsed)
            bar.update(1)
    bar.close()
    result = summarize(times)
    result.update({"runs": runs, "warmup": warmup, "device": str(device), "dtype": dtype, "batch": batch,
                   "input": [batch, 3, *lr_size],
                   "timer": "torch.cuda.Event pairs" if cuda else
                            f"time.perf_counter, {torch.get_num_threads()} CPU threads"})
    return result
