"""Where the repository and the read-only ground truth (``../shared``) are."""
from __future__ import annotations

import os
from pathlib import Path

from cfin.errors import CFINError

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """The ``shared`` folder beside the repository (or ``$CFIN_SHARED``), None when absent."""
    env = os.environ.get("CFIN_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / "shared", REPO_ROOT / "shared"]
    for c in candidates:
        if (c / "REFERENCE.md").is_file():
            return c
    return None


def shown(path: str | Path) -> str:
    """``path`` as a report shows it: relative to the repository where it lies in it or beside
    it (``../shared/...``), so that a committed report names no machine's folders."""
    p = Path(path).resolve()
    for base, prefix in ((REPO_ROOT, ""), (REPO_ROOT.parent, "../")):
        try:
            return prefix + p.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path)


def existing_file(path: str | Path, what: str, expected: str = "a .pt file") -> Path:
    """``path`` if it is a file; a CFINError naming ``what`` when it is missing or a folder."""
    path = Path(path)
    if path.is_dir():
        raise CFINError(f"{what} {path} is a folder, expected {expected}")
    if not path.is_file():
        raise CFINError(f"{what} not found: {path}")
    return path
