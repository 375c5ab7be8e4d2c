"""Where things are: the repository, the read-only ground truth (``../shared``), run_all.py's
folders, and the output paths a command checks before its work."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
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
    for p in (Path(os.path.abspath(path)), Path(path).resolve()):  # ../shared may be a link: try it as named
        for base, prefix in ((REPO_ROOT, ""), (REPO_ROOT.parent, "../")):
            try:
                return prefix + p.relative_to(base).as_posix()
            except ValueError:
                continue
    return str(path)


@dataclass(frozen=True)
class Folders:
    """Where run_all.py reads and writes (``--results``, ``--runs``, ``--reports``; the defaults
    here are its defaults): what a command printed in a report must name to work."""

    results: str = "results"
    runs: str = "runs"
    reports: str = "reports"

    def args(self, *names: str) -> list[str]:
        """``--NAME DIR`` for each named folder that is not the default."""
        default = Folders()
        return [part for n in names if Path(getattr(self, n)) != Path(getattr(default, n))
                for part in (f"--{n}", str(getattr(self, n)))]


def output_dir(path: str | Path, option: str, create: bool = True) -> Path:
    """``path`` as a folder that takes output, checked before any work so that a run does not end
    in an error after its results were computed; created if missing (``create``), else only
    checked to be creatable. A CFINError naming ``option`` where it is a file or cannot be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CFINError(f"{option} {path} is a file; expected a folder (it is created if missing)")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise CFINError(f"{option} {path}: cannot create this folder ({existing} is a file)")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CFINError(f"{option} {path}: cannot create this folder ({e.strerror or e})") from None
    why = _refuses_files(existing)
    if why:
        raise CFINError(f"{option} {path}: {existing} is not writable ({why})")
    return path


def _refuses_files(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder``, None where one can: tried, not read from its
    mode, which root passes by and which /proc or a read-only FUSE mount grant to no avail."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".cfin-probe.", dir=folder)
    except OSError as e:
        return e.strerror or str(e)
    os.close(fd)
    os.unlink(probe)
    return None


def output_file(path: str | Path, option: str, replaceable=None, what: str = "") -> Path:
    """``path`` as a file that output can be written to: not a folder, in a folder that takes
    output. Where ``replaceable(path)`` is given, an existing file it does not accept (a trained
    checkpoint, a record: not an earlier output of this kind, ``what``) is an error, not replaced."""
    path = Path(path)
    if path.is_dir():
        raise CFINError(f"{option} {path} is a folder; expected a file name")
    if replaceable is not None and path.is_file() and not replaceable(path):
        raise CFINError(f"{option} {path} exists and is not {what}: writing would replace it; give another path, "
                        f"or remove that file first")
    output_dir(path.parent, f"{option} {path}: its folder")
    return path


def json_with_keys(*keys: str):
    """A ``replaceable`` test for :func:`output_file`: a JSON object holding ``keys`` (an earlier
    output of the same command)."""
    import json

    def test(path: Path) -> bool:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and all(k in data for k in keys)
    return test


def existing_file(path: str | Path, what: str, expected: str = "a .pt file") -> Path:
    """``path`` if it is a file; a CFINError naming ``what`` when it is missing or a folder."""
    path = Path(path)
    if path.is_dir():
        raise CFINError(f"{what} {path} is a folder, expected {expected}")
    if not path.is_file():
        raise CFINError(f"{what} not found: {path}")
    return path
