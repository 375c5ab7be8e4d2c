"""What a training checkpoint holds, reading it back safely, and whether it belongs to this run.

``last.pt`` is a dict (format ``cfin-train-state``) with the model, optimizer and
scheduler state dicts, the iteration, the data position ``data`` (``epoch``,
``batch_in_epoch``, ``num_samples``), the random-number state of every process (torch,
CUDA, numpy, python), the best validation PSNR so far, the recipe and the elapsed
training time. Everything in it loads with ``torch.load(weights_only=True)``. A run resumes
from it only where :func:`check_compatible` finds the same schedule, data and network.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from cfin.atomic import atomic_torch_save
from cfin.config import CFINConfig
from cfin.errors import CFINError
from cfin.train.recipes import Recipe, recipe_fields

FORMAT = "cfin-train-state"
VERSION = 1
REQUIRED = ("format", "version", "iteration", "data", "model", "optimizer", "scheduler", "rng",
            "recipe", "world_size", "best_psnr", "best_iteration", "elapsed")
# Recipe fields a resumed run must share with the checkpoint (the rest is cadence).
SCHEDULE_FIELDS = ("iterations", "batch_size", "patch_size", "lr", "eta_min", "betas", "eps",
                   "loss", "scheduler", "lr_step_every", "seed")


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (all devices) from one int."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """This process's random-number state, as tensors and plain Python values."""
    np_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured (CUDA only when devices are present)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        for i, s in enumerate(cuda):
            torch.cuda.set_rng_state(s, i)
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# How each entry point starts a run over, for the messages that ask for it.
START_OVER = "start over (cfin train --no-resume; run_all.py --force; train(..., resume=False))"


def save_state(path: str | Path, state: dict) -> Path:
    """Write a training checkpoint atomically (a crash leaves the previous one intact)."""
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise ValueError(f"training state lacks {missing}")
    return atomic_torch_save(path, state)


def load_state(path: str | Path, map_location="cpu") -> dict:
    """Read a training checkpoint; a corrupt or foreign file raises CFINError naming it."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing error
        raise CFINError(f"training checkpoint {path} is corrupt or unreadable ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); delete it or {START_OVER}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CFINError(f"{path} is not a cfin training checkpoint (expected format {FORMAT!r}); "
                        f"delete it or {START_OVER}")
    missing = [k for k in REQUIRED if k not in state]
    if missing or state["version"] != VERSION:
        raise CFINError(f"training checkpoint {path} is incomplete or of another version "
                        f"(version {state.get('version')!r}, missing {missing}); expected version {VERSION}: "
                        f"delete it or {START_OVER}")
    return state


def _images_text(images: dict) -> str:
    return f"{images['count']} images ({', '.join(images['first'])}{', ...' if images['count'] > 3 else ''})"


def check_compatible(state: dict, recipe: Recipe, num_samples: int, network: dict | None, path: Path,
                     images: dict | None = None) -> None:
    """A CFINError naming every difference between the run that wrote ``state`` (read from ``path``)
    and this one: the schedule (:data:`SCHEDULE_FIELDS`), the training set's size and images, the
    network (:meth:`CFINConfig.network`); a resumed run must be the same run."""
    saved = recipe_fields(state["recipe"])
    diff = [f"{k}: checkpoint {saved.get(k)!r} vs now {getattr(recipe, k)!r}" for k in SCHEDULE_FIELDS
            if _norm(saved.get(k)) != _norm(getattr(recipe, k))]
    if state["data"]["num_samples"] != num_samples:
        diff.append(f"training-set size: checkpoint {state['data']['num_samples']} vs now {num_samples}")
    saved_images = state["data"].get("images")  # absent from checkpoints written before it was kept
    if saved_images and images and saved_images["hash"] != images["hash"]:
        diff.append(f"training images: checkpoint {_images_text(saved_images)} vs now {_images_text(images)}")
    saved_net = state.get("network")  # absent from checkpoints written before it was kept
    if saved_net is not None and network is not None:
        saved_net = {**CFINConfig().network(), **saved_net}  # a field added since: its default
        diff += [f"{k}: checkpoint {saved_net.get(k)!r} vs now {network.get(k)!r}"
                 for k in sorted(set(saved_net) | set(network)) if saved_net.get(k) != network.get(k)]
    if diff:
        raise CFINError(f"{path} belongs to a different run ({'; '.join(diff)}); use another output folder "
                        f"or {START_OVER}")


def _norm(v):
    return tuple(v) if isinstance(v, (list, tuple)) else v
