"""Where a number came from: git commit, versions, device."""
from __future__ import annotations

import platform
import subprocess

from cfin.paths import REPO_ROOT


def git_commit() -> str | None:
    """The repository's HEAD commit (with ``-dirty`` when the tree has changes), None outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        if not sha:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    proc = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    proc = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{proc} ({torch.get_num_threads()} threads)"


def environment(device="cpu") -> dict:
    import torch

    return {"git_commit": git_commit(), "torch": str(torch.__version__), "python": platform.python_version(),
            "device": str(device), "device_name": device_name(device)}
