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
