"""What each path runs: its model with the shared weights, its input, its arithmetic, and the
timed call (an inference forward, or a training step: forward, L1 loss, backward, Adam step).

TF32 is off for every path but ``fast+tf32``: PyTorch's default runs cuDNN convolutions in
TF32 (10-bit mantissa), which is not the float32 function the equality targets are about.
A compiled path draws its Gumbel noise from the eager random stream (inductor's
``fallback_random``), so that it can be checked against the faithful path.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from cfin.bench.spec import AMP_DTYPES, BenchSpec, Variant
from cfin.config import CFINConfig
from cfin.device import tf32_mode


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
def arithmetic(path: Variant, device: torch.device):
    """The path's arithmetic: its autocast dtype, if any, and TF32 on CUDA only where it asks."""
    with tf32_mode(device, path.tf32):
        if path.amp is None:
            yield
        else:
            with torch.autocast(device.type, dtype=AMP_DTYPES[path.amp]):
                yield


def bench_inputs(spec: BenchSpec, config: CFINConfig):
    """The LR input and an HR target (for the training step's loss), seeded, in [0, rgb_range]."""
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


def timed_call(path: Variant, model, runner, x, y, train: bool):
    """The timed call of one path: an inference forward or a training step."""
    if not train:
        model.eval()

        def infer():
            with torch.inference_mode(), arithmetic(path, x.device):
                return runner(x)
        return infer
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-8)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with arithmetic(path, x.device):
            out = runner(x)
        F.l1_loss(out.float(), y).backward()
        optimizer.step()
    return step
