"""Peak memory of one call of a path.

CPU: each path in fresh child processes (:func:`cfin.complexity.memory.measure_memory`: the
peak resident set over the call, above the baseline after building model and input; the
median of ``memory_runs`` children), and beside it ``tensor_peak_mb``, the peak of live
tensors from torch's CPU allocator over a second call in the first child (the same in every
run, where the resident set moves with the heap's layout). CUDA:
``torch.cuda.max_memory_allocated`` over one call, above what was allocated before it.
"""
from __future__ import annotations

import statistics

import torch

from cfin.bench.spec import BenchSpec, Variant

MIB = 2 ** 20


def peak_memory(path: Variant, spec: BenchSpec, call=None) -> dict:
    """Peak memory of one call of ``path`` (module docstring); None where it cannot be measured."""
    if spec.device.type == "cuda":
        torch.cuda.synchronize(spec.device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(spec.device)
        base = torch.cuda.memory_allocated(spec.device)
        call()
        torch.cuda.synchronize(spec.device)
        peak = torch.cuda.max_memory_allocated(spec.device)
        return {"peak_mb": (peak - base) / MIB, "total_mb": peak / MIB,
                "method": "torch.cuda.max_memory_allocated over one call, above memory_allocated before it"}
    if not path.exact:
        return {"peak_mb": None, "method": "not measured: CPU memory runs in a child built from the config "
                                           "alone (no autocast or compile there)"}
    from cfin.complexity.memory import measure_memory

    runs = [measure_memory(path.config, spec.device, "training" if spec.train else "inference",
                           spec.lr_size, spec.batch, tensors=i == 0) for i in range(spec.memory_runs)]
    peaks = [m["call_bytes"] / MIB for m in runs]
    median = statistics.median(peaks)
    total = statistics.median(m["peak_bytes"] / MIB for m in runs)
    tensors = runs[0]["tensor_bytes"]
    return {"peak_mb": median, "total_mb": total, "peak_mb_runs": peaks,
            "method": f"median of {len(runs)} children, each a {runs[0]['method']}",
            "tensor_peak_mb": None if tensors is None else tensors / MIB,
            "tensor_method": f"first child: {runs[0]['tensor_method']}"}
