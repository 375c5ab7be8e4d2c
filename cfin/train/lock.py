"""One process at a time trains in a run folder.

Without it, a second ``cfin train`` into the same ``--out``, or two ``run_all.py`` commands
whose tables share a training (Tables I, II, VIII and X all score one trained x4 CFIN),
would resume the same ``last.pt`` and overwrite each other's checkpoints and log. The lock
is ``filelock``'s (``flock`` on POSIX): the operating system releases it when its holder
exits, so a killed run never leaves a folder locked. Beside it the holder notes its pid,
host, start time and command, for the message the other process gets.

On a file system without ``flock`` (some network mounts) filelock 3.30 and later fall back to
a lock that is the file's existence plus the holder's pid (filelock 4.3, checked by hand with
``flock`` failing ENOSYS: a SIGKILLed holder's lock is taken over in 0.2 s, though
``run_all.py --status`` names the dead holder until then); earlier versions refuse, and a run
stops naming the lock.

The lock file stays in the folder after release: deleting it would let a process that opened
the old file and one that creates a new one hold "the" lock at once.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
from pathlib import Path

from filelock import FileLock, Timeout

from cfin.atomic import atomic_write_json
from cfin.errors import CFINError

LOCK_NAME = ".lock"
OWNER_NAME = ".lock-owner.json"

_held: dict[Path, list] = {}  # folder (resolved) -> [FileLock, depth]: re-entered in one process
# a refusal waits this long first: held_by's test holds a free lock for an instant
PROBE_GRACE_S = 1.0


def holder(folder: Path) -> str:
    """Who holds ``folder``'s lock, as its owner note says (best effort: the note may be gone)."""
    try:
        note = json.loads((folder / OWNER_NAME).read_text())
        return (f"pid {note['pid']} on {note['host']}, since {note['started']}: "
                f"{note.get('command') or 'a Python process'}")
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"


def held_by(folder: str | Path) -> str | None:
    """Who trains in ``folder`` now (:func:`holder`), or None where no process does. Reads only:
    a folder never locked gets no lock file."""
    folder = Path(folder)
    if not (folder / LOCK_NAME).is_file():
        return None
    if folder.resolve() in _held:
        return holder(folder)
    lock = FileLock(str(folder / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return holder(folder)
    except OSError:  # not writable here (a read-only mount, another user's runs): test it read-only
        return _held_read_only(folder)
    except NotImplementedError:  # no flock on this file system (filelock < 3.30): the holder's note
        return holder(folder) if (folder / OWNER_NAME).is_file() else None
    lock.release()
    return None


def _held_read_only(folder: Path) -> str | None:
    """:func:`held_by` through a read-only descriptor (``flock``, as filelock's on POSIX)."""
    try:
        import fcntl
    except ImportError:  # no flock: the owner note, which its holder removes on release
        return holder(folder) if (folder / OWNER_NAME).is_file() else None
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return holder(folder) if (folder / OWNER_NAME).is_file() else None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return holder(folder)
    except OSError:
        return holder(folder) if (folder / OWNER_NAME).is_file() else None
    finally:
        os.close(fd)  # releases a flock this took
    return None


@contextlib.contextmanager
def run_lock(folder: str | Path, *, wait: bool = False, elsewhere: str = "train into another folder"):
    """Hold ``folder``'s training lock (the folder is created) for the ``with`` block.

    Held already by another process (still after :data:`PROBE_GRACE_S`): ``wait`` blocks until it
    is released, saying so once on stderr; otherwise a CFINError names the holder and suggests
    ``elsewhere``. A lock file that cannot be created or opened is a CFINError naming it.
    Re-entering a folder this process holds is a no-op.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CFINError(f"{folder} should be a run folder but is a file; move it away, or {elsewhere}")
    if folder.is_symlink() and not folder.exists():  # mkdir would fail on it (a drive not mounted?)
        raise CFINError(f"{folder} is a link to {os.readlink(folder)}, which does not exist; restore its target, "
                        f"or remove the link, or {elsewhere}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CFINError(f"cannot create the run folder {folder} ({e.strerror or e}); {elsewhere}") from None
    key = folder.resolve()
    if key in _held:
        _held[key][1] += 1
        try:
            yield folder
        finally:
            _held[key][1] -= 1
        return
    lock = FileLock(str(folder / LOCK_NAME))
    try:
        try:
            lock.acquire(timeout=PROBE_GRACE_S)
        except Timeout:
            busy = f"{folder} is being trained by another process ({holder(folder)})"
            if not wait:
                raise CFINError(f"{busy}; wait for it to finish, or {elsewhere}") from None
            print(f"waiting: {busy}", file=sys.stderr, flush=True)
            lock.acquire()
    except OSError as e:  # the lock file cannot be created or opened for writing
        raise CFINError(f"cannot take the training lock {folder / LOCK_NAME} ({e.strerror or e}); make the folder "
                        f"writable, or {elsewhere}") from None
    except NotImplementedError as e:  # filelock < 3.30 on a file system without flock
        raise CFINError(f"cannot take the training lock {folder / LOCK_NAME}: its file system has no flock ({e}); "
                        f"train on a local disk, or {elsewhere}") from None
    _held[key] = [lock, 1]
    try:
        atomic_write_json(folder / OWNER_NAME, {
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)})
        yield folder
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            (folder / OWNER_NAME).unlink()
        lock.release()
