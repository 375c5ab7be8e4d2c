"""The compute floor: the full count's multiply-adds over the machine's peak MAC rate.

``floor_s`` is every multiply-add of the network (:mod:`cfin.complexity.full`, every conv and
matmul: 231.0G for x4 at 180 x 320; a training step counts 3x the forward's, forward and a
backward of twice the forward, the usual convention) over the peak MAC rate, measured as the
best of a large matmul and a large 3x3 convolution through torch. ``over_floor`` is a path's
median over that floor at the best rate seen in the run; ``over_floor_paired`` pairs each
round with the faster kernel's rate timed on either side of it (the median of those ratios),
which a host whose speed drifts during the run moves far less. An option path's
``over_own_floor`` is against the peak rate of its own precision (bf16 or TF32), measured
the same way.
"""
from __future__ import annotations

import contextlib
import statistics

import torch
import torch.nn.functional as F

from cfin.device import tf32_mode
from cfin.bench.spec import AMP_DTYPES
from cfin.bench.timing import timed
from cfin.config import CFINConfig

TRAIN_MAC_FACTOR = 3  # forward + backward (2x forward)


def peak_kernels(device: torch.device, small: bool = False, precision: str = "float32") -> dict:
    """The two reference kernels of :func:`peak_throughput`: name -> (call, multiply-adds, shape)."""
    cuda = device.type == "cuda"
    n = 512 if small else (8192 if cuda else 2048)
    conv_shape = (1, 64, 32, 32) if small else ((32, 256, 128, 128) if cuda else (1, 256, 90, 160))
    dtype = AMP_DTYPES.get(precision, torch.float32)
    gen = torch.Generator(device).manual_seed(0)  # drawn where they run: 200M values on a GPU's host take seconds

    def randn(*shape):
        return torch.randn(shape, generator=gen, device=device).to(dtype)

    a, b = randn(n, n), randn(n, n)
    c = conv_shape[1]
    x = randn(*conv_shape).contiguous(memory_format=torch.channels_last)
    w = randn(c, c, 3, 3)
    return {
        "matmul": (lambda: a @ b, n ** 3, f"{n}x{n} @ {n}x{n}"),
        "conv3x3": (lambda: F.conv2d(x, w, padding=1), c * c * 9 * conv_shape[0] * conv_shape[2] * conv_shape[3],
                    f"{'x'.join(map(str, conv_shape))} channels-last, {c} -> {c}"),
    }


def peak_throughput(device: torch.device, small: bool = False, repeats: int = 3,
                    precision: str = "float32") -> dict:
    """Best MAC/s of a large matmul and a large 3x3 convolution through torch.

    ``precision``: float32 (on CUDA with TF32 off), or the arithmetic of an option path:
    bf16 or fp16 (tensors of that dtype), tf32 (CUDA: TF32 on).
    """
    out = {}
    for name, (fn, macs, shape) in peak_kernels(device, small, precision).items():
        with kernel_mode(device, precision):
            fn()
            best = min(timed(fn, device) for _ in range(repeats))
        out[name] = {"macs_per_s": macs / best, "shape": shape, "best_s": best}
    out["peak_macs_per_s"] = max(v["macs_per_s"] for v in out.values())
    out["precision"] = precision
    return out


@contextlib.contextmanager
def kernel_mode(device: torch.device, precision: str = "float32"):
    """How a reference kernel runs: no autograd, TF32 only for the tf32 precision."""
    with torch.inference_mode(), tf32_mode(device, precision == "tf32"):
        yield


def best_of(*peaks: dict) -> dict:
    """Several :func:`peak_throughput` measurements as one: each kernel's best."""
    best = dict(peaks[0])
    for again in peaks[1:]:
        for k in ("matmul", "conv3x3"):
            if again[k]["macs_per_s"] > best[k]["macs_per_s"]:
                best[k] = again[k]
    best["peak_macs_per_s"] = max(best["matmul"]["macs_per_s"], best["conv3x3"]["macs_per_s"])
    return best


def forward_macs(config: CFINConfig, lr_size: tuple[int, int], batch: int) -> int:
    """Every multiply-add of one forward (the full count, on the faithful network)."""
    from cfin.complexity import count

    return count(config.with_impl("faithful"), lr_size, "full", batch).multi_adds


def round_rates(probe_s: list[float], probe_macs: int) -> list[float]:
    """Each round's MAC rate: the reference kernel's faster time of the two that bracket the
    round (``probe_s[r]``, ``probe_s[r + 1]``, from :func:`~cfin.bench.timing.time_paths`)."""
    return [probe_macs / min(before, after) for before, after in zip(probe_s, probe_s[1:])]


def paired_floor(times_s: list[float], rates: list[float], macs: int) -> dict:
    """Each round's call over the floor at the machine's speed of that round (``rates``:
    :func:`round_rates`; a round's floor is ``macs`` at its rate). A host whose speed drifts
    (a shared virtual machine) moves the call and its floor together, where ``over_floor``
    sets the median call against the best rate of the whole run."""
    ratios = [t / (macs / rate) for t, rate in zip(times_s, rates)]
    return {"over_floor_paired": statistics.median(ratios), "over_floor_rounds": ratios}
