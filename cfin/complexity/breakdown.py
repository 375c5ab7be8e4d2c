"""Where a call's time goes: the wall clock around every aten op it dispatches, by kind.

A ``TorchDispatchMode`` times each op the call dispatches and groups the ops: convolutions
by kernel size and channels, with their multiply-adds and so their MAC rate; their
backward by the same shape, apart where it computes the weight gradient alone (at
inference, the fast path's Gram matrices); matrix products together; views together;
every other op under its own name. What the ops leave uncovered is ``between_ops_s``:
Python, numpy (the Gumbel noise's MT19937 on the CPU) and the timer's own overhead, so an
instrumented call runs a little longer than a plain one. On CUDA each op is timed between two
synchronisations, so that its time is its kernels'; launches then no longer overlap kernels, as
they do in a plain call.
"""
from __future__ import annotations

import collections
import math
import statistics
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_CONVS = {"convolution", "_convolution", "conv2d", "mkldnn_convolution", "cudnn_convolution",
          "_convolution_pointwise", "conv_transpose2d"}
_MATMULS = {"mm", "bmm", "addmm", "baddbmm", "addbmm", "matmul"}


def op_kind(func, args, kwargs, out) -> tuple[str, int | None]:
    """An op's kind and its multiply-adds (None where it has none worth counting)."""
    name = func.overloadpacket.__name__
    if func.is_view:
        return "views", None
    if name in _CONVS:
        return _conv_kind(func, args, kwargs, out)
    if name == "convolution_backward":
        return _conv_backward_kind(func, args, kwargs)
    if name in _MATMULS:  # out = a @ b (+ c): one multiply-add per output and inner index
        a = args[1] if name in ("addmm", "baddbmm", "addbmm") else args[0]
        return "matmul", out.numel() * a.shape[-1] * (a.shape[0] if name == "addbmm" else 1)
    if name == "linear":
        return "matmul", out.numel() * args[1].shape[-1]
    return name, None


def _conv_kind(func, args, kwargs, out) -> tuple[str, int]:
    x, weight = args[0], args[1]
    name = func.overloadpacket.__name__
    transposed = name == "conv_transpose2d" or bool(_argument(func, args, kwargs, "transposed", False))
    groups = int(_argument(func, args, kwargs, "groups", 1))
    k = "x".join(map(str, weight.shape[2:]))
    if transposed:  # weight: Cin x Cout/groups x k x k
        cin, cout = weight.shape[0], weight.shape[1] * groups
        macs = x.numel() * math.prod(weight.shape[1:])
    else:           # weight: Cout x Cin/groups x k x k
        cin, cout = weight.shape[1] * groups, weight.shape[0]
        macs = out.numel() * math.prod(weight.shape[1:])
    label = f"conv{'-transpose' if transposed else ''} {k} {cin}->{cout}"
    if groups > 1:
        label += f" ({groups} groups)"
    if name == "_convolution_pointwise":
        label += " +act"
    return label, macs


def _conv_backward_kind(func, args, kwargs) -> tuple[str, int]:
    """``convolution_backward``: labelled by the forward convolution's shape; one forward's
    multiply-adds for each of the input and weight gradients it computes."""
    grad_out, x, weight = args[0], args[1], args[2]
    transposed = bool(_argument(func, args, kwargs, "transposed", False))
    label, macs = _conv_kind(func, (x, weight), {"transposed": transposed,
                                                 "groups": _argument(func, args, kwargs, "groups", 1)}, grad_out)
    mask = list(_argument(func, args, kwargs, "output_mask", (True, True, True)))
    what = "weight gradient" if mask[:2] == [False, True] else "backward"
    return label.replace("conv", f"conv {what}", 1), macs * (int(mask[0]) + int(mask[1]))


def _argument(func, args, kwargs, name: str, default):
    """An op's argument by its schema name, positional or keyword."""
    if name in kwargs:
        return kwargs[name]
    names = [a.name for a in func._schema.arguments]
    if name in names and names.index(name) < len(args):
        return args[names.index(name)]
    return default


class _OpTimer(TorchDispatchMode):
    def __init__(self, device: torch.device):
        super().__init__()
        self.device = device if device.type == "cuda" else None  # the GPU to wait for, if any
        self.seconds = collections.defaultdict(float)
        self.calls = collections.Counter()
        self.macs = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.device:
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.device:
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        kind, macs = op_kind(func, args, kwargs, out)
        self.seconds[kind] += seconds
        self.calls[kind] += 1
        if macs:
            self.macs[kind] += macs
        return out


def op_breakdown(call, device: torch.device, repeats: int = 3) -> dict:
    """Run ``call`` once, then ``repeats`` times timed, under the op timer (module docstring);
    per kind, the median over the repeats of its summed seconds, its op count and
    multiply-adds per call."""
    cuda = device.type == "cuda"
    with _OpTimer(device):  # untimed: the timer's own first-call costs (schemas, caches)
        call()
    runs, totals = [], []
    for _ in range(repeats):
        timer = _OpTimer(device)
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with timer:
            call()
        if cuda:
            torch.cuda.synchronize(device)
        totals.append(time.perf_counter() - start)
        runs.append(timer)
    kinds = []
    for kind in runs[0].seconds:
        seconds = statistics.median(r.seconds.get(kind, 0.0) for r in runs)
        macs = runs[0].macs.get(kind) or None
        kinds.append({"kind": kind, "s": seconds, "calls": runs[0].calls[kind], "macs": macs,
                      "macs_per_s": macs / seconds if macs and seconds > 0 else None})
    kinds.sort(key=lambda k: -k["s"])
    total, ops_s = statistics.median(totals), sum(k["s"] for k in kinds)
    return {"total_s": total, "ops_s": ops_s, "between_ops_s": total - ops_s,
            "ops": sum(k["calls"] for k in kinds), "kinds": kinds, "repeats": repeats,
            "method": ("wall clock around each dispatched aten op" + (" between CUDA synchronisations" if cuda else "")
                       + f"; per kind the median over {repeats} instrumented calls")}


def render_breakdown(name: str, breakdown: dict, peak_macs_per_s: float | None = None, top: int = 10) -> list[str]:
    """Text lines: the ``top`` kinds by time, the rest in one line, and the time between ops."""
    lines = [f"where {name}'s time goes ({breakdown['method']}): {breakdown['total_s']:.3f} s instrumented, "
             f"{breakdown['ops']} ops"]
    width = max([34] + [len(k["kind"]) + 2 for k in breakdown["kinds"][:top]])
    for k in breakdown["kinds"][:top]:
        rate = ""
        if k["macs_per_s"]:
            rate = f", {k['macs_per_s'] / 1e9:.0f}G MAC/s"
            if peak_macs_per_s:
                rate += f" ({100 * k['macs_per_s'] / peak_macs_per_s:.0f}% of the floor's)"
        lines.append(f"  {k['kind']:<{width}}{k['s'] * 1e3:>9.1f} ms  {k['calls']:>5} calls{rate}")
    rest = breakdown["kinds"][top:]
    if rest:
        lines.append(f"  {f'{len(rest)} other kinds':<{width}}{sum(k['s'] for k in rest) * 1e3:>9.1f} ms  "
                     f"{sum(k['calls'] for k in rest):>5} calls")
    lines.append(f"  {'between ops (Python, numpy, timer)':<{width}}{breakdown['between_ops_s'] * 1e3:>9.1f} ms")
    return lines
