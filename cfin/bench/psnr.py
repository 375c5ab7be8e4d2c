"""How far the result-changing options move Set5 PSNR (``cfin bench --psnr``)."""
from __future__ import annotations

from pathlib import Path

from cfin.bench.calls import arithmetic, build_models, runners
from cfin.bench.spec import BenchSpec, paths_for
from cfin.errors import CFINError


def set5_root() -> Path:
    """The data root holding ``benchmark/Set5`` (``../shared/datasets``); a CFINError where it is absent."""
    from cfin.paths import shared_dir

    root = shared_dir()
    if root is None or not (root / "datasets" / "benchmark" / "Set5").is_dir():
        raise CFINError("Set5 not found: set CFIN_SHARED to the folder holding datasets/benchmark/Set5/HR")
    return root / "datasets"


def set5_psnr_delta(spec: BenchSpec, progress: bool = True) -> dict:
    """Set5 PSNR (Y, MATLAB conventions) of the fast path and of each result-changing option.

    Uses ``../shared/datasets/benchmark/Set5``; the weights are ``spec.weights`` (an official
    state_dict) or the random seed-0 weights, whose PSNR is meaningless in itself but whose
    difference between paths still measures the numerical drift an option causes.
    """
    from cfin.data.layouts import open_dataset
    from cfin.evaluate import evaluate_model

    root = set5_root()
    paths = [p for p in paths_for(spec) if p.name != "faithful" and "checkpoint" not in p.name]
    models = build_models([paths_for(spec)[0], *paths], spec.device, spec.weights)
    data = open_dataset(root, "Set5", spec.base_config().scale)
    psnr = {}
    run = runners(paths, models, dynamic=True)  # five image sizes: one graph for all
    for p in paths:
        models[p.name].eval()
        runner = run[p.name]

        def fn(x, runner=runner, p=p):
            with arithmetic(p, x.device):
                return runner(x).float()
        psnr[p.name] = evaluate_model(fn, spec.base_config().scale, [data], device=spec.device,
                                      progress=progress)["Set5"]["psnr"]
    return {"psnr": psnr, "delta_db": {k: v - psnr["fast"] for k, v in psnr.items() if k != "fast"},
            "weights": spec.weights or "random (seed 0)", "tolerance_db": 0.01}
