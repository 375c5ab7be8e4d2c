"""Our checkpoint format: ``{"format", "config", "state_dict", "metadata"}``, loaded weights-only."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import torch

from cfin.atomic import atomic_torch_save
from cfin.config import CFINConfig
from cfin.errors import CFINError
from cfin.models import CFIN
from cfin.paths import existing_file, output_file

FORMAT = "cfin-bench/1"


def _metadata() -> dict:
    """Provenance stored with every checkpoint: versions, git commit, time."""
    from cfin.provenance import git_commit

    return {"torch": str(torch.__version__), "git_commit": git_commit(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def save_checkpoint(model: CFIN, path: str | Path, **metadata) -> Path:
    """Write ``model`` (state dict + config + metadata) atomically to ``path``."""
    model = getattr(model, "module", model)  # unwrap DDP
    if not isinstance(getattr(model, "config", None), CFINConfig):
        raise CFINError(f"cfin.save writes a CFIN (a model with a CFINConfig), got {type(model).__name__}")
    output_file(path, "checkpoint path")
    obj = {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": {**_metadata(), **metadata},
    }
    return atomic_torch_save(path, obj)


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """The checkpoint dict at ``path``, checked to be ours and to hold a config and a state dict."""
    path = existing_file(path, "checkpoint")
    if isinstance(map_location, (str, torch.device)):
        from cfin.device import resolve_device

        map_location = resolve_device(map_location)  # an unknown device is named as such, not as the file
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CFINError(f"{path} is not a readable cfin checkpoint ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        hint = " (it looks like an official state_dict: use load_official / --official)" \
            if isinstance(obj, dict) and "UP1.0.weight" in obj else ""
        raise CFINError(f"{path} is not a {FORMAT} checkpoint{hint}; write one with `cfin convert` or cfin.save")
    for key, holds in (("config", "CFINConfig fields"), ("state_dict", "tensors")):
        if key not in obj:
            raise CFINError(f"{FORMAT} checkpoint {path} has no {key!r} entry (a dict of {holds})")
        if not isinstance(obj[key], dict):
            raise CFINError(f"{FORMAT} checkpoint {path}: its {key!r} entry is a {type(obj[key]).__name__}, "
                            f"expected a dict of {holds}")
    return obj


def load_checkpoint(path: str | Path, map_location="cpu", impl: str | None = None) -> CFIN:
    """A CFIN in eval mode from our format; errors name a missing, unexpected or mis-shaped key.

    ``impl``: compute the saved network by that implementation of :data:`cfin.config.IMPLS`
    ("faithful" or "fast": the same function and state dict); None keeps the saved config's.
    """
    obj = read_checkpoint(path, map_location)
    try:
        config = CFINConfig.from_dict(obj["config"])
    except CFINError as e:
        raise CFINError(f"checkpoint {path}: {e}") from None
    model = CFIN(config if impl is None else config.with_impl(impl))
    check_state_dict(model, obj["state_dict"], source=str(path))
    model.load_state_dict(obj["state_dict"])
    model.metadata = obj.get("metadata", {})
    return model.eval()


def check_state_dict(model: torch.nn.Module, sd: dict, source: str) -> None:
    expected = model.state_dict()
    for k, v in sd.items():
        if k not in expected:
            raise CFINError(f"unexpected key {k!r} in {source}")
        if tuple(v.shape) != tuple(expected[k].shape):
            raise CFINError(f"key {k!r} in {source} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}")
    missing = [k for k in expected if k not in sd]
    if missing:
        raise CFINError(f"{source} is missing {len(missing)} key(s), first: {missing[0]!r}")
