"""Benchmark evaluation: run a model over LR images and score PSNR/SSIM the way the paper does.

Models take and return float RGB in [0, 255], B x 3 x H x W -> B x 3 x sH x sW. Outputs are
quantised to uint8 before scoring (:mod:`cfin.metrics`: Y channel, ``scale`` pixels shaved).
``self_ensemble`` is the x8 geometric ensemble behind "CFIN+" (EDSR's recipe: the 8
flip/transpose variants, each mapped back, averaged).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from cfin.data.io import write_png
from cfin.device import resolve_device, tf32_mode
from cfin.errors import CFINError
from cfin.imresize import imresize, to_uint8
from cfin.metrics import SSIM_WINDOW, psnr, smallest_scorable, ssim

Model = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["bicubic_upsampler", "forward_tiled", "self_ensemble", "evaluate_model"]


def bicubic_upsampler(scale: int) -> Model:
    """The baseline "model": MATLAB bicubic ``imresize(lr, scale)`` (uint8 path for integral inputs)."""

    def upsample(x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().to("cpu", torch.float64).numpy().transpose(0, 2, 3, 1)
        outs = []
        for img in arr:
            integral = np.all(img == np.round(img)) and img.min() >= 0 and img.max() <= 255
            outs.append(imresize(img.astype(np.uint8) if integral else img, scale).astype(np.float32))
        return torch.from_numpy(np.stack(outs).transpose(0, 3, 1, 2).copy()).to(x.device)

    upsample.scale = scale
    return upsample


TILE_OVERLAP = 16  # LR pixels of context per tile side, unless told


def forward_tiled(model: Model, lr: torch.Tensor, scale: int, tile: int | None = None,
                  overlap: int = TILE_OVERLAP) -> torch.Tensor:
    """``model(lr)`` computed tile by tile: each ``tile`` x ``tile`` LR block is run with
    ``overlap`` extra LR pixels of context on every side and only its own block is kept.

    Exact for models whose receptive field is within ``overlap``; an approximation for
    global operations: CFIN's channel attention, ECA and the CGM's context pooling see one
    tile, not the image, so a tiled CFIN's scores are not its whole-image scores.
    """
    if tile is None:
        return model(lr)
    if int(tile) < 1 or int(overlap) < 0:
        raise CFINError(f"tile must be >= 1 and tile overlap >= 0; got tile={tile}, overlap={overlap}")
    tile, overlap = int(tile), int(overlap)
    b, c, h, w = lr.shape
    if h <= tile and w <= tile:
        return model(lr)
    out = None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - overlap, 0), max(x0 - overlap, 0)
            yb, xb = min(y1 + overlap, h), min(x1 + overlap, w)
            piece = model(lr[:, :, ya:yb, xa:xb])
            if piece.shape[-2:] != ((yb - ya) * scale, (xb - xa) * scale):
                raise CFINError(f"model output {tuple(piece.shape[-2:])} for a {yb - ya}x{xb - xa} tile "
                                f"is not x{scale} its input")
            if out is None:
                out = piece.new_zeros(b, piece.shape[1], h * scale, w * scale)
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                piece[:, :, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale]
    return out


def _transform(x: torch.Tensor, t: int, inverse: bool = False) -> torch.Tensor:
    """Dihedral transform ``t`` (bit 0: flip W, bit 1: flip H, bit 2: transpose) or its inverse."""
    ops = [(t & 4, lambda z: z.transpose(-2, -1)), (t & 2, lambda z: z.flip(-2)), (t & 1, lambda z: z.flip(-1))]
    for on, op in reversed(ops) if inverse else ops:
        if on:
            x = op(x)
    return x


def self_ensemble(model: Model, lr: torch.Tensor) -> torch.Tensor:
    """Mean of ``T^-1(model(T(lr)))`` over the 8 flips/transposes ``T`` (the "+" models, e.g. CFIN+)."""
    total = None
    for t in range(8):
        y = _transform(model(_transform(lr, t)), t, inverse=True)
        total = y if total is None else total + y
    return total / 8


_self_ensemble = self_ensemble  # evaluate_model's argument of the same name shadows it


def _rng_scope(device: torch.device, seed: int | None):
    """Seed torch for the evaluation (CFIN's Gumbel masks are random) without touching the caller's RNG."""
    if seed is None:
        return contextlib.nullcontext()
    devices = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


def evaluate_model(model_or_fn: nn.Module | Model, scale: int, datasets: Iterable,
                   self_ensemble: bool = False, tile: int | None = None, tile_overlap: int = TILE_OVERLAP,
                   device: str | torch.device | None = None, progress: bool = True,
                   per_image: bool = False, save_dir: str | Path | None = None,
                   crop_border: int | None = None, test_y_channel: bool = True,
                   seed: int | None = 0, tf32: bool = False, protocol: str | None = None,
                   also: Iterable[str] = ()) -> dict:
    """PSNR/SSIM of a model (or any tensor function) on each dataset.

    Args:
        model_or_fn: an ``nn.Module`` (moved to ``device``, put in eval mode) or a callable
            on B x 3 x H x W float tensors in [0, 255].
        scale: upscaling factor; also the default ``crop_border``.
        datasets: evaluation sets (``BenchmarkSet``, ``EmbeddedSet``, ...): each has ``name``
            and yields samples with ``name``, ``lr``, ``hr`` (uint8 H x W x 3).
        self_ensemble: x8 geometric ensemble.
        tile, tile_overlap: tiled inference (LR pixels); ``None`` runs whole images.
        device: ``cpu``, ``cuda``, ``cuda:N``; default CUDA when present.
        per_image: add ``per_image: [{name, psnr, ssim}, ...]`` to each dataset's entry.
        save_dir: write SR images to ``save_dir/<dataset>/<image>_x<s>.png``.
        seed: torch seed set before each image (reproducible stochastic masks); the
            caller's RNG state is restored afterwards. ``None``: leave the RNG alone.
        tf32: on CUDA, let matmuls and cuDNN convolutions run in TF32 (PyTorch's default for
            convolutions); False (default) computes in float32, as the paper's GPU did.
        protocol: score by this protocol of :mod:`cfin.protocols` (None: the suite's default,
            ``matlab``, through ``test_y_channel``); recorded as ``protocol`` in each entry.
        also: further protocols, scored on the same SR images: ``protocols: {name: {psnr, ssim}}``.

    Returns:
        ``{dataset: {"psnr": mean dB, "ssim": mean, "images": n[, "per_image": [...]]}}``;
        tiled, each entry also has ``"tile"`` and ``"tile_overlap"``.
    """
    from cfin.protocols import protocol as get_protocol

    device = resolve_device(device)
    crop_border = scale if crop_border is None else crop_border
    main = None if protocol is None else get_protocol(protocol)
    extra = [get_protocol(name) for name in dict.fromkeys(also) if name != protocol]
    if main is not None and not test_y_channel:
        raise CFINError(f"protocol {main.name!r} scores the Y channel; test_y_channel=False takes no protocol")
    was_training = None
    if isinstance(model_or_fn, nn.Module):
        was_training = model_or_fn.training
        model_or_fn = model_or_fn.to(device).eval()
    elif not callable(model_or_fn):
        raise CFINError(f"evaluate_model needs an nn.Module or a callable; got {type(model_or_fn).__name__}")

    def run(x: torch.Tensor) -> torch.Tensor:
        return forward_tiled(model_or_fn, x, scale, tile, tile_overlap)

    predict = (lambda x: _self_ensemble(run, x)) if self_ensemble else run
    datasets = list(datasets)
    results = {}
    try:
        with tqdm(total=sum(len(d) for d in datasets), desc="evaluate", unit="img", disable=not progress) as bar, \
                _rng_scope(device, seed), tf32_mode(device, tf32), torch.inference_mode():
            for data in datasets:
                if data.name in results:
                    raise CFINError(f"dataset {data.name!r} listed twice")
                bar.set_description(f"evaluate {data.name}")
                rows = []
                for sample in data:
                    if seed is not None:
                        torch.manual_seed(seed)
                    sr = _super_resolve(predict, sample, scale, device, data.name)
                    row = {"name": sample.name, **_scores(sr, sample, crop_border, test_y_channel, data.name, main)}
                    if extra:
                        row["protocols"] = {p.name: p.score(sr, sample.hr, crop_border) for p in extra}
                    rows.append(row)
                    if save_dir is not None:
                        write_png(Path(save_dir) / data.name / f"{sample.name}_x{scale}.png", sr)
                    bar.update()
                if not rows:
                    raise CFINError(f"dataset {data.name!r} has no images")
                results[data.name] = {"psnr": float(np.mean([r["psnr"] for r in rows])),
                                      "ssim": float(np.mean([r["ssim"] for r in rows])), "images": len(rows)}
                if main is not None:
                    results[data.name]["protocol"] = main.name
                if extra:
                    results[data.name]["protocols"] = {
                        p.name: {m: float(np.mean([r["protocols"][p.name][m] for r in rows])) for m in ("psnr", "ssim")}
                        for p in extra}
                if tile is not None:
                    results[data.name].update(tile=int(tile), tile_overlap=int(tile_overlap))
                if per_image:
                    results[data.name]["per_image"] = rows
    finally:
        if was_training:
            model_or_fn.train()
    return results


def _scores(sr: np.ndarray, sample, crop_border: int, test_y_channel: bool, dataset: str, protocol=None) -> dict:
    """PSNR and SSIM of one image; an image too small to score is an error naming it."""
    h, w = sample.hr.shape[:2]
    if min(h, w) < smallest_scorable(crop_border):
        need = smallest_scorable(crop_border)
        raise CFINError(f"{dataset}/{sample.name} is {h}x{w} (after modcrop) and cannot be scored: with a "
                        f"{crop_border}-pixel border cropped, SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window needs at "
                        f"least {need}x{need}; remove it from the dataset")
    if protocol is not None:
        return protocol.score(sr, sample.hr, crop_border)
    return {"psnr": psnr(sr, sample.hr, crop_border, test_y_channel),
            "ssim": ssim(sr, sample.hr, crop_border, test_y_channel)}


def _super_resolve(predict: Model, sample, scale: int, device: torch.device, dataset: str) -> np.ndarray:
    """The uint8 H x W x 3 SR image of one sample (model output rounded and clipped)."""
    lr = torch.from_numpy(np.ascontiguousarray(sample.lr.transpose(2, 0, 1))).float()[None].to(device)
    sr = predict(lr)[0].float().cpu().numpy().transpose(1, 2, 0)
    if sr.shape != sample.hr.shape:
        raise CFINError(f"{dataset}/{sample.name}: model output {sr.shape} differs from the "
                        f"HR image {sample.hr.shape} (LR {sample.lr.shape}, x{scale})")
    bad = int(sr.size - np.isfinite(sr).sum())
    if bad:  # clipped to uint8, it would be scored as some image
        raise CFINError(f"{dataset}/{sample.name}: the network's output has {bad:,} non-finite value"
                        f"{'s' if bad > 1 else ''} (NaN or inf) of {sr.size:,}; its weights are damaged or its "
                        f"training diverged, and no score of it would mean anything")
    return to_uint8(sr)
