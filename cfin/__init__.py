"""cfin-bench: CFIN rebuilt faithfully, its complexity counted honestly, its tables reproduced."""
from cfin.config import PRESETS, CFINConfig, preset
from cfin.errors import CFINError
from cfin.models import CFIN

__version__ = "0.1.0"


def load_official(path, scale, mask_eval="sample", **kwargs):
    """A ready CFIN in eval mode from an official ``model_best_x{s}.pt`` state_dict."""
    from cfin.official import load_official as _load

    return _load(path, scale, mask_eval=mask_eval, **kwargs)


def load(path, map_location="cpu", impl=None):
    """A CFIN from our checkpoint format (state dict + config + metadata), in eval mode;
    ``impl="fast"`` or ``"faithful"`` computes it by that implementation (same function)."""
    from cfin.checkpoint import load_checkpoint

    return load_checkpoint(path, map_location=map_location, impl=impl)


def save(model, path, **metadata):
    """Write ``model`` in our checkpoint format, atomically."""
    from cfin.checkpoint import save_checkpoint

    return save_checkpoint(model, path, **metadata)


def __getattr__(name):
    """``cfin.complexity``, ``cfin.records``, ... after a plain ``import cfin`` (imported on first use,
    so that ``import cfin`` stays light)."""
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"cfin.{name}")
    raise AttributeError(f"module 'cfin' has no attribute {name!r}")


_SUBMODULES = ("complexity", "records", "evaluate", "metrics", "imresize", "data", "train", "tables", "audit",
               "bench", "checkpoint", "official", "models", "config", "report", "runner")

__all__ = ["CFIN", "CFINConfig", "CFINError", "PRESETS", "preset", "load_official", "load", "save"]
