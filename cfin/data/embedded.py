"""The default data when no ``--data-root`` is given: photographs bundled with scikit-image.

They ship inside the ``scikit-image`` wheel (no download), so every install can train and
evaluate something real. The split is fixed; results on the test split are labelled
``embedded`` and are not comparable with any published benchmark. The right image of the
motorcycle stereo pair is left out: it nearly duplicates the left one, which is a test image.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from cfin.data.io import as_rgb_uint8
from cfin.data.pairs import ArrayPair, ImageSet
from cfin.errors import CFINError, choice_error


def _skimage(name: str, index: int | None = None) -> Callable[[], np.ndarray]:
    def load():
        import skimage.data

        img = getattr(skimage.data, name)()
        return img if index is None else img[index]
    return load


# name -> loader; photographs only (no synthetic or binary images)
LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "rocket": _skimage("rocket"),
    "immunohistochemistry": _skimage("immunohistochemistry"),
    "hubble_deep_field": _skimage("hubble_deep_field"),
    "retina": _skimage("retina"),
    "coins": _skimage("coins"),
    "moon": _skimage("moon"),
    "brick": _skimage("brick"),
    "grass": _skimage("grass"),
    "gravel": _skimage("gravel"),
    "clock": _skimage("clock"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "motorcycle": _skimage("stereo_motorcycle", 0),
    "camera": _skimage("camera"),
}

SPLITS = {
    "train": ("astronaut", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
              "coins", "moon", "brick", "grass", "gravel", "clock"),
    "test": ("chelsea", "coffee", "motorcycle", "camera"),
}


@lru_cache(maxsize=None)
def _load(name: str) -> np.ndarray:
    try:
        img = LOADERS[name]()
    except Exception as e:
        raise CFINError(f"cannot load the bundled scikit-image picture {name!r} "
                        f"({type(e).__name__}: {e}); pass --data-root to use a dataset on disk") from None
    img = as_rgb_uint8(img, f"skimage.data {name}")
    img.flags.writeable = False
    return img


def embedded_images(split: str) -> list[tuple[str, np.ndarray]]:
    """``[(name, H x W x 3 uint8), ...]`` of the fixed ``"train"`` or ``"test"`` split (read-only arrays)."""
    if split not in SPLITS:
        raise choice_error("embedded split", split, SPLITS)
    return [(name, _load(name)) for name in SPLITS[split]]


@lru_cache(maxsize=8)
def _lr(name: str, scale: int) -> np.ndarray:
    from cfin.data.cache import bicubic_lr

    lr = bicubic_lr(_load(name), scale)
    lr.flags.writeable = False
    return lr


class EmbeddedSet(ImageSet):
    """The embedded test split as an evaluation set (label ``embedded``); LR by MATLAB bicubic."""

    def __init__(self, scale: int, split: str = "test"):
        pairs = [ArrayPair(name, hr, scale, _lr(name, scale)) for name, hr in embedded_images(split)]
        super().__init__("embedded", pairs, scale)
