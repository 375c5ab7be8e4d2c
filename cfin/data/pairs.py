"""LR/HR pairs: one lazily loaded pair (``ImagePair``) and a named, ordered set of them (``ImageSet``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from cfin.data.cache import bicubic_lr, cached_bicubic_lr
from cfin.data.io import image_size, read_image
from cfin.errors import CFINError


@dataclass(frozen=True)
class Sample:
    """One evaluation or training image: ``lr`` (h x w x 3 uint8), ``hr`` (sh x sw x 3 uint8, modcropped)."""
    name: str
    lr: np.ndarray
    hr: np.ndarray


def check_pair(lr: np.ndarray, hr: np.ndarray, scale: int, what: str) -> np.ndarray:
    """``hr`` cropped to ``scale`` x the LR size; a CFINError naming ``what`` if the sizes disagree."""
    h, w = lr.shape[:2]
    check_sizes((h, w), hr.shape[:2], scale, what)
    return hr[: h * scale, : w * scale]


def check_sizes(lr: tuple[int, int], hr: tuple[int, int], scale: int, what: str) -> None:
    """A CFINError naming ``what`` unless the LR size (rows, columns) is the HR size // ``scale``."""
    if tuple(lr) != (hr[0] // scale, hr[1] // scale):
        raise CFINError(
            f"{what}: LR is {lr[0]}x{lr[1]} but HR is {hr[0]}x{hr[1]}; at x{scale} the LR must be "
            f"{hr[0] // scale}x{hr[1] // scale} (HR size // {scale})")


@dataclass(frozen=True)
class ImagePair:
    """An HR file and its LR file (or none: the LR is then our MATLAB bicubic, cached on disk)."""
    name: str
    hr_path: Path
    lr_path: Path | None
    scale: int
    cache_dir: Path | None = None

    def check_lr_size(self) -> None:
        """A given LR file's size against its HR's, from the files' headers (a CFINError as :meth:`load`'s)."""
        if self.lr_path is not None:
            check_sizes(image_size(self.lr_path), image_size(self.hr_path), self.scale, str(self.lr_path))

    def load(self) -> Sample:
        hr = read_image(self.hr_path)
        if self.lr_path is None:
            if min(hr.shape[:2]) < self.scale:
                raise CFINError(f"{self.hr_path}: HR image {hr.shape[0]}x{hr.shape[1]} "
                                f"is smaller than the scale {self.scale}")
            lr = cached_bicubic_lr(self.hr_path, self.scale, hr=hr, cache_dir=self.cache_dir)
            what = f"{self.hr_path} (cached LR)"
        else:
            lr = read_image(self.lr_path)
            what = str(self.lr_path)
        return Sample(self.name, lr, check_pair(lr, hr, self.scale, what))


@dataclass(frozen=True)
class ArrayPair:
    """An in-memory HR image (and optionally its LR); a missing LR is our MATLAB bicubic."""
    name: str
    hr: np.ndarray
    scale: int
    lr: np.ndarray | None = None

    def load(self) -> Sample:
        if min(self.hr.shape[:2]) < self.scale:
            raise CFINError(f"{self.name}: HR image {self.hr.shape[0]}x{self.hr.shape[1]} "
                            f"is smaller than the scale {self.scale}")
        lr = bicubic_lr(self.hr, self.scale) if self.lr is None else self.lr
        return Sample(self.name, lr, check_pair(lr, self.hr, self.scale, self.name))


class ImageSet:
    """A named, ordered evaluation set; iterating yields :class:`Sample` (loaded on demand).

    Args:
        name: the label results are reported under (``Set5``, ``embedded``, ...).
        pairs: objects with ``name`` and ``load() -> Sample`` (:class:`ImagePair`, :class:`ArrayPair`).
        scale: the upscaling factor the pairs are made for.
    """

    def __init__(self, name: str, pairs: Sequence, scale: int):
        self.name = name
        self.pairs = list(pairs)
        self.scale = int(scale)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> Sample:
        return self.pairs[i].load()

    def __iter__(self) -> Iterator[Sample]:
        for pair in self.pairs:
            yield pair.load()

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.pairs]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, x{self.scale}, {len(self)} images)"
