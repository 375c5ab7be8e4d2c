"""One process at a time trains in a run folder (cfin.train.lock)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import cfin
from cfin.cli import main as cfin_main
from cfin.train.lock import LOCK_NAME, OWNER_NAME, run_lock

TESTS = Path(__file__).resolve().parent
HOLDER = """
import sys, time
from cfin.train.lock import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@contextlib.contextmanager
def held_by_another_process(folder: Path, seconds: float = 60.0):
    """A second Python process holding ``folder``'s lock for ``seconds`` (killed on exit)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(seconds)], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_folder_held_elsewhere_is_an_error_naming_the_holder(tmp_path):
    folder = tmp_path / "run"
    with held_by_another_process(folder) as proc:
        note = json.loads((folder / OWNER_NAME).read_text())
        assert note["pid"] == proc.pid
        with pytest.raises(cfin.CFINError, match=rf"{folder} is being trained by another process \(pid {proc.pid} "
                                                 rf"on .*\); wait for it to finish, or train into another folder"):
            with run_lock(folder):
                pass


def test_a_killed_holder_leaves_the_folder_free(tmp_path):
    folder = tmp_path / "run"
    with held_by_another_process(folder) as proc:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with run_lock(folder):  # the operating system released it
            assert json.loads((folder / OWNER_NAME).read_text())["pid"] == os.getpid()
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]  # the note goes, the lock file stays


def test_waiting_blocks_until_the_holder_is_done(tmp_path, capsys):
    folder = tmp_path / "run"
    with held_by_another_process(folder, seconds=1.5) as proc:
        t0 = time.monotonic()
        with run_lock(folder, wait=True):
            waited = time.monotonic() - t0
            assert json.loads((folder / OWNER_NAME).read_text())["pid"] == os.getpid()
    assert waited > 1.0  # the holder kept it 1.5 s after saying so
    err = capsys.readouterr().err
    assert f"waiting: {folder} is being trained by another process (pid {proc.pid} " in err


def test_one_process_reenters_its_own_lock_which_another_holder_cannot_take(tmp_path):
    folder = tmp_path / "run"
    alias = tmp_path / "alias"
    with run_lock(folder):
        alias.symlink_to(folder)
        with run_lock(alias):  # the same folder by another path: re-entered, not waited for
            pass
        assert (folder / OWNER_NAME).is_file()  # the outer hold goes on
        failed = []

        def other():  # a second lock on the same file, as another process would open it
            from filelock import FileLock, Timeout
            try:
                FileLock(str(folder / LOCK_NAME)).acquire(timeout=0)
            except Timeout:
                failed.append(True)
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert failed == [True]
    assert not (folder / OWNER_NAME).exists()


def test_a_file_in_place_of_the_folder_is_an_error(tmp_path):
    folder = tmp_path / "run"
    folder.write_text("x")
    with pytest.raises(cfin.CFINError, match="should be a run folder but is a file; move it away, or give another"):
        with run_lock(folder, elsewhere="give another --out"):
            pass
    assert folder.read_text() == "x"


def test_cfin_train_into_a_folder_another_process_trains_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with held_by_another_process(out) as proc:
        code = cfin_main(["train", "--preset", "tiny", "--recipe", "smoke", "--iterations", "2", "--out", str(out),
                          "--no-progress"])
        assert code == 2
        err = capsys.readouterr().err
        assert f"is being trained by another process (pid {proc.pid}" in err and "give another --out" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, OWNER_NAME]  # run.json not written


def _lock_file_not_writable(monkeypatch, error=PermissionError(13, "Permission denied")):
    """``os.open`` of a lock file for writing fails, as in a folder of another user or on a
    read-only mount (only a read-only open succeeds)."""
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        if str(path).endswith(LOCK_NAME) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise type(error)(error.errno, error.strerror, str(path))
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", fake_open)


@pytest.mark.parametrize("wait", [False, True])
def test_a_lock_file_that_cannot_be_opened_is_an_error_naming_it(tmp_path, monkeypatch, wait):
    folder = tmp_path / "run"
    folder.mkdir()
    _lock_file_not_writable(monkeypatch)
    with pytest.raises(cfin.CFINError, match=rf"cannot take the training lock {folder / LOCK_NAME} "
                                             r"\(Permission denied\); .*pass another --runs"):
        with run_lock(folder, wait=wait, elsewhere="pass another --runs"):
            pass


def test_status_of_a_folder_whose_lock_file_is_read_only(tmp_path, monkeypatch):
    """--status only reads: a lock file it may not write (a read-only mount, another user's
    runs) is still probed, and a training in it still found."""
    from cfin.train.lock import held_by

    folder = tmp_path / "run"
    with run_lock(folder):
        pass
    _lock_file_not_writable(monkeypatch, OSError(30, "Read-only file system"))
    assert held_by(folder) is None
    with held_by_another_process(folder) as proc:
        assert held_by(folder).startswith(f"pid {proc.pid} on ")


def test_a_status_probe_does_not_make_a_starting_training_fail(tmp_path):
    """held_by (run_all.py --status) holds the lock for an instant to test it: a training
    starting at that instant is not refused as if the folder were busy."""
    folder = tmp_path / "run"
    with held_by_another_process(folder, seconds=0.3):  # the probe's instant, made long enough to hit
        with run_lock(folder):
            pass


def test_a_dangling_link_in_place_of_the_folder_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "run"
    folder.symlink_to(tmp_path / "unmounted" / "run")
    with pytest.raises(cfin.CFINError, match=rf"{folder} is a link to {tmp_path / 'unmounted' / 'run'}, which does "
                                             r"not exist; .*or give another --out"):
        with run_lock(folder, elsewhere="give another --out"):
            pass
    assert folder.is_symlink() and not (tmp_path / "unmounted").exists()


def test_a_file_system_without_flock_is_an_error_naming_it(tmp_path, monkeypatch):
    """filelock < 3.30 raises NotImplementedError where the file system has no flock (some
    network mounts): a run stops with one line naming the lock and what to do; --status falls
    back to the holder's note, which its holder removes on release."""
    import cfin.train.lock as lock
    from cfin.train.lock import held_by

    class NoFlock(lock.FileLock):
        def acquire(self, *args, **kwargs):
            raise NotImplementedError("FileSystem does not appear to support flock; use SoftFileLock instead")

    folder = tmp_path / "run"
    with run_lock(folder):
        pass
    monkeypatch.setattr(lock, "FileLock", NoFlock)
    with pytest.raises(cfin.CFINError, match=rf"cannot take the training lock {folder / LOCK_NAME}: its file system "
                                             r"has no flock \(FileSystem does not .*\); .*pass another --runs"):
        with run_lock(folder, elsewhere="pass another --runs on a local disk"):
            pass
    assert held_by(folder) is None
    (folder / OWNER_NAME).write_text(json.dumps({"pid": 1, "host": "h", "started": "s", "command": "c"}))
    assert held_by(folder) == "pid 1 on h, since s: c"
