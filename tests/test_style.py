"""The lint gate: ``ruff check`` passes on the repository, with the rules of ``[tool.ruff]`` in pyproject.toml."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_ruff_check_is_clean():
    if importlib.util.find_spec("ruff") is None:
        pytest.skip('ruff is not installed: pip install -e ".[test]" installs it with the other test dependencies')
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(REPO)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"ruff check found problems (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
