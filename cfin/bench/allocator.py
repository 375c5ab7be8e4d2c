"""glibc malloc's settings, the same for every path of a comparison.

glibc malloc serves every buffer above its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and unmaps it on free, so each large tensor is paid again in page faults, a large
share of these models' CPU time (docs/performance.md). ``"tuned"`` (the default) turns the mmap path off
and trimming down (``M_MMAP_MAX = 0``; ``M_TRIM_THRESHOLD`` -1, which glibc reads as "never
trim", and 64 GiB in the children's environment, where it must be positive) for all paths
alike: by ``mallopt`` in this process and by ``MALLOC_MMAP_MAX_`` / ``MALLOC_TRIM_THRESHOLD_``
in the memory children. ``"default"`` leaves glibc alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

from cfin.errors import choice_error

# glibc mallopt parameters and the environment variables that set them in a child
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
ALLOCATORS = {
    "tuned": {"MALLOC_MMAP_MAX_": 0, "MALLOC_TRIM_THRESHOLD_": 64 * 2 ** 30},
    "default": {},
}


def set_allocator(name: str) -> dict:
    """Apply an allocator setting to this process (mallopt) and to its future children (env)."""
    if name not in ALLOCATORS:
        raise choice_error("allocator", name, ALLOCATORS)
    settings = ALLOCATORS[name]
    applied = False
    if settings:
        libc_name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(libc_name) if libc_name else None
            mallopt = getattr(libc, "mallopt", None)
        except OSError:
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            applied = bool(mallopt(_M_MMAP_MAX, settings["MALLOC_MMAP_MAX_"])) and \
                bool(mallopt(_M_TRIM_THRESHOLD, -1))  # -1: never trim (the value is a C int)
        os.environ.update({k: str(v) for k, v in settings.items()})
    return {"name": name, "settings": {k: str(v) for k, v in settings.items()},
            "applied_in_process": applied, "note": "same settings for every path"}
