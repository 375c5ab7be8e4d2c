#!/usr/bin/env python
"""A PNG of a report page as headless Chromium renders it (the README's picture of Table VII).

    python run_all.py --table VII                     # in a scratch folder: its results/, runs/, reports/
    python tools/screenshot_report.py reports/table_VII.html --out docs/img/table_VII.png

The page is drawn at ``--width`` CSS pixels and cut at ``--height`` (the top of a long page);
blank rows below the content are cropped and the image is stored with a 256-colour palette,
so that a committed screenshot stays a few hundred KB. ``tests/test_run_all.py`` renders a
report with the same Chromium flags (:func:`chromium_command`) and checks a screenshot of it.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: the cfin package of this checkout
    sys.path.insert(0, str(REPO_ROOT))

from cfin.atomic import atomic_write  # noqa: E402
from cfin.errors import CFINError  # noqa: E402

# headless, offline, no first-run work: the page alone, as a reader's browser draws it
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=5000")


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian's ``chromium``, Ubuntu's ``chromium-browser``), else None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_command(page: Path, profile: Path, *extra: str) -> list[str]:
    """Headless Chromium opening ``page`` with a fresh profile folder, ``extra`` flags before the page."""
    chromium = find_chromium()
    if chromium is None:
        raise CFINError("no Chromium found on PATH (chromium or chromium-browser); install Debian's "
                        "'chromium' package")
    return [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, Path(page).resolve().as_uri()]


def screenshot(page: str | Path, out: str | Path, width: int = 1100, height: int = 1800) -> Path:
    """Render ``page`` at ``width`` x ``height`` CSS pixels, crop the blank rows under its content,
    and write ``out`` atomically as a palette PNG. Returns ``out``."""
    import numpy as np
    from PIL import Image

    page = Path(page)
    if not page.is_file():
        raise CFINError(f"{page} is not a file; expected a report page such as reports/table_VII.html "
                        "(python run_all.py --table VII writes it)")
    if width < 200 or height < 200:
        raise CFINError(f"--width {width} / --height {height}: expected at least 200 pixels each")
    with tempfile.TemporaryDirectory(prefix="cfin-shot-") as tmp:
        raw = Path(tmp) / "page.png"
        cmd = chromium_command(page, Path(tmp) / "profile", f"--window-size={width},{height}",
                               f"--screenshot={raw}")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if not raw.is_file():
            raise CFINError(f"Chromium wrote no screenshot of {page} (exit {done.returncode}): "
                            f"{done.stderr.strip().splitlines()[-1:] or 'no message'}")
        image = Image.open(raw).convert("RGB")
        pixels = np.asarray(image)
        background = pixels[0, -1]  # the top right corner: the page's background, outside the content
        content_rows = np.flatnonzero((pixels != background).any(axis=(1, 2)))
        if content_rows.size == 0:
            raise CFINError(f"the screenshot of {page} is blank: Chromium drew nothing on the page")
        image = image.crop((0, 0, image.width, min(image.height, int(content_rows[-1]) + 24)))
        palette = image.quantize(colors=256)  # median cut, the default for RGB
    return atomic_write(out, lambda f: palette.save(f, format="PNG", optimize=True))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="screenshot_report.py", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("page", help="the report page, e.g. reports/table_VII.html")
    p.add_argument("--out", required=True, metavar="PNG", help="the PNG to write (replaced if it exists)")
    p.add_argument("--width", type=int, default=1100, help="window width in CSS pixels (default 1100)")
    p.add_argument("--height", type=int, default=1800,
                   help="window height in CSS pixels: where a longer page is cut (default 1800)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = screenshot(args.page, args.out, args.width, args.height)
    except (CFINError, subprocess.TimeoutExpired) as e:
        print(f"screenshot_report.py: error: {e}", file=sys.stderr)
        return 2
    print(f"{out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
