"""``run_bench``: the paths of a :class:`~cfin.bench.spec.BenchSpec`, side by side.

Same weights, same input, one process; the report per path: median, quartiles, min and max
seconds, peak memory, the floor ratios and the equality figures, and beside them
``speedup`` (faithful median / fast median) and ``memory_ratio`` (fast peak / faithful peak).
On CUDA ``cudnn.benchmark`` is on for every path (fixed shapes: cuDNN picks its fastest
algorithm in the warm-up), and back as it was afterwards.
"""
from __future__ import annotations

import copy
import statistics

import torch

from cfin.bench.allocator import set_allocator
from cfin.bench.calls import bench_inputs, build_models, runners, timed_call
from cfin.bench.equality import compare
from cfin.bench.floor import (TRAIN_MAC_FACTOR, best_of, forward_macs, kernel_mode, paired_floor, peak_kernels,
                              peak_throughput, round_rates)
from cfin.bench.memory import peak_memory
from cfin.bench.spec import BenchSpec, Variant, paths_for
from cfin.bench.timing import summarize, time_paths
from cfin.complexity.breakdown import op_breakdown
from cfin.config import CFINConfig


def run_bench(spec: BenchSpec, progress: bool = True) -> dict:
    """Compare the paths of ``spec`` (module docstring); a JSON-ready report."""
    benchmark = torch.backends.cudnn.benchmark
    try:
        return _run_bench(spec, progress)
    finally:  # later work in the process (--psnr, a caller's) keeps its own cuDNN setting
        torch.backends.cudnn.benchmark = benchmark


def _run_bench(spec: BenchSpec, progress: bool) -> dict:
    from cfin.complexity.conventions import TRAIN_BATCH, TRAIN_PATCH, check_lr_size, default_lr_size
    from cfin.provenance import environment

    spec = copy.copy(spec)
    base = spec.base_config()
    if spec.lr_size is None:
        spec.lr_size = (TRAIN_PATCH, TRAIN_PATCH) if spec.train else default_lr_size(base.scale)
    spec.lr_size = check_lr_size(spec.lr_size, base.scale)
    if spec.batch is None:
        spec.batch = TRAIN_BATCH if spec.train else 1
    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    cuda = spec.device.type == "cuda"
    allocator = set_allocator(spec.allocator) if not cuda else {"name": "cuda caching allocator"}
    if cuda:
        torch.backends.cudnn.benchmark = True
    if spec.compile:  # the first calls compile; with CUDA graphs the next records, the one after replays
        spec.warmup = max(spec.warmup, 3 if spec.compile_mode != "default" else 2)

    paths = paths_for(spec)
    models = build_models(paths, spec.device, spec.weights)
    x, y = bench_inputs(spec, base)
    run = runners(paths, models)
    equality = compare(paths, models, run, x, y, spec.train)
    calls = {p.name: timed_call(p, models[p.name], run[p.name], x, y, spec.train) for p in paths}

    peak = peak_throughput(spec.device)  # before and after the paths: the best of both
    probe_name = max(("matmul", "conv3x3"), key=lambda k: peak[k]["macs_per_s"])
    probe, probe_macs, _ = peak_kernels(spec.device)[probe_name]

    def timed_probe():
        with kernel_mode(spec.device):
            return probe()
    issued = {}
    times, probe_s = time_paths(calls, spec.runs, spec.warmup, spec.device, progress, timed_probe, issued)
    probe = timed_probe = None  # drop the kernel and its operands (rebound, not del: timed_probe closes over probe)
    rates = round_rates(probe_s, probe_macs)
    breakdowns = {p.name: op_breakdown(calls[p.name], spec.device, repeats=min(3, spec.runs))
                  for p in paths if spec.breakdown and not p.compile}
    peak = best_of(peak, peak_throughput(spec.device))
    peaks = {"float32": peak}
    for precision in sorted({p.precision for p in paths} - {"float32"}):
        peaks[precision] = best_of(*(peak_throughput(spec.device, precision=precision) for _ in range(2)))

    macs = forward_macs(base, spec.lr_size, spec.batch) * (TRAIN_MAC_FACTOR if spec.train else 1)
    floor_s = macs / peak["peak_macs_per_s"]
    report = {"mode": "training step" if spec.train else "inference", "scale": base.scale,
              "mask_eval": base.mask_eval, "config": base.to_dict(), "network": network_label(base),
              "lr_size": list(spec.lr_size), "batch": spec.batch, "runs": spec.runs, "warmup": spec.warmup,
              "threads": torch.get_num_threads() if not cuda else None,
              "allocator": allocator, "environment": environment(spec.device),
              "timing": "CUDA events around each call" if cuda else "time.perf_counter around each call",
              "floor_s": floor_s,
              "floor": {"multi_adds": macs, "peak": peak,
                        "rule": ("full-count multiply-adds" + (" x 3 (forward + backward)" if spec.train else "")
                                 + " / the best of the matmul and conv3x3 MAC rates"),
                        "by_precision": {k: {"peak_macs_per_s": v["peak_macs_per_s"],
                                             "floor_s": macs / v["peak_macs_per_s"]}
                                         for k, v in peaks.items()},
                        "paired": {"kernel": probe_name, "shape": peak[probe_name]["shape"],
                                   "macs_per_s_rounds": rates,
                                   "rule": f"the {probe_name} kernel timed before and after each round; a round's "
                                           "floor at the faster of the two (float32 paths)"}},
              "paths": {}}
    if cuda:
        report["cuda"] = {"cudnn_benchmark": True,
                          "tf32": "off, except in the fast+tf32 path" if spec.tf32 else "off",
                          "peaks": {k: v for k, v in peaks.items() if k != "float32"}}
    for p in paths:
        entry = {**summarize(times[p.name]), "config_changes": _changes(base, p), **equality[p.name]}
        if spec.memory:
            entry.update(peak_memory(p, spec, calls[p.name]))
        entry["over_floor"] = entry["median_s"] / floor_s
        entry["precision"] = p.precision
        entry["over_own_floor"] = entry["median_s"] / (macs / peaks[p.precision]["peak_macs_per_s"])
        if p.precision == "float32":
            entry.update(paired_floor(times[p.name], rates, macs))
        if issued.get(p.name):
            entry.update(host_issue(issued[p.name], times[p.name]))
        if p.name in breakdowns:
            entry["breakdown"] = breakdowns[p.name]
        elif spec.breakdown:
            entry["breakdown_skipped"] = "compiled: inductor's fused kernels are not aten ops to time one by one"
        report["paths"][p.name] = entry
    fast, faithful = report["paths"]["fast"], report["paths"]["faithful"]
    report["fast"], report["faithful"] = fast, faithful
    report["speedup"] = faithful["median_s"] / fast["median_s"]
    report["memory_ratio"] = _ratio(fast.get("peak_mb"), faithful.get("peak_mb"))
    report["tensor_memory_ratio"] = _ratio(fast.get("tensor_peak_mb"), faithful.get("tensor_peak_mb"))
    if "fast+checkpoint" in report["paths"]:
        ckpt = report["paths"]["fast+checkpoint"]
        report["checkpoint_speedup"] = faithful["median_s"] / ckpt["median_s"]
        report["checkpoint_memory_ratio"] = _ratio(ckpt.get("peak_mb"), faithful.get("peak_mb"))
        report["checkpoint_tensor_memory_ratio"] = _ratio(ckpt.get("tensor_peak_mb"), faithful.get("tensor_peak_mb"))
    return report


def host_issue(issued_s: list[float], times_s: list[float]) -> dict:
    """The host's median seconds to issue a call (CUDA) and its median share of the call's GPU
    time, run by run: near 1 the GPU waited on the host's launches, well below 1 on its own work."""
    return {"host_issue_median_s": statistics.median(issued_s),
            "host_issue_share": statistics.median(h / t for h, t in zip(issued_s, times_s) if t > 0)}


def network_label(config: CFINConfig) -> str:
    """The preset ``config`` is, or its differences from the preset of its scale."""
    from cfin.config import PRESETS

    name = next((n for n, p in PRESETS.items() if p == config), None)
    if name is not None:
        return f"preset {name}"
    changes = _config_changes(PRESETS[f"x{config.scale}"], config)
    return f"preset x{config.scale} with " + ", ".join(f"{k}={v!r}" for k, v in changes.items())


def _config_changes(base: CFINConfig, config: CFINConfig) -> dict:
    """The fields of ``config`` that differ from ``base``, with their values in ``config``."""
    ref = base.to_dict()
    return {k: v for k, v in config.to_dict().items() if ref[k] != v}


def _ratio(a, b):
    return None if a is None or not b else a / b


def _changes(base: CFINConfig, path: Variant) -> dict:
    diff = _config_changes(base, path.config)
    if path.amp:
        diff["autocast"] = path.amp
    if path.tf32:
        diff["tf32"] = True
    if path.compile:
        diff["torch.compile"] = f"{path.compile_mode} mode, inductor fallback_random (eager random stream)"
    return diff
