"""The folder layouts SR code expects (EDSR/BasicSR conventions), PNG or ``.npy`` files.

Benchmarks::

    <root>/benchmark/<Set5>/HR/<name>.png
    <root>/benchmark/<Set5>/LR_bicubic/X4/<name>x4.png     (optional)

(``<root>/<Set5>/HR`` also works, i.e. ``root`` may be the ``benchmark`` folder itself.)

DIV2K::

    <root>/DIV2K_train_HR/0001.png
    <root>/DIV2K_train_LR_bicubic/X4/0001x4.png            (optional)

(also under ``<root>/DIV2K/``; ``split="valid"`` reads ``DIV2K_valid_*``, ids 801-900.)
Where the LR is absent it is made with our MATLAB bicubic and cached (:mod:`cfin.data.cache`).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

from cfin.data.io import IMAGE_SUFFIXES, image_size
from cfin.data.pairs import ImagePair, ImageSet
from cfin.errors import CFINError

STANDARD_BENCHMARKS = ("Set5", "Set14", "B100", "Urban100", "Manga109")
DIV2K_DEFAULT_IDS = {"train": range(1, 801), "valid": range(801, 901)}


def _check_root(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CFINError(f"data root {root} does not exist or is not a folder; expected "
                        f"<root>/benchmark/<Set5>/HR/*.png and/or <root>/DIV2K_train_HR/0001.png")
    return root


@contextmanager
def _readable(root: str | Path):
    """A folder of the data that cannot be listed or looked into (no read or search permission)
    as one CFINError naming it, not a traceback."""
    try:
        yield
    except OSError as e:
        raise CFINError(f"cannot read {e.filename or root} ({e.strerror or e}); make it readable, or give another "
                        f"data root") from None


def _images_in(folder: Path) -> list[Path]:
    """The images in ``folder``; a CFINError naming any image of a type not read (a .bmp or .jpg among
    the PNGs would leave the set short of the paper's images without a word)."""
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.is_file())
    readable = {ext for ext, kind in Image.registered_extensions().items() if kind in Image.OPEN}  # by Pillow
    other = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES and p.suffix.lower() in readable]
    if other:
        raise CFINError(f"{folder} holds {len(other)} image(s) of a type cfin does not read "
                        f"({', '.join(other[:5])}{', ...' if len(other) > 5 else ''}); expected "
                        f"{' or '.join(IMAGE_SUFFIXES)}: convert them to PNG, or move them out of the folder")
    return [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]


def available_datasets(root: str | Path) -> list[str]:
    """Names of the benchmark datasets under ``root`` (folders holding an ``HR`` folder)."""
    root = Path(root).expanduser()
    found = set()
    with _readable(root):
        for base in (root / "benchmark", root):
            if base.is_dir():
                found.update(d.name for d in base.iterdir() if (d / "HR").is_dir())
    order = {n: i for i, n in enumerate(STANDARD_BENCHMARKS)}
    return sorted(found, key=lambda n: (order.get(n, len(order)), n))


def _find_lr(lr_dir: Path, stem: str, scale: int) -> Path | None:
    for name in (f"{stem}x{scale}", stem):
        for suffix in IMAGE_SUFFIXES:
            if (lr_dir / f"{name}{suffix}").is_file():
                return lr_dir / f"{name}{suffix}"
    return None


class BenchmarkSet(ImageSet):
    """A benchmark dataset (``Set5``, ``Set14``, ``B100``, ``Urban100``, ``Manga109``, ...) at one scale.

    Iterating yields :class:`~cfin.data.pairs.Sample` (``name``, ``lr``, ``hr``) in file-name order;
    ``hr`` is cropped to ``scale`` x the LR size (MATLAB ``modcrop``).
    """

    def __init__(self, root: str | Path, name: str, scale: int, cache_dir: str | Path | None = None):
        with _readable(root):
            self._scan(root, name, scale, cache_dir)

    def _scan(self, root, name, scale, cache_dir) -> None:
        root = _check_root(root)
        folder = next((d for d in (root / "benchmark" / name, root / name) if (d / "HR").is_dir()), None)
        if folder is None:
            found = available_datasets(root)
            raise CFINError(
                f"dataset {name!r} not found under {root}: expected {root}/benchmark/{name}/HR/*.png "
                f"(optionally {name}/LR_bicubic/X{scale}/<image>x{scale}.png); "
                f"datasets found: {', '.join(found) if found else 'none'}")
        hr_files = _images_in(folder / "HR")
        if not hr_files:
            raise CFINError(f"{folder / 'HR'} holds no images; expected *{' or *'.join(IMAGE_SUFFIXES)} files")
        lr_dir = folder / "LR_bicubic" / f"X{scale}"
        pairs = []
        for hr in hr_files:
            lr = _find_lr(lr_dir, hr.stem, scale) if lr_dir.is_dir() else None
            if lr_dir.is_dir() and lr is None:
                raise CFINError(f"{lr_dir} has no LR image for {hr.name}; expected {hr.stem}x{scale}.png "
                                f"(or remove {lr_dir} to have the LR made with MATLAB bicubic)")
            pairs.append(ImagePair(hr.stem, hr, lr, scale, None if cache_dir is None else Path(cache_dir)))
            pairs[-1].check_lr_size()
        super().__init__(name, pairs, scale)
        self.folder = folder

    def check_sizes(self, smallest: int | None = None) -> None:
        """Every HR image (cropped to a multiple of the scale) at least ``smallest`` on each side
        (default: the smallest that can be scored at this scale), from the files' headers: checked
        before a run trains, not when it is scored."""
        from cfin.metrics import smallest_scorable

        s = self.scale
        smallest = smallest_scorable(s) if smallest is None else smallest
        small = [f"{p.hr_path.name} ({h}x{w})" for p in self.pairs
                 for h, w in [image_size(p.hr_path)] if min(h // s * s, w // s * s) < smallest]
        if small:
            raise CFINError(f"{self.folder / 'HR'}: {len(small)} image(s) too small to score at x{s} (at least "
                            f"{smallest}x{smallest} after cropping to a multiple of {s}): {', '.join(small[:5])}")


def div2k_pairs(root: str | Path, scale: int, split: str = "train", ids: Iterable[int] | None = None,
                cache_dir: str | Path | None = None) -> list[ImagePair]:
    """Lazy DIV2K LR/HR pairs (``ImagePair.load()`` reads them); LR made and cached where absent.

    Args:
        root: folder holding ``DIV2K_<split>_HR`` (directly or under ``DIV2K/``).
        scale: 2, 3 or 4 (any integer works when the LR is made here).
        split: ``"train"`` (default ids 1-800) or ``"valid"`` (801-900).
        ids: image numbers, e.g. ``range(896, 901)`` (the official code's validation images).
    """
    if split not in DIV2K_DEFAULT_IDS:
        raise CFINError(f"unknown DIV2K split {split!r}; valid: {', '.join(DIV2K_DEFAULT_IDS)}")
    with _readable(root):
        return _div2k_pairs(root, scale, split, ids, cache_dir)


def _div2k_pairs(root, scale, split, ids, cache_dir) -> list[ImagePair]:
    root = _check_root(root)
    hr_name = f"DIV2K_{split}_HR"
    base = next((b for b in (root, root / "DIV2K") if (b / hr_name).is_dir()), None)
    wanted = [f"{int(i):04d}" for i in (DIV2K_DEFAULT_IDS[split] if ids is None else ids)]
    if base is None:  # named by the first image asked for
        first = wanted[0] if wanted else f"{DIV2K_DEFAULT_IDS[split][0]:04d}"
        raise CFINError(f"DIV2K not found under {root}: expected {root}/{hr_name}/{first}.png "
                        f"(optionally {root}/DIV2K_{split}_LR_bicubic/X{scale}/{first}x{scale}.png)")
    hr_dir = base / hr_name
    lr_dir = base / f"DIV2K_{split}_LR_bicubic" / f"X{scale}"
    pairs, missing = [], []
    for stem in wanted:
        hr = next((hr_dir / f"{stem}{s}" for s in IMAGE_SUFFIXES if (hr_dir / f"{stem}{s}").is_file()), None)
        if hr is None:
            missing.append(stem)
            continue
        lr = _find_lr(lr_dir, stem, scale) if lr_dir.is_dir() else None
        if lr_dir.is_dir() and lr is None:
            raise CFINError(f"{lr_dir} has no LR image for {stem}; expected {stem}x{scale}.png")
        pairs.append(ImagePair(stem, hr, lr, scale, None if cache_dir is None else Path(cache_dir)))
        pairs[-1].check_lr_size()
    if missing:
        listed = ", ".join(f"{m}.png" for m in missing[:3]) + (", ..." if len(missing) > 3 else "")
        span = f" {wanted[0]}-{wanted[-1]}" if int(wanted[-1]) - int(wanted[0]) == len(wanted) - 1 else ""
        raise CFINError(f"{hr_dir} lacks {len(missing)} of the {len(wanted)} DIV2K images{span} it needs ({listed})")
    if not pairs:
        raise CFINError("div2k_pairs got an empty id list")
    return pairs


def open_dataset(root: str | Path | None, name: str, scale: int,
                 cache_dir: str | Path | None = None) -> ImageSet:
    """``"embedded"`` (no data root needed) or a :class:`BenchmarkSet` under ``root``."""
    if name.lower() == "embedded":
        from cfin.data.embedded import EmbeddedSet

        return EmbeddedSet(scale)
    if root is None:
        raise CFINError(f"dataset {name!r} needs --data-root (a folder with benchmark/{name}/HR); "
                        f"without one only 'embedded' is available")
    return BenchmarkSet(root, name, scale, cache_dir=cache_dir)
