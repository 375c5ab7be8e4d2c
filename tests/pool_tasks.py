"""A task for the worker-process tests: spawned workers import it by name."""
import os
import time
from pathlib import Path


def sleep_and_report(folder: str) -> int:
    """Open a progress bar as a row does, say this worker has started (a file named by its pid),
    then work for a minute."""
    import io

    from tqdm.auto import tqdm

    tqdm(total=1, file=io.StringIO())
    (Path(folder) / str(os.getpid())).write_text("started")
    time.sleep(60)
    return os.getpid()
