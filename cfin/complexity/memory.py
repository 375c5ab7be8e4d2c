"""Peak memory of inference and of one training step, on the device at hand.

The paper's "GPU Memory" column (Tables II, VIII, X: 11,419M for CFIN x4) is a training
figure: section VI attributes it to "the training memory" of CGA's matrix products. We measure
both, each labelled with device, dtype, batch and input size:

* inference: one forward at the requested LR size (``torch.inference_mode``);
* training: the first step of the paper's recipe: batch 16 of 48 x 48 LR patches, L1 loss,
  backward, Adam step (which creates the Adam state, 2 x params: 27 MB at x4 fp32, small
  beside the activations). The first step, not a later one, because a CPU process keeps the
  memory a previous step freed and a later step's resident peak would hide in it.

CUDA: ``torch.cuda.max_memory_allocated`` over the measured call (weights, optimizer state and
activations; the CUDA context and the caching allocator's spare blocks, which nvidia-smi also
shows, are not in it: ``max_memory_reserved`` is reported beside it).

CPU: the measurement runs in a fresh child process (``python -m cfin.complexity.memory``,
built from the config: memory does not depend on weight values), so nothing the parent
allocated counts. After the model and inputs are built, the child resets the kernel's
peak-RSS counter (writing 5 to ``/proc/self/clear_refs``), reads ``VmRSS`` as the baseline, runs
the call and reads ``VmHWM`` (the peak resident set since the reset). Reported: the peak RSS
and the peak above the baseline (what the call itself needed). Where ``clear_refs`` is not
available the peak is ``ru_maxrss``, which also covers imports and model construction.

The resident set is what the machine gives the process, and the call is its first: it also
holds the allocator's fragmentation, code pages and kernels built on first use, and it
moves from one child to the next (how far: docs/performance.md). With ``tensors=True`` the child then runs the
call a second time under ``torch.profiler`` (``profile_memory``) and reports the peak of the
bytes torch's CPU allocator has handed out and not yet taken back, above those live before
the call: the CPU counterpart of ``torch.cuda.max_memory_allocated``, the same in every run.
"""
from __future__ import annotations

import copy
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

from cfin.complexity.conventions import TRAIN_BATCH, TRAIN_PATCH
from cfin.config import CFINConfig
from cfin.errors import CFINError, choice_error

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MODES = ("inference", "training")


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise choice_error("dtype", name, DTYPES)
    return DTYPES[name]


def build(model_or_config, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """A real model (random weights for a config; a copy of a given model) on ``device`` in ``dtype``."""
    from cfin.models import CFIN

    if isinstance(model_or_config, CFINConfig):
        model = CFIN(model_or_config)
    elif isinstance(model_or_config, nn.Module) and getattr(model_or_config, "peer", None) is not None and \
            any(p.is_meta for p in model_or_config.parameters()):
        from cfin.peers import build as build_peer  # a peer counted on meta: the same network with weights

        model = build_peer(model_or_config.peer, model_or_config.scale)
    elif isinstance(model_or_config, nn.Module):
        model = copy.deepcopy(model_or_config)  # the caller's model keeps its device and dtype
    else:
        raise CFINError(f"need a CFINConfig or an nn.Module, got {type(model_or_config).__name__}")
    return model.to(device=device, dtype=dtype)


def config_of(model_or_config) -> CFINConfig | None:
    return model_or_config if isinstance(model_or_config, CFINConfig) else getattr(model_or_config, "config", None)


def rgb_range_of(model_or_config) -> float:
    """The pixel range a network takes: a CFINConfig's ``rgb_range``; 255 for a peer (cfin.peers)."""
    cfg = config_of(model_or_config)
    return cfg.rgb_range if cfg is not None else 255.0


def child_spec(model_or_config) -> dict:
    """What a fresh process needs to build the same network: its config, or a peer's name and scale."""
    cfg = config_of(model_or_config)
    if cfg is not None:
        return {"config": cfg.to_dict()}
    peer = getattr(model_or_config, "peer", None)
    if peer is None:
        raise CFINError("CPU memory is measured in a child process that builds the network anew: pass a "
                        "CFINConfig, a CFIN or a network from cfin.peers.build")
    return {"peer": peer, "scale": model_or_config.scale}


def build_from_child_spec(spec: dict) -> tuple[nn.Module, int]:
    """The network of :func:`child_spec`'s output, with its scale."""
    if "peer" in spec:
        from cfin.peers import build as build_peer

        return build_peer(spec["peer"], spec["scale"]), spec["scale"]
    from cfin.models import CFIN

    cfg = CFINConfig.from_dict(spec["config"])
    return CFIN(cfg), cfg.scale


def random_input(lr_size, batch: int, device, dtype, rgb_range: float) -> torch.Tensor:
    """A batch of LR images with values in [0, rgb_range]."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((batch, 3, *lr_size), generator=gen) * rgb_range
    return x.to(device=device, dtype=dtype)


def _training_step(model, optimizer, x, y):
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.l1_loss(model(x), y)
    loss.backward()
    optimizer.step()


def _run(mode, model, x, scale: int | None):
    """The measured call; returns a closure so that setup is outside the measurement."""
    if mode == "inference":
        model.eval()

        def call():
            with torch.inference_mode():
                model(x)
        return call
    model.train()
    # Adam as the paper (IV-B): betas (0.9, 0.999), eps 1e-8, lr 5e-4
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-8)
    if scale:  # an HR target, allocated before the measurement (without a forward on CPU: see above)
        y = torch.rand((x.shape[0], 3, x.shape[2] * scale, x.shape[3] * scale), dtype=x.dtype, device=x.device)
    else:
        with torch.no_grad():
            y = torch.rand_like(model(x))
    y = y * float(x.max())
    return lambda: _training_step(model, optimizer, x, y)


def _cuda_peak(mode, model, x, scale, device) -> dict:
    call = _run(mode, model, x, scale)
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    call()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return {"peak_bytes": int(peak), "baseline_bytes": int(baseline), "call_bytes": int(peak - baseline),
            "peak_reserved_bytes": int(torch.cuda.max_memory_reserved(device)),
            "method": "torch.cuda.max_memory_allocated over the call (reset before it); baseline = "
                      "memory_allocated before it (weights and inputs)"}


def _proc_status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def _cpu_child(spec: dict) -> dict:
    """Runs in a fresh process: build, reset the peak, measure one call."""
    torch.set_num_threads(spec["threads"])
    dtype, mode = DTYPES[spec["dtype"]], spec["mode"]
    model, scale = build_from_child_spec(spec)
    model = model.to(dtype=dtype)
    x = random_input(tuple(spec["lr_size"]), spec["batch"], "cpu", dtype, rgb_range_of(model))
    call = _run(mode, model, x, scale)
    if _reset_peak_rss() and _proc_status("VmHWM") is not None:
        baseline = _proc_status("VmRSS")
        call()
        peak = _proc_status("VmHWM")
        method = ("fresh child process; /proc/self/clear_refs reset of the peak RSS after building "
                  "model and inputs; peak = VmHWM after the call, baseline = VmRSS before it")
    else:
        baseline = _maxrss_bytes()
        call()
        peak = _maxrss_bytes()
        method = ("fresh child process; peak = ru_maxrss after the call (includes imports and "
                  "construction), baseline = ru_maxrss before it")
    result = {"peak_bytes": int(peak), "baseline_bytes": int(baseline), "call_bytes": int(max(0, peak - baseline)),
              "method": method}
    if spec.get("tensors"):
        result.update(tensor_peak(call))
    return result


def _start_ns(event) -> int:
    # torch < 2.4: kineto events have start_us() only
    return event.start_ns() if hasattr(event, "start_ns") else event.start_us() * 1000


def tensor_peak(call) -> dict:
    """Peak bytes of live tensors from torch's CPU allocator over ``call()``, above those live
    before it (module docstring), from the profiler's allocation records in time order."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    try:   # the time-ordered records sit in the profiler's kineto results
        records = sorted(((_start_ns(e), e.nbytes()) for e in prof.profiler.kineto_results.events()
                          if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU),
                         key=lambda r: r[0])   # stable: records of the same instant keep their order
    except AttributeError:
        return {"tensor_bytes": None, "tensor_method": "not measured: this torch's profiler keeps no "
                                                       "allocation records"}
    live = peak = 0
    for _, nbytes in records:
        live += nbytes
        peak = max(peak, live)
    return {"tensor_bytes": int(peak),
            "tensor_method": "a second call under torch.profiler (profile_memory): peak of the bytes "
                             "torch's CPU allocator holds, above those live before the call"}


def measure_memory(model_or_config, device: torch.device, mode: str = "inference", lr_size=None,
                   batch: int | None = None, dtype: str = "float32", tensors: bool = False) -> dict:
    """Peak memory of one inference forward or one training step (module docstring), labelled.

    Args:
        model_or_config: a CFINConfig (random weights), a CFIN or a peer (:func:`cfin.peers.build`).
        device: a torch.device (see :func:`cfin.device.resolve_device`).
        mode: ``inference`` (default LR size: the paper's 720p input, batch 1) or ``training``
            (default: the paper's batch 16 of 48 x 48 LR patches).
        lr_size: (H, W) of the LR input; batch: its batch size (default 1 for inference, 16 for training).
        dtype: ``float32``, ``float16`` or ``bfloat16``.
        tensors: CPU only: also the peak of live tensors over a second call (``tensor_bytes``,
            module docstring); CUDA's figure is that kind already.
    """
    from cfin.complexity.conventions import check_lr_size, default_lr_size

    if mode not in MODES:
        raise choice_error("memory mode", mode, MODES)
    torch_dtype = resolve_dtype(dtype)
    from cfin.complexity.counts import scale_of

    scale = scale_of(model_or_config) or 0
    if lr_size is None:
        if mode == "inference" and not scale:
            raise CFINError("a model without a CFINConfig or a scale needs an explicit lr_size for inference memory")
        lr_size = default_lr_size(scale) if mode == "inference" else (TRAIN_PATCH, TRAIN_PATCH)
    lr_size = check_lr_size(lr_size, scale)
    if batch is None:
        batch = 1 if mode == "inference" else TRAIN_BATCH
    if not isinstance(batch, int) or batch < 1:
        raise CFINError(f"batch must be a positive int, got {batch!r}")
    if device.type == "cuda":
        model = build(model_or_config, device, torch_dtype)
        x = random_input(lr_size, batch, device, torch_dtype, rgb_range_of(model_or_config))
        result = _cuda_peak(mode, model, x, scale or None, device)
        del model, x
        torch.cuda.empty_cache()
    elif device.type == "cpu":
        result = _run_child({**child_spec(model_or_config), "mode": mode, "lr_size": list(lr_size), "batch": batch,
                             "dtype": dtype, "threads": torch.get_num_threads(), "tensors": tensors})
    else:
        raise CFINError(f"memory measurement supports cpu and cuda devices, got {device}")
    what = ("one forward (inference_mode)" if mode == "inference"
            else "the first training step (forward, L1, backward, Adam step)")
    result.update({"mode": mode, "device": str(device), "dtype": dtype, "batch": batch,
                   "input": [batch, 3, *lr_size], "what": what})
    return result


def _run_child(spec: dict) -> dict:
    """Run :func:`_cpu_child` in a fresh interpreter; its JSON result is the last stdout line."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-m", "cfin.complexity.memory", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CFINError(f"the memory-measuring child process failed (exit {proc.returncode}): {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(_cpu_child(json.loads(sys.argv[1]))))
