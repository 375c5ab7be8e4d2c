"""Released peer checkpoints -> the rebuilt networks, strictly.

``load(name, path, scale)`` reads the file with ``weights_only=True``, drops a ``module.``
prefix (DataParallel) and maps keys with the peer's ``key_map``, then requires every key the
network has and no other, each of its shape. Where the file does not fit, the error names
the first offending key and, when the file fits another scale or another peer exactly, says
which it looks like.
"""
from __future__ import annotations

from pathlib import Path

import torch

from cfin.errors import CFINError
from cfin.peers.registry import build, check_scale, names, spec

# Wrappers some training codes put around the state_dict (EDSR-style: none; BasicSR: params /
# params_ema; others: state_dict, model).
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors, ``weights_only=True``, unwrapped and without a ``module.`` prefix."""
    from cfin.paths import existing_file

    path = existing_file(path, "peer checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, a pickle of arbitrary objects, not a torch file
        raise CFINError(f"{path} is not a readable PyTorch state_dict ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    for key in WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CFINError(f"{path} does not hold a state_dict (a dict of tensors); got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _mapped(name: str, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    key_map = spec(name).key_map
    return sd if key_map is None else {key_map(k): v for k, v in sd.items()}


def _shapes(name: str, scale: int) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes of a peer at a scale, built on the meta device (nothing allocated)."""
    with torch.device("meta"):
        model = build(name, scale)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def mismatch(expected: dict[str, tuple[int, ...]], sd: dict[str, torch.Tensor]) -> str | None:
    """The first way ``sd`` fails to fit ``expected`` (missing, unexpected, mis-shaped key), or None."""
    missing = [k for k in expected if k not in sd]
    if missing:
        return f"missing {len(missing)} key(s), first {missing[0]!r}"
    unexpected = [k for k in sd if k not in expected]
    if unexpected:
        return f"unexpected {len(unexpected)} key(s), first {unexpected[0]!r}"
    for k, shape in expected.items():
        if tuple(sd[k].shape) != shape:
            return f"key {k!r} has shape {tuple(sd[k].shape)}, expected {shape}"
    return None


def identify(sd: dict[str, torch.Tensor], skip: tuple[str, int] | None = None) -> tuple[str, int] | None:
    """``(peer, scale)`` whose network the state_dict fits exactly, or None: the same peer's other
    scales first, then every other registered peer."""
    order = ([skip[0]] if skip else []) + [n for n in names() if not skip or n != skip[0]]
    for name in order:
        mapped = _mapped(name, sd)
        for scale in spec(name).scales:
            if (name, scale) != skip and mismatch(_shapes(name, scale), mapped) is None:
                return name, scale
    return None


def load(name: str, path: str | Path, scale: int = 4):
    """The peer ``name`` at ``scale`` with the released weights in ``path``, in eval mode.

    Strict: every tensor of the network comes from the file, and nothing else is in it. A
    missing, unexpected or mis-shaped tensor is one CFINError naming the key; a checkpoint of
    another scale or another method says which it looks like.
    """
    peer = spec(name)
    check_scale(peer, scale)
    sd = read_state_dict(path)
    mapped = _mapped(peer.name, sd)
    model = build(peer.name, scale)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problem = mismatch(expected, mapped)
    if problem is not None:
        other = identify(sd, skip=(peer.name, scale))
        looks = ""
        if other is not None:
            looks = (f"; it looks like an x{other[1]} {peer.title} checkpoint: use --scale {other[1]}"
                     if other[0] == peer.name else
                     f"; it looks like the x{other[1]} checkpoint of {spec(other[0]).title} (--model {other[0]})")
        raise CFINError(f"{path} does not fit {peer.title} x{scale} ({problem}){looks}")
    model.load_state_dict(mapped, strict=True)
    model.weights = str(path)
    return model.eval()
