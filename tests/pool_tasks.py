"""A task for the worker-process tests: spawned workers import it by name."""
import os
import time
from pathlib import Path


def sleep_and_report(folder: str) -> int:
    """Say this worker has started (a file named by its pid), then work for a minute."""
    (Path(folder) / str(os.getpid())).write_text("started")
    time.sleep(60)
    return os.getpid()
