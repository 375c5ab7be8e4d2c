"""Random aligned LR/HR training patches with flips and 90-degree rotations (paper IV-B).

Item ``i`` is a pure function of ``(seed, i)``: its generator is ``numpy.random.default_rng([seed, i])``,
so a trainer that resumes at batch ``k`` sees exactly the patches it would have seen, whatever
the worker count or access order.
"""
from __future__ import annotations

import hashlib

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from cfin.data.io import image_size
from cfin.data.pairs import ArrayPair, ImagePair, Sample
from cfin.errors import CFINError


def _as_source(item, index: int, scale: int):
    """Anything accepted as a training image -> an object with ``name`` and ``load() -> Sample``."""
    if isinstance(item, (ImagePair, ArrayPair)):
        return item
    if isinstance(item, Sample):
        return ArrayPair(item.name, item.hr, scale, item.lr)
    if isinstance(item, np.ndarray):
        return ArrayPair(f"image {index}", item, scale)
    if isinstance(item, tuple) and len(item) == 2:
        a, b = item
        if isinstance(a, str) and isinstance(b, np.ndarray):
            return ArrayPair(a, b, scale)
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return ArrayPair(f"image {index}", b, scale, a)
    raise CFINError(f"training image {index}: expected an HR array, (lr, hr) arrays, (name, hr), "
                    f"a Sample or an ImagePair; got {type(item).__name__}")


class TrainPatchDataset(Dataset):
    """``length`` random ``patch_size`` LR patches with their aligned ``scale * patch_size`` HR patches.

    Args:
        images: HR arrays (LR made by MATLAB bicubic, once per image), ``(lr, hr)`` or
            ``(name, hr)`` tuples, :class:`Sample`, or lazy :class:`ImagePair` (from ``div2k_pairs``).
        scale: upscaling factor.
        patch_size: LR patch side (48 in the paper).
        augment: random horizontal flip, vertical flip and transpose (the 8 dihedral transforms).
        length: number of items (default: one per image).
        seed: with the index, fixes every item.

    Item ``i`` draws its image uniformly (with replacement), then the patch's position and
    transform, all from ``(seed, i)``: EDSR-style loaders instead visit every image once per
    reshuffled pass, the same distribution in expectation. Item ``i`` is
    ``{"lr": 3 x P x P, "hr": 3 x sP x sP}``, float32 in [0, 255]. Images are
    loaded on first use and kept; call :meth:`preload` before forking DataLoader workers so
    they share one copy.
    """

    def __init__(self, images: Sequence, scale: int, patch_size: int = 48, augment: bool = True,
                 length: int | None = None, seed: int = 0):
        if not len(images):
            raise CFINError("TrainPatchDataset got no training images")
        if int(patch_size) < 1 or int(scale) < 1 or int(seed) < 0:
            raise CFINError(f"patch_size and scale must be positive and seed >= 0; "
                            f"got patch_size={patch_size}, scale={scale}, seed={seed}")
        self.scale, self.patch_size, self.augment, self.seed = int(scale), int(patch_size), augment, int(seed)
        self.sources = [_as_source(item, i, self.scale) for i, item in enumerate(images)]
        self.length = len(self.sources) if length is None else int(length)
        if self.length < 1:
            raise CFINError(f"TrainPatchDataset length must be positive; got {length}")
        self._loaded: dict[int, Sample] = {}
        for i, src in enumerate(self.sources):  # in-memory images: compute LR and check sizes now
            if isinstance(src, ArrayPair):
                self._get(i)
            else:  # files: their sizes from the headers, so a small image stops the run before it starts
                self._check_size(src)

    def images(self) -> dict:
        """Which images it cuts patches from, for a resumed run to compare: their count, the first
        names, and a hash of every name (file stems, so a dataset moved to another folder is the
        same) and the scale."""
        names = [src.name for src in self.sources]
        digest = hashlib.sha256("\n".join([f"x{self.scale}", *names]).encode()).hexdigest()[:16]
        return {"count": len(names), "first": names[:3], "hash": digest}

    def __len__(self) -> int:
        return self.length

    def _too_small(self, name: str, lr: tuple[int, int], hr: tuple[int, int]) -> CFINError:
        return CFINError(f"training image {name!r}: LR {lr[0]}x{lr[1]} (HR {hr[0]}x{hr[1]}) is smaller than the "
                         f"{self.patch_size}x{self.patch_size} LR patch at x{self.scale}")

    def _check_size(self, src: ImagePair) -> None:
        hr = image_size(src.hr_path)
        lr = image_size(src.lr_path) if src.lr_path is not None else (hr[0] // self.scale, hr[1] // self.scale)
        if min(lr) < self.patch_size:
            raise self._too_small(src.name, lr, hr)

    def _get(self, j: int) -> Sample:
        sample = self._loaded.get(j)
        if sample is None:
            sample = self.sources[j].load()
            h, w = sample.lr.shape[:2]
            if min(h, w) < self.patch_size:
                raise self._too_small(sample.name, (h, w), sample.hr.shape[:2])
            self._loaded[j] = sample
        return sample

    def preload(self, progress: bool = True) -> "TrainPatchDataset":
        """Load (and make missing LR for) every image now, with a progress bar."""
        for j in tqdm(range(len(self.sources)), desc="loading training images", disable=not progress):
            self._get(j)
        return self

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        rng = np.random.default_rng([self.seed, int(index)])
        sample = self._get(int(rng.integers(len(self.sources))))
        p, s = self.patch_size, self.scale
        h, w = sample.lr.shape[:2]
        y, x = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
        lr = sample.lr[y:y + p, x:x + p]
        hr = sample.hr[y * s:(y + p) * s, x * s:(x + p) * s]
        if self.augment:
            hflip, vflip, transpose = rng.random(3) < 0.5
            lr, hr = (_dihedral(a, hflip, vflip, transpose) for a in (lr, hr))
        return {"lr": _to_tensor(lr), "hr": _to_tensor(hr)}


def _dihedral(a: np.ndarray, hflip: bool, vflip: bool, transpose: bool) -> np.ndarray:
    if hflip:
        a = a[:, ::-1]
    if vflip:
        a = a[::-1]
    if transpose:
        a = a.transpose(1, 0, 2)
    return a


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))
