"""CFIN beside the networks its tables compare it with: time and memory on one device, in one run.

``compare_models(["cfin", "swinir-light", "esrt", "lbnet"], scale=4)`` measures, for each
network (CFIN as the official code computes it, the peers as rebuilt in :mod:`cfin.peers`;
random weights, seed 0):

* inference latency: one forward of a ``1 x 3 x H x W`` LR input; after each network's warm-up
  the networks take turns call by call (:func:`cfin.bench.timing.time_paths`), so that anything
  else the machine does slows them alike; CUDA events on a GPU, ``time.perf_counter`` on a CPU;
  median, quartiles and spread;
* peak memory of that forward and of one training step (batch 16 of 48 x 48 LR patches, L1,
  backward, Adam), by :func:`cfin.complexity.memory.measure_memory` (CPU: a fresh child process
  per measurement; CUDA: the allocator's peak);

and every figure as a ratio to CFIN's: Table II's "GPU Memory" and "Time" columns, measured on
the device at hand rather than quoted from five papers' machines.
"""
from __future__ import annotations

import torch

from cfin.bench.allocator import set_allocator
from cfin.bench.timing import summarize, time_paths
from cfin.errors import CFINError

MIB = 2 ** 20
REFERENCE = "cfin"


def build_network(name: str, scale: int, device: torch.device) -> torch.nn.Module:
    """CFIN (the x``scale`` preset, the official computation) or a registered peer, random weights, eval."""
    from cfin.config import preset
    from cfin.models import CFIN
    from cfin.peers import build

    torch.manual_seed(0)
    model = CFIN(preset(scale)) if name == REFERENCE else build(name, scale)
    return model.to(device).eval()


def check_names(names) -> list[str]:
    """Registry names, CFIN first (added where missing: every ratio is to CFIN), each once."""
    from cfin.peers import spec

    out = [REFERENCE]
    for name in names:
        key = str(name).strip().lower()
        key = key if key == REFERENCE else spec(key).name
        if key in out[1:]:
            raise CFINError(f"--models names {key} twice")
        if key != REFERENCE:
            out.append(key)
    return out


def compare_models(names, scale: int = 4, lr_size=None, device: torch.device | None = None, runs: int = 5,
                   warmup: int = 1, memory: bool = True, train_batch: int | None = None,
                   train_patch: int | None = None, threads: int | None = None, allocator: str = "tuned",
                   progress: bool = True) -> dict:
    """Latency and peak memory of each network (module docstring); a JSON-ready report.

    Args:
        names: registry names (``cfin`` and peers); CFIN is added first where missing.
        scale: the upscaling factor every network is built at (each must be registered at it).
        lr_size: (H, W) of the LR input (default: the paper's, a 1280 x 720 output).
        device: cpu or cuda (default cpu).
        runs, warmup: timed and untimed forwards per network.
        memory: measure peak memory (forward and training step).
        train_batch, train_patch: the training step's batch and LR patch (default 16, 48).
        threads: CPU threads (None: torch's).
        allocator: glibc malloc settings for every network alike (:mod:`cfin.bench.allocator`).
    """
    from cfin.complexity.conventions import TRAIN_BATCH, TRAIN_PATCH, check_lr_size, default_lr_size
    from cfin.complexity.memory import measure_memory
    from cfin.peers import spec
    from cfin.peers.registry import check_scale
    from cfin.provenance import environment

    device = device or torch.device("cpu")
    if device.type not in ("cpu", "cuda"):
        raise CFINError(f"cfin bench runs on cpu or cuda, got {device}")
    for flag, value, low in (("runs", runs, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise CFINError(f"{flag} must be an int >= {low}, got {value!r}")
    names = check_names(names)
    if scale not in (2, 3, 4):
        raise CFINError(f"--scale {scale}: valid scales 2, 3, 4")
    for name in names[1:]:
        check_scale(spec(name), scale)
    lr_size = check_lr_size(lr_size if lr_size is not None else default_lr_size(scale), scale)
    train_batch = TRAIN_BATCH if train_batch is None else train_batch
    train_patch = TRAIN_PATCH if train_patch is None else train_patch
    check_lr_size((train_patch, train_patch), scale, "training patch")
    if threads is not None:
        if threads < 1:
            raise CFINError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    cuda = device.type == "cuda"
    alloc = set_allocator(allocator) if not cuda else {"name": "cuda caching allocator"}

    models = {n: build_network(n, scale, device) for n in names}
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand((1, 3, *lr_size), generator=gen) * 255).to(device)

    def forward(model):
        def call():
            with torch.inference_mode():
                model(x)
        return call

    times, _ = time_paths({n: forward(m) for n, m in models.items()}, runs, warmup, device, progress)
    report = {"scale": scale, "input": [1, 3, *lr_size], "output": [1, 3, lr_size[0] * scale, lr_size[1] * scale],
              "device": str(device), "dtype": "float32", "weights": "random (seed 0)",
              "timer": ("torch.cuda.Event pairs" if cuda
                        else f"time.perf_counter, {torch.get_num_threads()} CPU threads"),
              "allocator": alloc, "reference": REFERENCE, "models": {}}
    for name, model in models.items():
        entry = {"title": "CFIN" if name == REFERENCE else spec(name).title,
                 "params": sum(p.numel() for p in model.parameters()),
                 "latency": summarize(times[name])}
        report["models"][name] = entry
    del models
    if cuda:
        torch.cuda.empty_cache()
    if memory:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * len(names), desc="memory", unit="measure", disable=not progress, leave=False)
        for name in names:
            with torch.device("meta"):
                target = _meta_network(name, scale)
            entry = report["models"][name]
            for mode, size, batch in (("inference", lr_size, 1), ("training", (train_patch, train_patch), train_batch)):
                bar.set_postfix_str(f"{name} {mode}")
                m = measure_memory(target, device, mode, size, batch)
                entry[f"{mode}_memory"] = {"peak_mb": (m["peak_bytes"] if cuda else m["call_bytes"]) / MIB,
                                           "input": m["input"], "what": m["what"], "method": m["method"]}
                bar.update()
        bar.close()
    _ratios(report)
    report["environment"] = environment(device)
    return report


def _meta_network(name: str, scale: int):
    """What memory measurement builds its own copy from: the config (CFIN) or the peer's name and scale."""
    from cfin.config import preset
    from cfin.peers import build

    return preset(scale) if name == REFERENCE else build(name, scale)


def _ratios(report: dict) -> None:
    """Each network's latency and memory as a ratio to CFIN's (CFIN = 1)."""
    ref = report["models"][REFERENCE]
    for entry in report["models"].values():
        ratios = {"latency": entry["latency"]["median_s"] / ref["latency"]["median_s"]}
        for mode in ("inference", "training"):
            key = f"{mode}_memory"
            if key in entry and ref[key]["peak_mb"]:
                ratios[key] = entry[key]["peak_mb"] / ref[key]["peak_mb"]
        entry["ratio_to_cfin"] = ratios


def render_models(report: dict) -> str:
    """The comparison as a text table: median latency (IQR), peak memory, each with its ratio to CFIN."""
    b, c, h, w = report["input"]
    lines = [f"x{report['scale']} networks at {b}x{c}x{h}x{w} LR -> {h * report['scale']}x{w * report['scale']} on "
             f"{report['device']} ({report['dtype']}, {report['timer']}; weights {report['weights']})", ""]
    head = f"{'model':<14} {'params':>10} {'latency (median, IQR)':>24} {'x CFIN':>7}"
    has_mem = "inference_memory" in report["models"][REFERENCE]
    if has_mem:
        head += f" {'forward peak':>13} {'x CFIN':>7} {'train step peak':>16} {'x CFIN':>7}"
    lines.append(head)
    for name, e in report["models"].items():
        lat, r = e["latency"], e["ratio_to_cfin"]
        line = (f"{e['title']:<14} {e['params']:>10,} {lat['median_s'] * 1e3:>13.1f} ms ({lat['iqr_s'] * 1e3:>5.1f})"
                f" {r['latency']:>7.2f}")
        if has_mem:
            line += (f" {e['inference_memory']['peak_mb']:>9,.0f} MiB {r.get('inference_memory', 0):>7.2f}"
                     f" {e['training_memory']['peak_mb']:>12,.0f} MiB {r.get('training_memory', 0):>7.2f}")
        lines.append(line)
    if has_mem:
        ref = report["models"][REFERENCE]
        lines += ["", f"forward: {ref['inference_memory']['what']}; training: {ref['training_memory']['what']}, "
                      f"input {'x'.join(map(str, ref['training_memory']['input']))}",
                  f"memory method: {ref['inference_memory']['method']}"]
    return "\n".join(lines)
