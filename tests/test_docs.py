"""The README and the pages under docs/ hold: every relative link names a file that exists (and,
where it names one, a heading or anchor of that file), and every command they show is one its
parser takes, each command's ``--help`` running.

Commands are read from the ``bash`` blocks (each line parsed whole by the command's own parser,
in-process) and from inline code that starts with a command (its subcommand and every ``--option``
it names must exist). ``cfin``, ``python -m cfin``, ``torchrun ... -m cfin``, ``python run_all.py``,
``python tools/<name>.py`` and ``bash tools/<name>.sh`` are checked; a ``python -m pytest`` line's
paths must exist; other programs (``pip``) are left alone.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from cfin.paths import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
INLINE = re.compile(r"`([^`]+)`")
EXPLICIT_ID = re.compile(r"""<a\s+(?:name|id)=["']([^"']+)["']""")


def _rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors a link may name in ``page``: its headings' slugs (repeats numbered as GitHub
    numbers them) and explicit ``<a id=...>`` anchors."""
    text = FENCE.sub("", page.read_text())
    found, seen = set(), {}
    for line in text.splitlines():
        if re.match(r"#{1,6} ", line):
            slug = _slug(line.lstrip("#"))
            found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return found | set(EXPLICIT_ID.findall(text))


def _prose(page: Path) -> str:
    """The page without its fenced blocks and HTML comments (a comment is not shown)."""
    return FENCE.sub("", COMMENT.sub("", page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(_prose(page)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ... not checked offline
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif not file.resolve().is_relative_to(REPO_ROOT):
            broken.append(f"{target}: outside the repository")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading or anchor '{anchor}' in {_rel(file)}")
    assert not broken, f"{_rel(page)}: " + "; ".join(broken)


# --- commands ---------------------------------------------------------------------------------

def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Programs:
    """The parsers of the commands the pages show, built once."""

    def __init__(self):
        from cfin.cli import build_parser

        self.cfin = build_parser()
        self.cfin_sub = next(a for a in self.cfin._actions if a.dest == "command").choices
        self.python = {"run_all.py": _load(REPO_ROOT / "run_all.py").build_parser()}
        for tool in sorted((REPO_ROOT / "tools").glob("*.py")):
            self.python[f"tools/{tool.name}"] = _load(tool).build_parser()


@pytest.fixture(scope="module")
def programs():
    return Programs()


def split_command(words: list[str]) -> tuple[str, list[str]] | None:
    """``(program, argv)`` for a command this test checks (``cfin``, ``run_all.py``, ``tools/x.py``,
    ``tools/x.sh``, ``pytest``), else None. Leading ``VAR=value`` assignments are dropped."""
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
        words = words[1:]
    if not words:
        return None
    if words[0] == "cfin":
        return "cfin", words[1:]
    if words[0] == "torchrun" and "-m" in words and words[words.index("-m") + 1:][:1] == ["cfin"]:
        return "cfin", words[words.index("-m") + 2:]
    if words[0] == "python" and words[1:3] == ["-m", "cfin"]:
        return "cfin", words[3:]
    if words[0] == "python" and words[1:3] == ["-m", "pytest"]:
        return "pytest", words[3:]
    if words[0] in ("python", "bash") and len(words) > 1 and (words[1] == "run_all.py"
                                                              or words[1].startswith("tools/")):
        return words[1], words[2:]
    if words[0] == "run_all.py":
        return "run_all.py", words[1:]
    return None


def block_commands() -> list[tuple[str, str]]:
    """``(page, line)`` for every command line of a ``bash`` block, ``&&`` chains split."""
    found = []
    for page in PAGES:
        for lang, body in FENCE.findall(COMMENT.sub("", page.read_text())):
            if lang not in ("bash", "sh", "shell"):
                continue
            for line in body.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                starts = [0] + [i + 1 for i, w in enumerate(words) if w == "&&"]
                ends = [i for i, w in enumerate(words) if w == "&&"] + [len(words)]
                for part in (words[a:b] for a, b in zip(starts, ends)):
                    if part and split_command(part):
                        found.append((_rel(page), " ".join(shlex.quote(w) for w in part)))
    return found


BLOCK_COMMANDS = block_commands()


def test_the_pages_show_the_main_commands():
    """The collection works: the README's two commands and the pages' main ones are found."""
    shown = {line for _, line in BLOCK_COMMANDS}
    assert {"python run_all.py --table VII", "python -m pytest -q", "cfin complexity --scale 4",
            "cfin audit --scale 4"} <= shown


def _parse(parser, argv: list[str]) -> str | None:
    """None where ``parser`` takes ``argv``, else its error message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as e:
        return err.getvalue().strip() or f"exit {e.code}"
    return None


@pytest.mark.parametrize("page, line", BLOCK_COMMANDS, ids=[f"{p}: {c[:60]}" for p, c in BLOCK_COMMANDS])
def test_every_command_line_parses(programs, page, line):
    program, argv = split_command(shlex.split(line))
    if program == "cfin":
        problem = _parse(programs.cfin, argv)
    elif program in programs.python:
        problem = _parse(programs.python[program], argv)
    elif program == "pytest":
        missing = [a for a in argv if not a.startswith("-") and "/" in a
                   and not (REPO_ROOT / a.split("::")[0]).exists()]
        problem = f"no such test path: {missing}" if missing else None
    else:
        problem = None if (REPO_ROOT / program).is_file() else f"no file {program}"
    assert problem is None, f"{page}: `{line}`: {problem}"


def inline_commands() -> list[tuple[str, str]]:
    """``(page, code)`` for inline code that starts with a checked command (not pytest)."""
    found = []
    for page in PAGES:
        for code in INLINE.findall(_prose(page)):
            try:
                words = shlex.split(" ".join(code.split()))
            except ValueError:
                continue
            split = split_command(words)
            if split and split[0] != "pytest":
                found.append((_rel(page), " ".join(words)))
    return found


def test_inline_commands_name_real_subcommands_and_options(programs):
    """`cfin bench --threads 2` in prose: ``bench`` is a subcommand and ``--threads`` its option.
    Inline code may show part of a command, so it is not parsed whole."""
    problems, checked = [], 0
    for page, code in inline_commands():
        program, argv = split_command(shlex.split(code))
        if program == "cfin":
            if not argv or argv[0] not in programs.cfin_sub:
                problems.append(f"{page}: `{code}`: no cfin subcommand {argv[:1]}")
                continue
            parser = programs.cfin_sub[argv[0]]
        elif program in programs.python:
            parser = programs.python[program]
        else:
            if not (REPO_ROOT / program).is_file():
                problems.append(f"{page}: `{code}`: no file {program}")
            continue
        options = {s for a in parser._actions for s in a.option_strings}
        unknown = [w.split("=")[0] for w in argv if w.startswith("--") and w.split("=")[0] not in options]
        if unknown:
            problems.append(f"{page}: `{code}`: no option {unknown}")
        checked += 1
    assert checked >= 10, "the pages' inline commands were not found"
    assert not problems, "\n".join(problems)


def test_every_documented_command_has_a_working_help(programs):
    """``--help`` exits 0 for each distinct command and subcommand the pages show."""
    shown = [split_command(shlex.split(line)) for _, line in BLOCK_COMMANDS]
    shown += [split_command(shlex.split(code)) for _, code in inline_commands()]
    targets = set()
    for program, argv in shown:
        sub = argv[0] if program == "cfin" and argv and not argv[0].startswith("-") else None
        targets.add((program, sub))
    failed = []
    for program, sub in sorted(targets, key=str):
        if program == "pytest":
            continue
        if program.endswith(".sh"):
            done = subprocess.run(["bash", str(REPO_ROOT / program), "--help"], capture_output=True, text=True,
                                  timeout=30)
            code, text = done.returncode, done.stdout
            text = "usage" if program in text else text  # a script's help: its header, naming itself
        else:
            parser = programs.cfin if program == "cfin" else programs.python[program]
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    parser.parse_args([sub, "--help"] if sub else ["--help"])
                code = None
            except SystemExit as e:
                code = e.code
            text = out.getvalue()
        if code != 0 or "usage" not in text.lower():
            failed.append(f"{program} {sub or ''} --help: exit {code}")
    assert ("cfin", "bench") in targets and ("run_all.py", None) in targets
    assert not failed, "; ".join(failed)
