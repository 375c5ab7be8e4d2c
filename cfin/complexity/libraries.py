"""What the counting libraries users compare against report on our CFIN, and what they skip.

* fvcore ``FlopCountAnalysis``: traces the model with ``torch.jit`` on real tensors (CPU), so
  it runs the network once at the requested size. Its "flops" are MACs for conv, linear and
  matmul (plus ``layer_norm``, counted as 5 per element); ``unsupported_ops()`` lists what it
  skipped. The trace fails on the CGM's official unfold path (``F.unfold`` receives a kernel size
  read from a traced shape); we then count the same network with ``cgm_impl="conv"`` (the same
  function as a grouped convolution) and say so in the notes.
* ptflops ``get_model_complexity_info``, backend ``pytorch`` (its default): forward hooks on
  modules whose exact type is in its table, plus patched ``F.*`` and ``torch.matmul``-style calls;
  it counts biases, activations and some elementwise adds as MACs. It cannot see subclasses
  (our weight-normed convs are ``ParametrizedConv2d``, the mean shifts ``MeanShift``) nor the
  ``@`` operator (the attention). Runs on meta tensors, counting what it counts on real ones
  (:func:`_as_on_real_tensors`).
* ptflops backend ``aten``: a dispatch mode over ``aten.mm/bmm/addmm/convolution`` (bias adds
  included), everything else a zero-op. Runs on meta tensors.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import time
import warnings
from collections import Counter

import torch
from torch import nn

from cfin.complexity.conventions import CONVENTIONS
from cfin.complexity.counts import Counts, ModuleCount, input_shape, meta_model
from cfin.config import CFINConfig
from cfin.errors import CFINError

LIBRARIES = ("fvcore", "ptflops", "ptflops_aten")


def count_library(model_or_config, lr_size=None, library: str = "fvcore", batch: int = 1) -> Counts:
    """Params and MACs as ``library`` reports them (see the module docstring)."""
    if library == "fvcore":
        return count_fvcore(model_or_config, lr_size, batch)
    if library in ("ptflops", "ptflops_aten"):
        return count_ptflops(model_or_config, lr_size, "pytorch" if library == "ptflops" else "aten", batch)
    raise CFINError(f"unknown library {library!r}; valid: {', '.join(LIBRARIES)}")


def _real_model(model_or_config) -> tuple[nn.Module, CFINConfig | None]:
    """A CPU model with (random) weights, in eval mode."""
    from cfin.models import CFIN

    if isinstance(model_or_config, CFINConfig):
        return CFIN(model_or_config).eval(), model_or_config
    if isinstance(model_or_config, nn.Module):
        peer = getattr(model_or_config, "peer", None)
        if peer is not None and any(p.is_meta for p in model_or_config.parameters()):
            from cfin.peers import build  # a peer counted on meta elsewhere: the same network with weights

            return build(peer, model_or_config.scale).eval(), None
        return model_or_config.eval(), getattr(model_or_config, "config", None)
    raise CFINError(f"count needs a CFINConfig or an nn.Module, got {type(model_or_config).__name__}")


def _fvcore_analysis(model: nn.Module, x: torch.Tensor):
    with warnings.catch_warnings():  # fvcore's jit use and the tracer warn on every call
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        fa = FlopCountAnalysis(model, x)
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        fa.tracer_warnings("none")
        total = fa.total()  # runs the trace
    return fa, total


def count_fvcore(model_or_config, lr_size=None, batch: int = 1) -> Counts:
    """fvcore's total, per-module counts and unsupported operators, on real CPU tensors."""
    with warnings.catch_warnings():  # importing fvcore.nn jit-scripts its losses, which warns
        warnings.simplefilter("ignore")
        from fvcore.nn import parameter_count

    t0 = time.perf_counter()
    model, config = _real_model(model_or_config)
    shape = input_shape(config or model, lr_size, batch)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=gen) * (config.rgb_range if config is not None else 255.0)  # peers: [0, 255]
    notes = []
    try:
        with torch.no_grad():
            fa, total = _fvcore_analysis(model, x)
    except Exception as e:  # jit tracing failures surface as many exception types
        if config is None or config.token_mixer != "cgm" or config.cgm_impl == "conv":
            raise CFINError(f"fvcore could not trace the model: {type(e).__name__}: {_first_line(e)}") from None
        notes.append(f"the jit trace fails on cgm_impl='unfold' ({type(e).__name__}: {_first_line(e)}); "
                     "counted with cgm_impl='conv', the same function as a grouped convolution")
        from cfin.models import CFIN

        model = CFIN(config.replace(cgm_impl="conv")).eval()
        with torch.no_grad():
            fa, total = _fvcore_analysis(model, x)
    by_op = {k: int(v) for k, v in fa.by_operator().items()}
    skipped = tuple(f"{op} x{n}" for op, n in Counter(fa.unsupported_ops()).most_common())
    per_module = _own_counts(model, fa.by_module())
    return Counts("fvcore", CONVENTIONS["fvcore"].label, shape,
                  params=int(parameter_count(model)[""]), multi_adds=int(total),
                  per_module=per_module, skipped=skipped, notes=tuple(notes), by_operator=by_op,
                  seconds=time.perf_counter() - t0)


def _own_counts(model: nn.Module, by_module: dict[str, int]) -> tuple[ModuleCount, ...]:
    """Each module's own share of a hierarchical per-module count (total minus its children)."""
    rows = []
    for name, m in model.named_modules():
        children = [f"{name}.{c}" if name else c for c, _ in m.named_children()]
        own = int(by_module.get(name, 0)) - sum(int(by_module.get(c, 0)) for c in children)
        params = sum(p.numel() for p in m.parameters(recurse=False))
        if own or params:
            rows.append(ModuleCount(name, type(m).__name__, 0, params, own))
    return tuple(rows)


# torch's Python reference implementations: on meta tensors an op without a meta kernel of its
# own (F.leaky_relu, bilinear F.interpolate, ...) runs one of these, calling torch.mul and the like
_TORCH_REFS = tuple(os.path.join(os.path.dirname(torch.__file__), name)
                    for name in ("_refs", "_decomp", "_prims", "_prims_common", "_meta_registrations.py"))


@contextlib.contextmanager
def _as_on_real_tensors():
    """ptflops' patched ``torch.mul``, ``torch.add``, ... count a call only when it does not come
    from torch's reference implementations, as on real tensors, where such an op is one C++ kernel
    that calls no Python. Without this the meta count of CFIN x4 held 250.7M multiplies of the
    LeakyReLUs' reference code, and Table V's CFIN+HPB 2.93G of bilinear upsampling's. Yields
    whether it could (ptflops' ``torch_function_wrapper``, which every patched call goes through)."""
    try:
        from ptflops import pytorch_engine
        wrapper = pytorch_engine.torch_function_wrapper
        counting_call = wrapper.__call__
    except (ImportError, AttributeError):
        yield False
        return
    ptflops_dir = os.path.dirname(pytorch_engine.__file__)

    def call(self, *args, **kwargs):
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(ptflops_dir):  # its tensor-op wrapper
            frame = frame.f_back
        if frame is not None and frame.f_code.co_filename.startswith(_TORCH_REFS):
            return self.op(*args, **kwargs)
        return counting_call(self, *args, **kwargs)

    wrapper.__call__ = call
    try:
        yield True
    finally:
        wrapper.__call__ = counting_call


def count_ptflops(model_or_config, lr_size=None, backend: str = "pytorch", batch: int = 1) -> Counts:
    """ptflops' MACs and params with the module types / operators it treated as zero-ops (meta tensors)."""
    from ptflops import get_model_complexity_info

    t0 = time.perf_counter()
    model, config = meta_model(model_or_config)
    shape = input_shape(config or model, lr_size, batch)
    x = torch.empty(shape, device="meta")
    log = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), _as_on_real_tensors() as exact:
        warnings.simplefilter("ignore")
        macs, params = get_model_complexity_info(model, tuple(shape[1:]), input_constructor=lambda _: x,
                                                 as_strings=False, print_per_layer_stat=False, verbose=True,
                                                 ost=log, backend=backend)
    if macs is None:
        raise CFINError(f"ptflops (backend {backend}) failed on this model; its log: {log.getvalue()[-300:]}")
    zero = re.findall(r"Warning: (?:module )?(\S+) (?:operation )?is treated as a zero-op", log.getvalue())
    # a weight-norm parametrization's internals are part of ParametrizedConv2d: not listed twice
    zero = [z for z in dict.fromkeys(zero) if z not in ("_WeightNorm", "ParametrizationList", "ModuleDict")]
    weighted = {type(m).__name__ for m in model.modules() if any(True for _ in m.parameters(recurse=False))}
    skipped = tuple([f"{z} (own weights)" for z in zero if z in weighted] + [z for z in zero if z not in weighted])
    notes = [] if exact else ["counted on meta tensors as they are: this ptflops has no torch_function_wrapper, so "
                              "torch's reference code for ops without a meta kernel may add to the count"]
    if backend == "pytorch":
        notes.append("hooks only exact nn types: subclasses (ParametrizedConv2d = weight-normed convs, "
                     "MeanShift) and the '@' operator (attention q k^T, attn v) count 0; biases, activations "
                     "and torch.add/mul count as MACs")
    else:
        notes.append("aten.mm/bmm/addmm/convolution only, bias adds included; every other op is a zero-op")
    name = "ptflops" if backend == "pytorch" else "ptflops_aten"
    return Counts(name, CONVENTIONS[name].label, shape, params=int(params), multi_adds=int(macs),
                  skipped=skipped, notes=tuple(notes), seconds=time.perf_counter() - t0)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:160] if text else "no detail"
