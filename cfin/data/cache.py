"""LR images made with our MATLAB bicubic when a dataset ships none, cached on disk.

The cache lives in ``$CFIN_CACHE_DIR`` (else ``$XDG_CACHE_HOME/cfin``, else
``~/.cache/cfin``), never inside the data folder, so read-only datasets work. An entry is
``lr_bicubic/<hash of the HR folder>/X<s>/<stem>x<s>.png``, written atomically and stamped with
the modification time of the HR file it was made from (as the cache's filesystem keeps it, perhaps
to a coarser clock); it is remade when the HR file's differs (a newer file, or an older one
unpacked over it).
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np

from cfin.data.io import read_image, write_png
from cfin.errors import CFINError
from cfin.imresize import imresize, modcrop


def default_cache_dir() -> Path:
    """``$CFIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/cfin``, else ``~/.cache/cfin``."""
    if os.environ.get("CFIN_CACHE_DIR"):
        return Path(os.environ["CFIN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cfin"


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The field's LR image: MATLAB ``imresize(modcrop(hr, s), 1/s, 'bicubic')`` on uint8."""
    return imresize(modcrop(hr, scale), 1.0 / scale)


def lr_cache_path(hr_path: str | Path, scale: int, cache_dir: str | Path | None = None) -> Path:
    """Where the cached bicubic LR of ``hr_path`` at ``scale`` lives."""
    hr_path = Path(hr_path).resolve()
    folder = hashlib.sha1(str(hr_path.parent).encode()).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "lr_bicubic" / folder / f"X{scale}" / f"{hr_path.stem}x{scale}.png"


# The clocks a filesystem keeps file times to (the kernel cuts a time set finer to its own): 100 ns
# (NTFS, SMB), 1 us, 10 ms (exFAT), 1 s (HFS+, ext4 with small inodes), 2 s (FAT).
_CLOCKS_NS = (100, 1_000, 10_000_000, 1_000_000_000, 2_000_000_000)


def _stamped(entry_ns: int, hr_ns: int) -> bool:
    """Whether a cache entry's modification time is the stamp of the HR file's ``hr_ns``, as the
    cache's filesystem kept it: the same, or cut to a coarser clock than the data's."""
    return entry_ns == hr_ns or any(entry_ns == hr_ns - hr_ns % g for g in _CLOCKS_NS)


def cached_bicubic_lr(hr_path: str | Path, scale: int, hr: np.ndarray | None = None,
                      cache_dir: str | Path | None = None) -> np.ndarray:
    """The bicubic LR of the HR image at ``hr_path``, read from the cache or made and stored."""
    path = lr_cache_path(hr_path, scale, cache_dir)
    hr_mtime = Path(hr_path).stat().st_mtime_ns
    if path.is_file() and _stamped(path.stat().st_mtime_ns, hr_mtime):
        try:
            return read_image(path)
        except CFINError:  # a damaged entry (a crash elsewhere, a full disk): derived data, remade below
            pass
    if hr is None:
        hr = read_image(hr_path)
    lr = bicubic_lr(hr, scale)
    try:
        write_png(path, lr)
        os.utime(path, ns=(time.time_ns(), hr_mtime))
    except (CFINError, OSError) as e:  # atomic_write's CFINError, from the OSError; utime's OSError
        cause = e.__cause__ if isinstance(e, CFINError) and e.__cause__ is not None else e
        why = getattr(cause, "strerror", None) or cause
        raise CFINError(f"cannot write the LR cache entry {path} ({why}); set CFIN_CACHE_DIR to a "
                        f"writable folder") from None
    return lr
