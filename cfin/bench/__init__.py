"""Fast against faithful CFIN, side by side: time, peak memory and the compute floor (issue 7).

``run_bench(BenchSpec(...))`` returns a JSON-ready report; ``cfin bench`` is the command line.
One module a job: :mod:`~cfin.bench.spec` (the paths compared), :mod:`~cfin.bench.allocator`
(glibc malloc's settings, alike for every path), :mod:`~cfin.bench.calls` (what each path
runs), :mod:`~cfin.bench.timing`, :mod:`~cfin.bench.floor` (the compute floor),
:mod:`~cfin.bench.equality` (the same function?), :mod:`~cfin.bench.memory`,
:mod:`~cfin.bench.run` (all of it, one report), :mod:`~cfin.bench.psnr` (Set5 PSNR of the
options) and :mod:`~cfin.bench.render` (the text table).
"""
from cfin.bench.allocator import ALLOCATORS, set_allocator
from cfin.bench.calls import build_models, runners
from cfin.bench.equality import compare, other_conv_kernels
from cfin.bench.floor import (TRAIN_MAC_FACTOR, best_of, forward_macs, paired_floor, peak_kernels, peak_throughput,
                              round_rates)
from cfin.bench.memory import peak_memory
from cfin.bench.psnr import set5_psnr_delta
from cfin.bench.render import render
from cfin.bench.run import network_label, run_bench
from cfin.bench.spec import AMP_DTYPES, COMPILE_MODES, GRAD_RTOL, OUT_ATOL, BenchSpec, Variant, paths_for
from cfin.bench.timing import summarize, time_paths

__all__ = ["ALLOCATORS", "AMP_DTYPES", "COMPILE_MODES", "GRAD_RTOL", "OUT_ATOL", "TRAIN_MAC_FACTOR", "BenchSpec",
           "Variant", "best_of", "build_models", "compare", "forward_macs", "network_label", "other_conv_kernels",
           "paired_floor", "paths_for", "peak_kernels", "peak_memory", "peak_throughput", "render", "round_rates",
           "run_bench", "runners", "set5_psnr_delta", "set_allocator", "summarize", "time_paths"]
