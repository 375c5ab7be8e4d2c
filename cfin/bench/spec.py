"""What ``cfin bench`` compares: the paths (:class:`Variant`) a :class:`BenchSpec` asks for.

The two computations of one network (:data:`cfin.config.IMPLS`) are always there: ``faithful``
and ``fast``. Options that change results (``amp="bf16"``: autocast; ``tf32=True``: TF32
matmuls and convolutions on CUDA; ``compile=True``: ``torch.compile`` in ``compile_mode``) are
extra paths beside ``fast``, never the default; ``grad_checkpoint`` adds ``fast+checkpoint``.
The equality targets: outputs within :data:`OUT_ATOL` of the faithful path (0-255 scale),
gradients within a relative :data:`GRAD_RTOL`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cfin.config import CFINConfig, preset
from cfin.errors import CFINError, choice_error

OUT_ATOL = 1e-3       # outputs, 0-255 scale
GRAD_RTOL = 1e-4      # gradients, relative to the norm of all faithful gradients
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


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
    """What to compare: ``cfin bench`` arguments as data, every field checked when it is built.

    Args:
        scale: 2, 3 or 4 (preset ``x{scale}``), or ``config``: any CFINConfig.
        lr_size: LR input (H, W); training default: 48 x 48 patches.
        batch: images per call (1 for inference, 16 for training by default).
        train: time a training step instead of an inference forward.
        device: a torch.device.
        runs, warmup: timed calls per path, and untimed ones first.
        threads: CPU threads (None: torch's default).
        allocator: "tuned" or "default" (:mod:`cfin.bench.allocator`).
        grad_checkpoint: add a ``fast+checkpoint`` path (training).
        amp: add a ``fast+<amp>`` autocast path ("bf16" or "fp16").
        compile: add a ``fast+compile`` path (torch.compile).
        compile_mode: its ``torch.compile`` mode (:data:`COMPILE_MODES`; "reduce-overhead"
            replays CUDA graphs on a GPU, where a small step can be bound by launching kernels).
        tf32: add a ``fast+tf32`` path (CUDA only: TF32 matmuls and cuDNN convolutions).
        memory: measure peak memory.
        memory_runs: CPU peak-memory children per path; the median is reported (one child's
            peak RSS moves from run to run with the heap's layout).
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

    def __post_init__(self):
        for name, low in (("runs", 1), ("warmup", 0), ("batch", 1), ("memory_runs", 1)):
            value = getattr(self, name)
            if name == "batch" and value is None:  # run_bench's default: 1, or 16 with train
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise CFINError(f"{name} must be an int >= {low}, got {value!r}")
        if self.device.type not in ("cpu", "cuda"):
            raise CFINError(f"cfin bench runs on cpu or cuda, got {self.device}")
        if self.threads is not None and self.threads < 1:
            raise CFINError(f"threads must be >= 1, got {self.threads}")
        if self.grad_checkpoint and not self.train:
            raise CFINError("grad_checkpoint only changes training (it recomputes activations in backward): "
                            "use it with train=True (--train)")
        if self.amp is not None:
            if self.amp not in AMP_DTYPES:
                raise choice_error("amp dtype", self.amp, AMP_DTYPES)
            if self.amp == "fp16" and self.device.type != "cuda":
                raise CFINError(f"amp fp16 is a CUDA option (a CPU has no fast float16 kernels: the speed floor's "
                                f"float16 matmul alone runs for minutes), got device {self.device}; use amp bf16")
        if self.tf32 and self.device.type != "cuda":
            raise CFINError(f"tf32 is a CUDA option (TF32 tensor-core arithmetic), got device {self.device}")
        if self.compile_mode not in COMPILE_MODES:
            raise choice_error("torch.compile mode", self.compile_mode, COMPILE_MODES)

    def base_config(self) -> CFINConfig:
        cfg = self.config if self.config is not None else preset(self.scale)
        return cfg if self.mask_eval is None else cfg.replace(mask_eval=self.mask_eval)


def paths_for(spec: BenchSpec) -> list[Variant]:
    """faithful, fast, and the optional extra paths the spec asks for."""
    base = spec.base_config()
    faithful, fast = base.with_impl("faithful"), base.with_impl("fast")
    paths = [Variant("faithful", faithful), Variant("fast", fast)]
    if spec.grad_checkpoint:
        paths.append(Variant("fast+checkpoint", fast.replace(grad_checkpoint=True)))
    if spec.amp is not None:
        paths.append(Variant(f"fast+{spec.amp}", fast, amp=spec.amp))
    if spec.tf32:
        paths.append(Variant("fast+tf32", fast, tf32=True))
    if spec.compile:
        paths.append(Variant("fast+compile", fast, compile=True, compile_mode=spec.compile_mode))
    return paths
