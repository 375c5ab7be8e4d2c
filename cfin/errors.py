"""The one exception type the command line turns into a clear message and a non-zero exit."""


class CFINError(Exception):
    """A user-facing error: bad input, a missing file, an unknown name.

    The message says what was wrong and what was expected; ``cfin`` prints it without a
    traceback and exits with status 2.
    """


def choice_error(what: str, value, valid) -> CFINError:
    """An error for ``value`` not among ``valid``, listing the valid choices."""
    valid = list(valid)
    return CFINError(f"unknown {what} {value!r}; valid: {', '.join(map(str, valid))}")


def end_progress_bars() -> None:
    """Close the progress bars an error or Ctrl-C left open, so that its message starts a line of
    its own instead of trailing the half-drawn bar."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def reader_gone() -> int:
    """The exit status after stdout's reader went away (``cfin ... | head``): quiet, as a shell
    tool is. Points stdout at /dev/null so that Python's own flush at exit raises nothing."""
    import os
    import sys

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141  # 128 + SIGPIPE, what a shell reports for a tool the pipe closed on


def out_of_memory(error: BaseException) -> CFINError | None:
    """``error`` as one clear message where it is an allocation that failed (a huge input, batch,
    network or seed count: torch's and numpy's out-of-memory errors), else None."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and (
            "out of memory" in text.lower() or "tried to allocate" in text.lower())):
        return CFINError(f"out of memory ({text[:200]}); ask for less: a smaller input size, batch, network "
                         f"or number of seeds")
    return None
