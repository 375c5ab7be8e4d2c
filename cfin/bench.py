"""Fast against faithful CFIN, side by side: time, peak memory and the compute floor (issue 7).

The two computations of one network (:data:`cfin.config.IMPLS`) get the same weights and
the same input in one process. Each timed call is one inference forward or one training
step (forward, L1 loss, backward, Adam step); the paths take turns call by call (after
their warm-up), so that anything else the machine does slows both alike. Reported per
path: median, quartiles, min and max seconds; peak memory; and beside them

* ``speedup``: faithful median / fast median; ``memory_ratio``: fast peak / faithful peak;
* ``floor_s``: the compute floor, the full count's multiply-adds (:mod:`cfin.complexity.full`,
  every conv and matmul of the network: 231.0G for x4 at 180 x 320) over the machine's peak
  MAC rate, measured here as the best of a large matmul and a large 3x3 convolution
  through torch (both printed). A training step counts 3x the forward's multiply-adds
  (forward, and a backward of twice the forward: the usual convention). ``over_floor`` is a
  path's median over that floor at the best rate seen in the run; ``over_floor_paired``
  pairs each round with the faster kernel's rate timed on either side of it (the median of
  those ratios), which a host whose speed drifts during the run moves far less;
* equality: the outputs' largest absolute difference from the faithful path (0-255 scale;
  target 1e-3) and, for training, the gradients' relative difference (target 1e-4); beside
  them ``float32_noise``, the same differences for the faithful path against itself with
  its convolutions from ATen's own kernels (oneDNN or cuDNN off).

Memory. CPU: each path in fresh child processes (:func:`cfin.complexity.memory.measure_memory`:
the peak resident set over the call, above the baseline after building model and input; the
median of ``memory_runs`` children), and beside it ``tensor_peak_mb``, the peak of live
tensors from torch's CPU allocator over a second call in the first child (the same in every
run, where the resident set moves with the heap's layout) and ``tensor_memory_ratio``.
CUDA: ``torch.cuda.max_memory_allocated`` over one call, above what was allocated before it.

Allocator. glibc malloc serves every buffer above its mmap threshold (at most 32 MiB) with a
fresh ``mmap`` and unmaps it on free, so each large tensor is paid again in page faults; on
CPU that alone slows these models about 2x. ``allocator="tuned"`` (the default) turns the
mmap path off and trimming down (``M_MMAP_MAX = 0``; ``M_TRIM_THRESHOLD`` -1, which glibc reads
as "never trim", and 64 GiB in the children's environment, where it must be positive) for all
paths alike: by ``mallopt`` in this process and by ``MALLOC_MMAP_MAX_`` /
``MALLOC_TRIM_THRESHOLD_`` in the memory children. ``"default"`` leaves glibc alone.

CUDA. Each call is timed with CUDA events around it; ``cudnn.benchmark`` is on for every
path (fixed shapes: cuDNN picks its fastest algorithm in the warm-up). TF32 is off for
every path but ``fast+tf32``: PyTorch's default runs cuDNN convolutions in TF32 (10-bit
mantissa), which is not the float32 function the equality targets are about.

Options that change results (``amp="bf16"``: autocast; ``tf32=True``: TF32 matmuls and
convolutions on CUDA; ``compile=True``: ``torch.compile`` in ``compile_mode``, with inductor's
``fallback_random`` so that the Gumbel noise comes from the same random stream as in eager
mode) are extra paths beside ``fast``, never the default; :func:`set5_psnr_delta` measures how far they move
Set5 PSNR. Each path's ``over_floor`` is against the float32 floor; ``over_own_floor`` is
against the peak MAC rate of its own precision (bf16 or TF32 matmul), measured the same way.
"""
from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from cfin.complexity.breakdown import op_breakdown, render_breakdown
from cfin.config import CFINConfig, preset
from cfin.errors import CFINError, choice_error

OUT_ATOL = 1e-3       # outputs, 0-255 scale
GRAD_RTOL = 1e-4      # gradients, relative to the norm of all faithful gradients
MIB = 2 ** 20
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
TRAIN_MAC_FACTOR = 3  # forward + backward (2x forward)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

# glibc mallopt parameters and the environment variables that set them in a child
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
ALLOCATORS = {
    "tuned": {"MALLOC_MMAP_MAX_": 0, "MALLOC_TRIM_THRESHOLD_": 64 * 2 ** 30},
    "default": {},
}


@dataclass(frozen=True)
class Variant:
    """One path to run the network by: a config, and optionally autocast or torch.compile."""

    name: str
    config: CFINConfig
    amp: str | None = None
    compile: bool = False
    tf32: bool = False
    compile_mode: str = "default"

    @property
    def exact(self) -> bool:
        """Whether it must compute the faithful function (float32, no compiler rewrites)."""
        return self.amp is None and not self.compile and not self.tf32

    @property
    def precision(self) -> str:
        """The arithmetic its matmuls and convolutions run in: float32, tf32, bf16 or fp16."""
        return self.amp or ("tf32" if self.tf32 else "float32")


@dataclass
class BenchSpec:
    """What to compare: ``cfin bench`` arguments as data.

    Args:
        scale: 2, 3 or 4 (preset ``x{scale}``), or ``config``: any CFINConfig.
        lr_size: LR input (H, W); training default: 48 x 48 patches.
        batch: images per call (1 for inference, 16 for training by default).
        train: time a training step instead of an inference forward.
        device: a torch.device.
        runs, warmup: timed calls per path, and untimed ones first.
        threads: CPU threads (None: torch's default).
        allocator: "tuned" or "default" (module docstring).
        grad_checkpoint: add a ``fast+checkpoint`` path (training).
        amp: add a ``fast+<amp>`` autocast path ("bf16" or "fp16").
        compile: add a ``fast+compile`` path (torch.compile).
        compile_mode: its ``torch.compile`` mode (:data:`COMPILE_MODES`; "reduce-overhead"
            replays CUDA graphs on a GPU, where a small step can be bound by launching kernels).
        tf32: add a ``fast+tf32`` path (CUDA only: TF32 matmuls and cuDNN convolutions).
        memory: measure peak memory.
        memory_runs: CPU peak-memory children per path; the median is reported (one child's
            peak RSS moves by up to 30% from run to run with the heap's layout).
        weights: an official state_dict to load (default: random weights, seed 0).
        mask_eval: override the config's Gumbel mask at inference ("sample", the official
            default, draws noise every forward; "argmax" does not).
        breakdown: also time every aten op of each path's call, grouped by kind
            (:mod:`cfin.complexity.breakdown`; not for compiled paths).
    """

    scale: int = 4
    config: CFINConfig | None = None
    lr_size: tuple[int, int] | None = None
    batch: int | None = None
    train: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    runs: int = 5
    warmup: int = 1
    threads: int | None = None
    allocator: str = "tuned"
    grad_checkpoint: bool = False
    amp: str | None = None
    compile: bool = False
    compile_mode: str = "default"
    tf32: bool = False
    memory: bool = True
    memory_runs: int = 3
    weights: str | None = None
    mask_eval: str | None = None
    breakdown: bool = False

    def base_config(self) -> CFINConfig:
        cfg = self.config if self.config is not None else preset(self.scale)
        return cfg if self.mask_eval is None else cfg.replace(mask_eval=self.mask_eval)


def set_allocator(name: str) -> dict:
    """Apply an allocator setting to this process (mallopt) and to its future children (env)."""
    if name not in ALLOCATORS:
        raise choice_error("allocator", name, ALLOCATORS)
    settings = ALLOCATORS[name]
    applied = False
    if settings:
        libc_name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(libc_name) if libc_name else None
            mallopt = getattr(libc, "mallopt", None)
        except OSError:
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            applied = bool(mallopt(_M_MMAP_MAX, settings["MALLOC_MMAP_MAX_"])) and \
                bool(mallopt(_M_TRIM_THRESHOLD, -1))  # -1: never trim (the value is a C int)
        os.environ.update({k: str(v) for k, v in settings.items()})
    return {"name": name, "settings": {k: str(v) for k, v in settings.items()},
            "applied_in_process": applied, "note": "same settings for every path"}


def paths_for(spec: BenchSpec) -> list[Variant]:
    """faithful, fast, and the optional extra paths the spec asks for."""
    base = spec.base_config()
    faithful, fast = base.with_impl("faithful"), base.with_impl("fast")
    paths = [Variant("faithful", faithful), Variant("fast", fast)]
    if spec.grad_checkpoint:
        if not spec.train:
            raise CFINError("grad_checkpoint only changes training (it recomputes activations in backward): "
                            "use it with train=True (--train)")
        paths.append(Variant("fast+checkpoint", fast.replace(grad_checkpoint=True)))
    if spec.amp is not None:
        if spec.amp not in AMP_DTYPES:
            raise choice_error("amp dtype", spec.amp, AMP_DTYPES)
        paths.append(Variant(f"fast+{spec.amp}", fast, amp=spec.amp))
    if spec.tf32:
        if spec.device.type != "cuda":
            raise CFINError(f"tf32 is a CUDA option (TF32 tensor-core arithmetic), got device {spec.device}")
        paths.append(Variant("fast+tf32", fast, tf32=True))
    if spec.compile_mode not in COMPILE_MODES:
        raise choice_error("torch.compile mode", spec.compile_mode, COMPILE_MODES)
    if spec.compile:
        paths.append(Variant("fast+compile", fast, compile=True, compile_mode=spec.compile_mode))
    return paths


def peak_kernels(device: torch.device, small: bool = False, precision: str = "float32") -> dict:
    """The two reference kernels of :func:`peak_throughput`: name -> (call, multiply-adds, shape)."""
    cuda = device.type == "cuda"
    n = 512 if small else (8192 if cuda else 2048)
    conv_shape = (1, 64, 32, 32) if small else ((32, 256, 128, 128) if cuda else (1, 256, 90, 160))
    dtype = AMP_DTYPES.get(precision, torch.float32)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    c = conv_shape[1]
    x = torch.randn(conv_shape, generator=gen).to(device, dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(c, c, 3, 3, generator=gen).to(device, dtype)
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
        with _kernel_mode(device, precision):
            fn()
            best = min(_timed(fn, device) for _ in range(repeats))
        out[name] = {"macs_per_s": macs / best, "shape": shape, "best_s": best}
    out["peak_macs_per_s"] = max(v["macs_per_s"] for v in out.values())
    out["precision"] = precision
    return out


@contextlib.contextmanager
def _kernel_mode(device: torch.device, precision: str = "float32"):
    """How a reference kernel runs: no autograd, TF32 only for the tf32 precision."""
    with torch.inference_mode(), _tf32(device, precision == "tf32"):
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


def _timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
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


def build_models(paths: list[Variant], device: torch.device, weights: str | None = None) -> dict:
    """One CFIN per path, all with the faithful path's weights (seed 0, or ``weights``)."""
    from cfin.models import CFIN

    reference = paths[0].config
    if weights is not None:
        from cfin.official import convert_official, read_state_dict

        state = convert_official(read_state_dict(weights), reference, source=str(weights)).state_dict
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            state = CFIN(reference).state_dict()
    models = {}
    for p in paths:
        model = CFIN(p.config)
        model.load_state_dict(state)
        models[p.name] = model.to(device)
    return models


@contextlib.contextmanager
def _tf32(device: torch.device, on: bool):
    """TF32 for CUDA matmuls and cuDNN convolutions on or off inside, restored after."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextlib.contextmanager
def _arithmetic(path: Variant, device: torch.device):
    """The path's arithmetic: its autocast dtype, if any, and TF32 on CUDA only where it asks."""
    with _tf32(device, path.tf32):
        if path.amp is None:
            yield
        else:
            with torch.autocast(device.type, dtype=AMP_DTYPES[path.amp]):
                yield


def _inputs(spec: BenchSpec, config: CFINConfig):
    lr = spec.lr_size
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((spec.batch, 3, *lr), generator=gen) * config.rgb_range
    y = torch.rand((spec.batch, 3, lr[0] * config.scale, lr[1] * config.scale), generator=gen) * config.rgb_range
    return x.to(spec.device), y.to(spec.device)


def runners(paths: list[Variant], models: dict, dynamic: bool | None = None) -> dict:
    """What each path calls: its model, or that model through torch.compile.

    The compiled model draws its Gumbel noise from the eager random stream (inductor's
    ``fallback_random``), so that it can be checked against the faithful path.
    """
    if any(p.compile for p in paths):
        import torch._inductor.config as inductor_config

        inductor_config.fallback_random = True
    return {p.name: torch.compile(models[p.name], dynamic=dynamic, mode=p.compile_mode) if p.compile
            else models[p.name] for p in paths}


def _callable(path: Variant, model, runner, x, y, train: bool):
    """The timed call of one path: an inference forward or a training step."""
    if not train:
        model.eval()

        def infer():
            with torch.inference_mode(), _arithmetic(path, x.device):
                return runner(x)
        return infer
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-8)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with _arithmetic(path, x.device):
            out = runner(x)
        F.l1_loss(out.float(), y).backward()
        optimizer.step()
    return step


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
                noise = _differences(_one_pass(p, models[p.name], run[p.name], x, y, train, seed), ref)
            results[p.name] = {"float32_noise": {**noise, "method": f"the faithful path with {method}"}}
        else:
            entry = _differences(got, ref)
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
        with torch.set_grad_enabled(train), _arithmetic(path, x.device):
            out = runner(x).float()
    grads = None
    if train:
        F.l1_loss(out, y).backward()
        grads = [q.grad.detach().clone() if q.grad is not None else torch.zeros_like(q) for q in model.parameters()]
        model.zero_grad(set_to_none=True)
    return out.detach(), grads


def _differences(got, ref) -> dict:
    """Largest absolute output difference and, with gradients, their relative difference."""
    (out, grads), (ref_out, ref_grads) = got, ref
    entry = {"max_abs_diff": float((out - ref_out).abs().max())}
    if grads is not None:
        diff = torch.sqrt(sum((g - r).double().square().sum() for g, r in zip(grads, ref_grads)))
        norm = torch.sqrt(sum(r.double().square().sum() for r in ref_grads))
        entry["grad_rel_diff"] = float(diff / norm)
    return entry


def time_paths(calls: dict, runs: int, warmup: int, device: torch.device, progress: bool = True,
               probe=None) -> tuple[dict, list]:
    """Warm each call up, then time them in turns (call by call); seconds per call.

    ``probe``: a reference kernel, timed before the first round and after every round
    (``runs + 1`` times, returned second; empty without one), so that each round has the
    machine's speed measured on either side of it.
    """
    times = {name: [] for name in calls}
    probes = []
    bar = tqdm(total=len(calls) * (warmup + runs), desc="bench", unit="call", disable=not progress, leave=False)
    for name, fn in calls.items():
        for _ in range(warmup):
            bar.set_postfix_str(f"warm-up {name}")
            _timed(fn, device)
            bar.update()
    if probe is not None:
        _timed(probe, device)  # its warm-up
        probes.append(_timed(probe, device))
    for _ in range(runs):
        for name, fn in calls.items():
            bar.set_postfix_str(name)
            times[name].append(_timed(fn, device))
            bar.update()
        if probe is not None:
            probes.append(_timed(probe, device))
    bar.close()
    return times, probes


def round_rates(probe_s: list[float], probe_macs: int) -> list[float]:
    """Each round's MAC rate: the reference kernel's faster time of the two that bracket the
    round (``probe_s[r]``, ``probe_s[r + 1]``, from :func:`time_paths`)."""
    return [probe_macs / min(before, after) for before, after in zip(probe_s, probe_s[1:])]


def paired_floor(times_s: list[float], rates: list[float], macs: int) -> dict:
    """Each round's call over the floor at the machine's speed of that round (``rates``:
    :func:`round_rates`; a round's floor is ``macs`` at its rate). A host whose speed drifts
    (a shared virtual machine) moves the call and its floor together, where ``over_floor``
    sets the median call against the best rate of the whole run."""
    ratios = [t / (macs / rate) for t, rate in zip(times_s, rates)]
    return {"over_floor_paired": statistics.median(ratios), "over_floor_rounds": ratios}


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


def run_bench(spec: BenchSpec, progress: bool = True) -> dict:
    """Compare the paths of ``spec`` (module docstring); a JSON-ready report."""
    from cfin.complexity.conventions import TRAIN_BATCH, TRAIN_PATCH, check_lr_size, default_lr_size
    from cfin.provenance import environment

    spec = copy.copy(spec)
    base = spec.base_config()
    if spec.lr_size is None:
        spec.lr_size = (TRAIN_PATCH, TRAIN_PATCH) if spec.train else default_lr_size(base.scale)
    spec.lr_size = check_lr_size(spec.lr_size, base.scale)
    if spec.batch is None:
        spec.batch = TRAIN_BATCH if spec.train else 1
    for name, value, low in (("runs", spec.runs, 1), ("warmup", spec.warmup, 0), ("batch", spec.batch, 1),
                             ("memory_runs", spec.memory_runs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise CFINError(f"{name} must be an int >= {low}, got {value!r}")
    if spec.device.type not in ("cpu", "cuda"):
        raise CFINError(f"cfin bench runs on cpu or cuda, got {spec.device}")
    if spec.threads is not None:
        if spec.threads < 1:
            raise CFINError(f"threads must be >= 1, got {spec.threads}")
        torch.set_num_threads(spec.threads)
    cuda = spec.device.type == "cuda"
    allocator = set_allocator(spec.allocator) if not cuda else {"name": "cuda caching allocator"}
    if cuda:
        torch.backends.cudnn.benchmark = True
    if spec.compile:  # the first calls compile; with CUDA graphs the next records, the one after replays
        spec.warmup = max(spec.warmup, 3 if spec.compile_mode != "default" else 2)

    paths = paths_for(spec)
    models = build_models(paths, spec.device, spec.weights)
    x, y = _inputs(spec, base)
    run = runners(paths, models)
    equality = compare(paths, models, run, x, y, spec.train)
    calls = {p.name: _callable(p, models[p.name], run[p.name], x, y, spec.train) for p in paths}

    peak = peak_throughput(spec.device)  # before and after the paths: the best of both
    probe_name = max(("matmul", "conv3x3"), key=lambda k: peak[k]["macs_per_s"])
    probe, probe_macs, _ = peak_kernels(spec.device)[probe_name]

    def timed_probe():
        with _kernel_mode(spec.device):
            return probe()
    times, probe_s = time_paths(calls, spec.runs, spec.warmup, spec.device, progress, timed_probe)
    del probe, timed_probe
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


def set5_psnr_delta(spec: BenchSpec, progress: bool = True) -> dict:
    """Set5 PSNR (Y, MATLAB conventions) of the fast path and of each result-changing option.

    Uses ``../shared/datasets/benchmark/Set5``; the weights are ``spec.weights`` (an official
    state_dict) or the random seed-0 weights, whose PSNR is meaningless in itself but whose
    difference between paths still measures the numerical drift an option causes.
    """
    from cfin.data.layouts import open_dataset
    from cfin.evaluate import evaluate_model
    from cfin.paths import shared_dir

    root = shared_dir()
    if root is None or not (root / "datasets" / "benchmark" / "Set5").is_dir():
        raise CFINError("Set5 not found: set CFIN_SHARED to the folder holding datasets/benchmark/Set5/HR")
    paths = [p for p in paths_for(spec) if p.name != "faithful" and "checkpoint" not in p.name]
    models = build_models([paths_for(spec)[0], *paths], spec.device, spec.weights)
    data = open_dataset(root / "datasets", "Set5", spec.base_config().scale)
    psnr = {}
    run = runners(paths, models, dynamic=True)  # five image sizes: one graph for all
    for p in paths:
        models[p.name].eval()
        runner = run[p.name]

        def fn(x, runner=runner, p=p):
            with _arithmetic(p, x.device):
                return runner(x).float()
        psnr[p.name] = evaluate_model(fn, spec.base_config().scale, [data], device=spec.device,
                                      progress=progress)["Set5"]["psnr"]
    return {"psnr": psnr, "delta_db": {k: v - psnr["fast"] for k, v in psnr.items() if k != "fast"},
            "weights": spec.weights or "random (seed 0)", "tolerance_db": 0.01}


def render(report: dict) -> str:
    """The report as a text table."""
    env = report["environment"]
    lines = [f"cfin bench: x{report['scale']} {report['mode']} (mask_eval {report['mask_eval']}), "
             f"batch {report['batch']} x 3 x "
             f"{report['lr_size'][0]}x{report['lr_size'][1]} LR, {report['runs']} runs after "
             f"{report['warmup']} warm-up, {env['device_name']}, torch {env['torch']}",
             f"network: {report['network']}",
             f"allocator: {report['allocator']['name']} {report['allocator'].get('settings', '')}",
             f"{'path':<18}{'median s':>10}{'IQR s':>9}{'min s':>9}{'peak MB':>10}{'x floor':>9}  equality"]
    for name, e in report["paths"].items():
        eq = "reference"
        if "max_abs_diff" in e:
            eq = f"max|diff| {e['max_abs_diff']:.2e}"
            if "grad_rel_diff" in e:
                eq += f", grad rel {e['grad_rel_diff']:.2e}"
            eq += "" if e["equal"] else "  (differs: not the same function at these tolerances)"
        peak = "-" if e.get("peak_mb") is None else f"{e['peak_mb']:.0f}"
        lines.append(f"{name:<18}{e['median_s']:>10.3f}{e['iqr_s']:>9.3f}{e['min_s']:>9.3f}{peak:>10}"
                     f"{e['over_floor']:>9.2f}  {eq}")
    fl = report["floor"]
    lines.append(f"compute floor: {fl['multi_adds'] / 1e9:.1f}G MACs / {fl['peak']['peak_macs_per_s'] / 1e9:.0f}G "
                 f"MAC/s = {report['floor_s']:.3f} s (matmul {fl['peak']['matmul']['shape']}: "
                 f"{fl['peak']['matmul']['macs_per_s'] / 1e9:.0f}G MAC/s; conv3x3 {fl['peak']['conv3x3']['shape']}: "
                 f"{fl['peak']['conv3x3']['macs_per_s'] / 1e9:.0f}G MAC/s)")
    paired = fl.get("paired")
    if paired and paired["macs_per_s_rounds"]:
        rates = paired["macs_per_s_rounds"]
        over = ", ".join(f"{name} {e['over_floor_paired']:.2f}x" for name, e in report["paths"].items()
                         if "over_floor_paired" in e)
        lines.append(f"paired floor ({paired['kernel']} timed around each round, {min(rates) / 1e9:.0f}-"
                     f"{max(rates) / 1e9:.0f}G MAC/s): median over rounds {over}")
    noise = report["paths"]["faithful"].get("float32_noise")
    if noise:
        lines.append(f"float32 noise ({noise['method']}): max|diff| {noise['max_abs_diff']:.2e}"
                     + (f", grad rel {noise['grad_rel_diff']:.2e}" if "grad_rel_diff" in noise else ""))
    for name, e in report["paths"].items():
        if e.get("precision", "float32") != "float32":
            own = fl["by_precision"][e["precision"]]
            lines.append(f"{name}: {e['precision']} peak {own['peak_macs_per_s'] / 1e9:.0f}G MAC/s, floor "
                         f"{own['floor_s']:.4f} s; {e['over_own_floor']:.2f}x its own floor")
    for name, e in report["paths"].items():
        if "breakdown" in e:
            lines.extend(render_breakdown(name, e["breakdown"], fl["peak"]["peak_macs_per_s"]))
        elif "breakdown_skipped" in e:
            lines.append(f"{name}: no breakdown ({e['breakdown_skipped']})")
    mem = "n/a" if report["memory_ratio"] is None else f"{report['memory_ratio']:.2f}"
    lines.append(f"speedup (faithful / fast): {report['speedup']:.2f}x; memory fast / faithful: {mem}")
    if report.get("tensor_memory_ratio") is not None:
        held = ", ".join(f"{name} {e['tensor_peak_mb']:.0f}" for name, e in report["paths"].items()
                         if e.get("tensor_peak_mb") is not None)
        lines.append(f"live tensors at the peak (MB, torch's CPU allocator, a second call): {held}; "
                     f"fast / faithful: {report['tensor_memory_ratio']:.2f}")
    if "checkpoint_memory_ratio" in report:
        ck = report["checkpoint_memory_ratio"]
        ckt = report.get("checkpoint_tensor_memory_ratio")
        lines.append(f"fast+checkpoint: speedup {report['checkpoint_speedup']:.2f}x, memory / faithful: "
                     f"{'n/a' if ck is None else f'{ck:.2f}'}"
                     + ("" if ckt is None else f" (live tensors {ckt:.2f})"))
    return "\n".join(lines)
