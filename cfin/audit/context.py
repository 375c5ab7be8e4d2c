"""What an audit measures on: the weights, the model built from them, probe images and Set5.

Weights, in order of preference: an official ``model_best_x{s}.pt`` (``weights``), the
official-format random-weight fixture in ``../shared/reference`` (numbers that depend on
trained weights are then labelled "random weights"), or freshly initialised weights.
"""
from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from cfin.config import IMPLS, CFINConfig, preset
from cfin.device import resolve_device
from cfin.errors import CFINError
from cfin.models import CFIN
from cfin.official import Conversion, convert_official, read_state_dict
from cfin.paths import shared_dir, shown


# the official computation for every "same function, faster" switch of CFINConfig
_OFFICIAL_FORM = {**IMPLS["faithful"], "grad_checkpoint": False}


def official_form(cfg: CFINConfig) -> CFINConfig:
    """``cfg`` computing exactly as the official code does (no fast-path switches)."""
    known = {f.name for f in dataclasses.fields(cfg)}
    return cfg.replace(**{k: v for k, v in _OFFICIAL_FORM.items() if k in known})


class AuditContext:
    """The model, weights and images shared by every finding of one audit.

    Args:
        weights: an official state_dict file; None picks the fixture or fresh weights.
        scale: 2, 3 or 4.
        device: ``cpu``, ``cuda``, ``cuda:N``; default CUDA when present.
        data_root: a folder with ``benchmark/Set5/HR`` (or ``Set5/HR``); default the
            shared Set5, else scikit-image's bundled photographs.
        seeds: how many Gumbel seeds the stochasticity finding draws.
        progress: show progress bars.
    """

    def __init__(self, weights: str | Path | None = None, scale: int = 4, device=None,
                 data_root: str | Path | None = None, seeds: int = 5, progress: bool = True):
        if scale not in (2, 3, 4):
            raise CFINError(f"audit scale must be 2, 3 or 4, got {scale!r}")
        if int(seeds) < 2:
            raise CFINError(f"the audit needs at least 2 Gumbel seeds to compare, got {seeds}")
        self.scale = int(scale)
        self.device = resolve_device(device)
        self.seeds = int(seeds)
        self.progress = progress
        self.data_root = Path(data_root) if data_root is not None else None
        self.config: CFINConfig = official_form(preset(self.scale))
        shared = shared_dir()
        fixture = shared / "reference" / f"official_x{self.scale}_random_state_dict.pt" if shared else None
        self.official_sd: dict[str, torch.Tensor] | None = None
        if weights is not None:
            self.official_sd = read_state_dict(weights)
            self.kind = "official"
            self.label = f"official weights ({Path(weights).name})"
            self.source = str(weights)
        elif fixture is not None and fixture.is_file():
            self.official_sd = read_state_dict(fixture)
            self.kind = "fixture"
            self.label = f"random weights (official-format fixture {fixture.name})"
            self.source = str(fixture)
        else:
            self.kind = "init"
            self.label = "random weights (freshly initialised, torch.manual_seed(0))"
            self.source = "init"
        self.io_path = (shared / "reference" / f"official_x{self.scale}_io.pt"
                        if self.kind == "fixture" else None)

    # ----------------------------------------------------------------- weights and models
    @cached_property
    def conversion(self) -> Conversion | None:
        """The official state_dict mapped onto our keys (None for fresh weights)."""
        if self.official_sd is None:
            return None
        return convert_official(self.official_sd, self.config, source=self.source)

    @cached_property
    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.conversion is not None:
            return self.conversion.state_dict
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return CFIN(self.config).state_dict()

    def model(self, mask_eval: str = "argmax", **changes) -> CFIN:
        """A fresh CFIN in eval mode on the audit's device holding the audit's weights."""
        cfg = self.config.replace(mask_eval=mask_eval, **changes)
        m = CFIN(cfg)
        m.load_state_dict(self.state_dict)
        return m.to(self.device).eval()

    @cached_property
    def golden(self) -> dict[str, torch.Tensor] | None:
        """The official model's outputs on a fixed input (fixture weights only)."""
        if self.io_path is None or not self.io_path.is_file():
            return None
        return torch.load(self.io_path, map_location="cpu", weights_only=True)

    # ----------------------------------------------------------------------------- images
    @cached_property
    def dataset(self):
        """Set5 at the audit's scale (LR by MATLAB bicubic), or the bundled photographs."""
        from cfin.data import BenchmarkSet, EmbeddedSet

        roots = [self.data_root] if self.data_root is not None else []
        shared = shared_dir()
        if self.data_root is None and shared is not None:
            roots.append(shared / "datasets")
        for root in roots:
            try:
                data = BenchmarkSet(root, "Set5", self.scale)
                data.check_sizes()
                return data
            except CFINError:
                if root == self.data_root:
                    raise
        return EmbeddedSet(self.scale)

    @property
    def data_label(self) -> str:
        d = self.dataset
        if d.name == "Set5":
            return f"Set5 ({len(d)} images, LR by MATLAB bicubic x{self.scale}; {shown(d.folder)})"
        return f"{d.name} (scikit-image photographs; no Set5 found: not comparable with published numbers)"

    @cached_property
    def samples(self):
        return [s for s in self.dataset]

    def probe(self, size: int = 24) -> torch.Tensor:
        """A 1 x 3 x size x size LR crop of a real image (the first Set5 image's centre), 0-255."""
        lr = self.samples[0].lr
        h, w = lr.shape[:2]
        size = min(size, h, w)
        y, x = (h - size) // 2, (w - size) // 2
        crop = np.ascontiguousarray(lr[y:y + size, x:x + size])
        return torch.from_numpy(crop).permute(2, 0, 1)[None].float().to(self.device)


def lr_tensor(img: np.ndarray, device) -> torch.Tensor:
    """H x W x 3 uint8 -> 1 x 3 x H x W float on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().to(device)


def sr_image(t: torch.Tensor) -> np.ndarray:
    """1 x 3 x H x W float -> H x W x 3 float64 array (metrics quantise it)."""
    return t[0].detach().permute(1, 2, 0).to("cpu", torch.float64).numpy()


def golden_diff(ctx: AuditContext, model: torch.nn.Module) -> float | None:
    """Max |model(golden lr) - official output| (argmax masks), None without the fixture's golden outputs."""
    if ctx.golden is None:
        return None
    with torch.no_grad():
        out = model(ctx.golden["lr"].to(ctx.device)).cpu()
    return float((out - ctx.golden["sr_mask_argmax"]).abs().max())


def golden_compare(ctx: AuditContext, code_model, paper_model, meas: dict, factor: float = 100.0) -> bool:
    """Add both readings' distance to the official outputs to ``meas``.

    True when the paper's reading is more than ``factor`` times farther from them than the
    code's (or when there are no golden outputs).
    """
    code, paper = golden_diff(ctx, code_model), golden_diff(ctx, paper_model)
    if code is None:
        return True
    meas["golden_max_abs_diff_code_reading"] = code
    meas["golden_max_abs_diff_paper_reading"] = paper
    return paper > factor * code
