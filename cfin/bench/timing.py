"""Timing: one call, the paths in turns, and a summary of the seconds.

Each timed call is one inference forward or one training step; after their warm-up the paths
take turns call by call, so that anything else the machine does slows both alike. On CUDA a
call is timed with CUDA events around it, on the CPU with ``time.perf_counter``.

On CUDA the host's time to issue a call (until it returns, before the synchronisation) is kept
beside the GPU's: a call whose issue takes as long as its events is bound by the host launching
its kernels (or synchronises inside), one whose issue takes far less is bound by the GPU.
"""
from __future__ import annotations

import statistics
import time

import torch
from tqdm.auto import tqdm


def timed(fn, device: torch.device, issued: list | None = None) -> float:
    """Seconds of one call of ``fn`` (CUDA events around it on a GPU: on ``device``'s stream, as
    ``Event.record()`` alone would take the current device's). On CUDA the host's seconds until
    ``fn`` returned are appended to ``issued``, when given."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        stream = torch.cuda.current_stream(device)
        start.record(stream)
        t0 = time.perf_counter()
        fn()
        host_s = time.perf_counter() - t0
        end.record(stream)
        torch.cuda.synchronize(device)
        if issued is not None:
            issued.append(host_s)
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def summarize(times_s: list[float]) -> dict:
    """Median, quartiles, IQR, min and max of a list of seconds."""
    xs = sorted(times_s)
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else (xs[0],) * 3
    return {"median_s": statistics.median(xs), "q1_s": q1, "q3_s": q3, "iqr_s": q3 - q1,
            "min_s": xs[0], "max_s": xs[-1], "runs": len(xs)}


def time_paths(calls: dict, runs: int, warmup: int, device: torch.device, progress: bool = True,
               probe=None, issued: dict | None = None) -> tuple[dict, list]:
    """Warm each call up, then time them in turns (call by call); seconds per call.

    ``probe``: a reference kernel, timed before the first round and after every round
    (``runs + 1`` times, returned second; empty without one), so that each round has the
    machine's speed measured on either side of it. ``issued``: on CUDA, filled with each call's
    host seconds to issue it, per timed run (see :func:`timed`).
    """
    times = {name: [] for name in calls}
    if issued is not None:
        issued.update({name: [] for name in calls})
    probes = []
    bar = tqdm(total=len(calls) * (warmup + runs), desc="bench", unit="call", disable=not progress, leave=False)
    for name, fn in calls.items():
        for _ in range(warmup):
            bar.set_postfix_str(f"warm-up {name}")
            timed(fn, device)
            bar.update()
    if probe is not None:
        timed(probe, device)  # its warm-up
        probes.append(timed(probe, device))
    for _ in range(runs):
        for name, fn in calls.items():
            bar.set_postfix_str(name)
            times[name].append(timed(fn, device, None if issued is None else issued[name]))
            bar.update()
        if probe is not None:
            probes.append(timed(probe, device))
    bar.close()
    return times, probes
