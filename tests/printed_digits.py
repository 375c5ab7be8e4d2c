"""A measured count written the way a paper printed one, for comparing at the printed precision."""


def as_printed(value: int, printed: str) -> str:
    """``value`` in the unit and with the decimals of ``printed``: ``as_printed(715_176, "715K") == "715K"``,
    ``as_printed(40_885_865_472, "40.9G") == "40.9G"``."""
    unit = {"K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9}[printed[-1]]
    decimals = len(printed[:-1].partition(".")[2])
    return f"{value / unit:.{decimals}f}{printed[-1]}"
