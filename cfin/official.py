"""Official CFIN checkpoints (IVIPLab/CFIN ``model_best_x{2,3,4}.pt``) -> our CFIN.

The official state_dict is mapped key by key (:func:`official_key`); the parameters the
official code registers but never uses (each CGM's ``weight``, ``bias``, ``bias_conv``, and
the outer ``conv_trans_2.res_scale``/``x_scale``) are dropped and listed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cfin.config import SCALES, CFINConfig, preset
from cfin.errors import CFINError, choice_error
from cfin.models import CFIN
from cfin.paths import existing_file

# Registered by the official code, never read by its forward.
UNUSED = [
    re.compile(r"\.(to_qkv|fc1|fc2)\.(weight|bias|bias_conv)$"),
    re.compile(r"^conv_trans_2\.(res_scale|x_scale)\.scale$"),
]

# (pattern, replacement) applied in order to every used official key.
RULES = [
    (r"^conv_first_cnn\.", "head."),
    (r"^conv_after_body\.", "body_conv."),
    (r"^UP1\.0\.", "upsample.0."),
    (r"^conv_stright\.", "lr_conv."),
    (r"^UP2\.0\.", "lr_upsample.0."),
    (r"^conv_trans_2\.cnn_block\.", "body."),
    (r"^body\.rb_search(\d)\.", lambda m: f"body.convs.{int(m[1]) - 1}."),
    (r"^body\.trans_block(\d*)\.", lambda m: f"body.cfgts.{int(m[1] or 0)}."),
    (r"^body\.expand_block(\d*)\.conv_project\.", lambda m: f"body.expands.{int(m[1] or 0)}.0."),
    (r"^body\.squeeze_block(\d*)\.conv_project\.", lambda m: f"body.squeezes.{int(m[1] or 0)}.0."),
    # which learnable scalar multiplies which path was found against the golden outputs:
    # in the body and in RIFU ``res_scale`` scales the skip path, in CIAM the residual
    (r"^body\.res_scale\.", "body.scale_skip."),
    (r"^body\.x_scale\.", "body.scale_body."),
    # CIAM: k3, k4, k5 are the three RIFUs; k1 is the up/down-sampling branch
    (r"\.k3\.", ".rifu1."), (r"\.k4\.", ".rifu2."), (r"\.k5\.", ".rifu3."),
    (r"(\.rifu\d)\.k\.0\.", r"\1.conv1."), (r"(\.rifu\d)\.k1\.0\.", r"\1.conv2."),
    (r"(convs\.\d+)\.k1\.0\.", r"\1.up."), (r"(convs\.\d+)\.k1\.2\.", r"\1.down."),
    (r"(\.rifu\d)\.res_scale\.", r"\1.scale_skip."), (r"(\.rifu\d)\.x_scale\.", r"\1.scale_res."),
    (r"\.MaskPredictor\.", ".mask."), (r"\.CA\.conv\.", ".eca."),
    (r"\.res_scale\.", ".scale_res."), (r"\.x_scale\.", ".scale_skip."),
    # CFGT: attn is CGA1, attn1 is CGA2, mlp is IGP; the CGM's W is weight_conv
    (r"\.attn1\.", ".cga2."), (r"\.attn\.", ".cga1."), (r"(\.cga\d)\.weight$", r"\1.omega"),
    (r"\.to_qkv\.", ".qkv."), (r"\.mlp\.", ".igp."), (r"\.weight_conv$", ".weight"),
    (r"(\.norm\d)\.body\.", r"\1."),
    (r"\.weight_g$", ".parametrizations.weight.original0"),
    (r"\.weight_v$", ".parametrizations.weight.original1"),
]
_RULES = [(re.compile(p), r) for p, r in RULES]


def official_key(key: str) -> str | None:
    """Our key for an official key; None for a parameter the official forward never uses."""
    if any(p.search(key) for p in UNUSED):
        return None
    for pattern, repl in _RULES:
        key = pattern.sub(repl, key)
    return key


@dataclass
class Conversion:
    """The result of mapping an official state_dict: our state_dict and what was dropped."""

    state_dict: dict[str, torch.Tensor]
    dropped: list[str] = field(default_factory=list)

    @property
    def dropped_params(self) -> int:
        return self._dropped_numel

    _dropped_numel: int = 0


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state_dict with ``weights_only=True``; a clear error for anything else."""
    path = existing_file(path, "official state_dict")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle of arbitrary objects, not a torch file ...
        raise CFINError(f"{path} is not a readable PyTorch state_dict ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CFINError(f"{path} does not hold a state_dict (a dict of tensors); got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def official_scale(sd: dict[str, torch.Tensor]) -> int | None:
    """The scale an official state_dict was trained for, read off its upsampler width."""
    w = sd.get("UP1.0.weight")
    if w is None:
        return None
    s = round((w.shape[0] / 3) ** 0.5)
    return s if 3 * s * s == w.shape[0] else None


def convert_official(sd: dict[str, torch.Tensor], config: CFINConfig, source: str = "state_dict") -> Conversion:
    """Map an official state_dict onto ``CFIN(config)``'s keys; errors name the offending key."""
    found = official_scale(sd)
    if found is None:
        raise CFINError(f"{source} is not an official CFIN state_dict: no 'UP1.0.weight' of width 3*s^2 "
                        f"(first keys: {list(sd)[:3]})")
    if found != config.scale:
        raise CFINError(f"{source} is an x{found} checkpoint, but scale {config.scale} was asked for; "
                        f"use --scale {found} (or the x{config.scale} weights)")
    expected = CFIN(config).state_dict()
    out, dropped, dropped_numel = {}, [], 0
    for k, v in sd.items():
        ours = official_key(k)
        if ours is None:
            dropped.append(k)
            dropped_numel += v.numel()
            continue
        if ours not in expected:
            raise CFINError(f"unexpected key {k!r} in {source} (mapped to {ours!r}, which CFIN x{config.scale} "
                            f"does not have)")
        if tuple(v.shape) != tuple(expected[ours].shape):
            raise CFINError(f"key {k!r} in {source} has shape {tuple(v.shape)}, expected "
                            f"{tuple(expected[ours].shape)} for {ours!r}")
        out[ours] = v.to(expected[ours].dtype)
    missing = [k for k in expected if k not in out]
    if missing:
        raise CFINError(f"{source} is missing {len(missing)} key(s) CFIN x{config.scale} needs, "
                        f"first: {missing[0]!r} (ours)")
    conv = Conversion(out, dropped)
    conv._dropped_numel = dropped_numel
    return conv


def load_official(path: str | Path, scale: int, mask_eval: str = "sample", **changes) -> CFIN:
    """A ready CFIN in eval mode from an official state_dict for ``scale``.

    Args:
        path: the official ``model_best_x{s}.pt`` (or a file with the same keys).
        scale: 2, 3 or 4; a checkpoint of another scale is an error.
        mask_eval: "sample" (official: a hard Gumbel sample at inference) or "argmax".
        changes: further CFINConfig overrides (e.g. ``cgm_impl="conv"``).
    """
    if scale not in SCALES:
        raise choice_error("scale", scale, SCALES)
    cfg = preset(int(scale), mask_eval=mask_eval, **changes)
    conv = convert_official(read_state_dict(path), cfg, source=str(path))
    model = CFIN(cfg)
    model.load_state_dict(conv.state_dict)
    model.official_dropped = conv.dropped
    return model.eval()
