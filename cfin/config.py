"""One frozen dataclass describes a CFIN network; every variant is ``dataclasses.replace(base, ...)``.

Presets ``x2``, ``x3``, ``x4`` are the paper's models as the official code builds them
(../shared/REFERENCE.md): per-scale heads per CFGT, CIAM deconv width and a weight-normed
expand at x2. ``tiny`` shrinks the same network for CPU tests.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from cfin.errors import CFINError, choice_error

SCALES = (2, 3, 4)
MASKS = ("gumbel", "softmax", "maxpool", "none")
MASK_EVAL = ("sample", "argmax")
# The names of cfin.models.blocks.REGISTRY, which builds them (the models import this module, so
# it cannot import them; tests/test_blocks.py holds the two equal).
CONV_BLOCKS = ("ciam", "rcab", "imdb", "rfdb", "lb", "hpb", "wdib")
TOKEN_MIXERS = ("cgm", "linear", "gconv")
CGM_IMPLS = ("unfold", "conv")
CIAM_BRANCH_IMPLS = ("deconv", "1x1")
CGA_GRAM_CHOICES = ("auto", "always", "never")


@dataclass(frozen=True)
class CFINConfig:
    """A CFIN network (Fig. 2), faithful to the official code by default.

    Args:
        scale: upscaling factor (2, 3 or 4).
        n_feats: width of the convolution stage (48).
        dim: width of the Transformer stage after the 1x1 expand (144).
        heads: attention heads of each CFGT; its length is the number of CT blocks.
        loop: consecutive CT blocks sharing one conv stage and expand/squeeze pair
            (the paper's "loop mechanism"; 2 in CFIN).
        deconv_feats: width of CIAM's transposed-conv branch (64; 72 at x2).
        expand_weight_norm: weight norm on the 1x1 expand (official: x2 only).
        mask: RIFU's mask (Tables III, IV): gumbel | softmax | maxpool | none.
        mask_eval: the Gumbel mask at inference: "sample" draws a hard Gumbel sample as
            the official code does (outputs depend on the RNG: fix ``torch.manual_seed``
            to reproduce them); "argmax" takes the noiseless argmax.
        ciam_branch: CIAM's up/down-sampling branch (section V-A.2).
        conv_block: the conv-stage block (Table V): ciam | rcab | imdb | rfdb | lb | hpb | wdib, built
            by :data:`cfin.models.blocks.REGISTRY`.
        transformer: whether CT blocks have a Transformer stage (Table V, Table X).
        num_cfgt: how many CT blocks, counted from the first, keep their Transformer stage
            (Table VIII's CFGT-N); None: every block (N = the number of blocks is read as None).
            An expand/squeeze pair is built only
            for the conv stages whose blocks keep one; the other blocks are
            ``x = x + conv_j(x)``. Must be None or 0 without the Transformer stage.
        conv_stage: whether CT blocks have a conv stage (Table IX's OnlyT, Table X's
            Pure-Transformer): without it block i is ``x = x + squeeze_j(CFGT_i(expand_j(x)))``,
            the expand reading the previous block's (first: the head's) features.
        token_mixer: the projection inside CGA/IGP (Table VI): cgm | linear | gconv.
        gconv_groups: groups of the ``gconv`` token mixer (a k x k grouped conv with the
            CGM's k); 4 reproduces Table VI's GConv row best (ablations/table_06_cgm.py).
        kv_share: the second CGA adds the first CGA's K and V (eq. 17, Table VII).
        cga_kernels: CGM kernel size of the two CGAs' qkv projection. The official
            code passes (1, 3) but ignores it: both are 1 (see REFERENCE.md). (1, 3) is the
            paper's "Cross" in the CGAs (Table VII: the two CGAs' CGMs use different k).
        igp_kernels: CGM kernel sizes of the IGP's two projections: (1, 3) as the paper
            (section III-C.2: the IGP "also adopts the idea of cross receptive fields") and the
            official code build it; (1, 1) is the IGP without Cross (Table VII's KV row).
        cgm_impl: how the CGM's per-sample convolution runs: "unfold" (the official
            unfold + matmul) or "conv" (a plain or grouped convolution, same function; on
            CUDA, without gradients, the context pooling runs as two reductions:
            :func:`cfin.models.cgm.context_pool`).
        rgb_range: pixel range of input and output (255).
        rgb_mean: the mean the mean shift subtracts, per channel, as a fraction of rgb_range.
        ciam_branch_impl: how CIAM's up/down-sampling branch runs: "deconv" (official: a
            2x2 stride-2 transposed conv, then a 1x1 stride-2 conv) or "1x1" (the same
            function from the same parameters: tap (0, 0) of the transposed conv and the
            1x1 conv at input resolution; see REFERENCE.md).
        fused_attention: compute each CGA with fewer passes over the pixels (q k^T and
            the norms from the input's Gram matrix, attn v as one 1x1 conv of the input),
            and the expand's ReLU and the IGP's GELU inside their convs where oneDNN can;
            the same function.
        cga_gram: with ``fused_attention`` and a 1x1 CGM, where a CGA takes q k^T and the
            norms from the Gram matrix: "auto" where that costs fewer multiply-adds than
            materialising q and k (:func:`cfin.models.gram.gram_saving`; the released
            network's CFGTs from 965 to 1,049 pixels by head width), "always", "never".
            The same function either way.
        fused_conv_stage: RIFU and CIAM in fewer elementwise passes (activations in place,
            ECA's gate and the residual scalars in one multiply-add; without gradients, the
            hard Gumbel sample without its straight-through arithmetic); the same function.
        fused_tail: the reconstruction (eq. 4) with one pixel shuffle and no mean-shift
            conv at the output size: ``PS(a) + PS(b) = PS(a + b)``, and the add-mean 1x1
            conv folded into both upsampling convs' weights; the same function.
        channels_last: on CPU, run the CT body of a single image (batch 1) in channels-last
            memory layout (faster oneDNN convolutions and LayerNorms); batches stay NCHW, as
            the per-sample convolutions fold them into grouped convs, and so does CUDA, whose
            float32 cuDNN convs are NCHW kernels. The same function, output in NCHW.
        grad_checkpoint: recompute each CT block in the backward pass instead of storing
            its activations (torch.utils.checkpoint, RNG state restored, so the Gumbel
            masks match); training only, the same gradients with less memory.
    """

    scale: int = 4
    n_feats: int = 48
    dim: int = 144
    heads: tuple[int, ...] = (8, 12, 16, 12, 8, 12, 16, 12)
    loop: int = 2
    deconv_feats: int = 64
    expand_weight_norm: bool = False
    mask: str = "gumbel"
    mask_eval: str = "sample"
    ciam_branch: bool = True
    conv_block: str = "ciam"
    transformer: bool = True
    num_cfgt: int | None = None
    conv_stage: bool = True
    token_mixer: str = "cgm"
    gconv_groups: int = 4
    kv_share: bool = True
    cga_kernels: tuple[int, int] = (1, 1)
    igp_kernels: tuple[int, int] = (1, 3)
    cgm_impl: str = "unfold"
    rgb_range: float = 255.0
    rgb_mean: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)
    ciam_branch_impl: str = "deconv"
    fused_attention: bool = False
    cga_gram: str = "auto"
    fused_conv_stage: bool = False
    fused_tail: bool = False
    channels_last: bool = False
    grad_checkpoint: bool = False

    def __post_init__(self):
        _check_types(self)
        object.__setattr__(self, "heads", tuple(self.heads))
        object.__setattr__(self, "cga_kernels", tuple(self.cga_kernels))
        object.__setattr__(self, "igp_kernels", tuple(self.igp_kernels))
        object.__setattr__(self, "rgb_mean", tuple(self.rgb_mean))
        if self.scale not in SCALES:
            raise choice_error("scale", self.scale, SCALES)
        for name, valid in _CHOICES.items():
            if getattr(self, name) not in valid:
                raise choice_error(name, getattr(self, name), valid)
        _positive(self, "n_feats", "dim", "loop", "deconv_feats", "gconv_groups")
        if self.transformer and self.token_mixer == "gconv" and self.dim % self.gconv_groups:
            raise CFINError(f"the gconv token mixer needs dim divisible by gconv_groups: "
                            f"dim = {self.dim}, gconv_groups = {self.gconv_groups}")
        if self.rgb_range <= 0:
            raise CFINError(f"rgb_range must be positive, got {self.rgb_range}")
        if any(h <= 0 for h in self.heads):
            raise CFINError(f"heads must be positive ints, got {self.heads}")
        if len(self.heads) % self.loop:
            raise CFINError(f"the number of CT blocks (len(heads) = {len(self.heads)}) must be a "
                            f"multiple of loop = {self.loop}")
        if self.transformer:
            for h in self.heads:
                if self.dim % h:
                    raise CFINError(f"dim = {self.dim} must be divisible by every head count; "
                                    f"{h} in heads = {self.heads} does not divide it")
            if self.token_mixer == "cgm" and self.dim % 8:
                raise CFINError(f"the CGM groups channels by 8: dim must be a multiple of 8, got {self.dim}")
        if self.num_cfgt is not None:
            if not 0 <= self.num_cfgt <= len(self.heads):
                raise CFINError(f"num_cfgt must be None or an int from 0 to the number of CT blocks "
                                f"(len(heads) = {len(self.heads)}), got {self.num_cfgt!r}")
            if not self.transformer and self.num_cfgt:
                raise CFINError(f"num_cfgt = {self.num_cfgt} needs the Transformer stage: set transformer=True "
                                f"or num_cfgt to None or 0")
            if self.num_cfgt == len(self.heads):  # every block: the same network as None, so one config
                object.__setattr__(self, "num_cfgt", None)  # (one hash, one training: Table VIII's CFGT-8 is CFIN)
        if not self.conv_stage and self.num_transformer_blocks != len(self.heads):
            raise CFINError("without the conv stage (conv_stage=False) every CT block needs its Transformer "
                            f"stage: transformer=True and num_cfgt None or {len(self.heads)}, got "
                            f"transformer={self.transformer}, num_cfgt={self.num_cfgt}")
        for name in ("cga_kernels", "igp_kernels"):
            if any(k not in (1, 3, 5, 7) for k in getattr(self, name)):
                raise CFINError(f"{name} must be two odd kernel sizes from 1, 3, 5, 7, got {getattr(self, name)}")

    @property
    def num_blocks(self) -> int:
        """Number of CT blocks (= CFGTs when the Transformer stage is on)."""
        return len(self.heads)

    @property
    def num_conv_stages(self) -> int:
        """Distinct conv stages (CIAMs), each shared by ``loop`` blocks (0 without the conv stage)."""
        return len(self.heads) // self.loop if self.conv_stage else 0

    @property
    def num_transformer_blocks(self) -> int:
        """CT blocks with a Transformer stage (CFGTs): the first ``num_cfgt``, all, or none."""
        if not self.transformer:
            return 0
        return len(self.heads) if self.num_cfgt is None else self.num_cfgt

    @property
    def num_expand_pairs(self) -> int:
        """Distinct expand/squeeze pairs: one per group of ``loop`` blocks holding a CFGT."""
        return -(-self.num_transformer_blocks // self.loop)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CFINConfig":
        _reject_unknown(d)
        return cls(**d)

    @classmethod
    def from_json(cls, path) -> "CFINConfig":
        """The config a JSON file of fields describes; a CFINError naming the file for anything else."""
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except FileNotFoundError:
            raise CFINError(f"config file not found: {path}") from None
        except IsADirectoryError:
            raise CFINError(f"config file {path} is a folder, expected a JSON file of CFINConfig fields") from None
        except UnicodeDecodeError:
            raise CFINError(f"config file {path} is not a UTF-8 JSON file (it holds bytes that are not "
                            f"UTF-8 text)") from None
        except OSError as e:
            raise CFINError(f"config file {path} cannot be read: {e.strerror or e}") from None
        except json.JSONDecodeError as e:
            raise CFINError(f"config file {path} is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise CFINError(f"config file {path} must hold a JSON object of CFINConfig fields")
        try:
            return cls.from_dict(d)
        except CFINError as e:
            raise CFINError(f"config file {path}: {e}") from None

    def replace(self, **changes) -> "CFINConfig":
        """A copy with ``changes`` (validated as a new config); unknown field names are rejected."""
        _reject_unknown(changes)
        return dataclasses.replace(self, **changes)

    def with_impl(self, name: str) -> "CFINConfig":
        """This network computed by the named implementation of :data:`IMPLS` (same function)."""
        return self.replace(**impl_switches(name))

    def network(self) -> dict[str, Any]:
        """The fields that say which function this is: every field but :data:`COMPUTE_FIELDS`,
        which say only how it is computed (a run trained under one resumes under another)."""
        return {k: v for k, v in json.loads(json.dumps(self.to_dict())).items() if k not in COMPUTE_FIELDS}


def impl_switches(name: str) -> dict[str, Any]:
    """The config fields that select implementation ``name`` of :data:`IMPLS`; a CFINError
    listing the implementations for any other name."""
    if name not in IMPLS:
        raise choice_error("implementation", name, IMPLS)
    return IMPLS[name]


def _reject_unknown(fields) -> None:
    """A CFINError naming the keys of ``fields`` that are not CFINConfig fields, and listing those."""
    known = {f.name for f in dataclasses.fields(CFINConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise CFINError(f"unknown config field(s) {unknown}; valid fields: {', '.join(sorted(known))}")


def _positive(cfg, *names):
    """A CFINError for the first of the int fields ``names`` that is not positive."""
    for n in names:
        v = getattr(cfg, n)
        if v <= 0:
            raise CFINError(f"{n} must be a positive int, got {v!r}")


def _is_int(v) -> bool:
    """An int and not a bool (JSON's true would otherwise pass as 1)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    """A finite int or float, not a bool."""
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _is_sequence_of(v, check, length: int | None = None) -> bool:
    """A list or tuple (of ``length`` items, when given) whose items all pass ``check``."""
    return isinstance(v, (list, tuple)) and (length is None or len(v) == length) and all(map(check, v))


# The string fields and their valid values.
_CHOICES = {"mask": MASKS, "mask_eval": MASK_EVAL, "conv_block": CONV_BLOCKS, "token_mixer": TOKEN_MIXERS,
            "cgm_impl": CGM_IMPLS, "ciam_branch_impl": CIAM_BRANCH_IMPLS, "cga_gram": CGA_GRAM_CHOICES}

# Each field's type, checked before its value: field -> (check, what a value must be).
_FIELD_TYPES: dict[str, tuple] = {
    **{n: (_is_int, "an int") for n in ("scale", "n_feats", "dim", "loop", "deconv_feats", "gconv_groups")},
    **{n: (lambda v: isinstance(v, bool), "True or False")
       for n in ("expand_weight_norm", "ciam_branch", "transformer", "conv_stage", "kv_share", "fused_attention",
                 "fused_conv_stage", "fused_tail", "channels_last", "grad_checkpoint")},
    **{n: (lambda v: isinstance(v, str), f"one of {', '.join(valid)}") for n, valid in _CHOICES.items()},
    "heads": (lambda v: _is_sequence_of(v, _is_int) and len(v) > 0,
              "a non-empty list of ints (the heads of each CFGT)"),
    "num_cfgt": (lambda v: v is None or _is_int(v), "None or an int"),
    **{n: (lambda v: _is_sequence_of(v, _is_int, 2), "a list of two ints (kernel sizes)")
       for n in ("cga_kernels", "igp_kernels")},
    "rgb_range": (_is_number, "a number"),
    "rgb_mean": (lambda v: _is_sequence_of(v, _is_number, 3), "a list of three numbers (R, G, B)"),
}


def _check_types(cfg: CFINConfig) -> None:
    """A CFINError naming the first field whose value has the wrong type, and the type expected."""
    for f in dataclasses.fields(cfg):
        check, expected = _FIELD_TYPES[f.name]
        value = getattr(cfg, f.name)
        if not check(value):
            raise CFINError(f"config field {f.name} must be {expected}, got {value!r} ({type(value).__name__})")


_HEADS_X24 = (8, 12, 16, 12, 8, 12, 16, 12)
_HEADS_X3 = (8, 12, 8, 12, 8, 12, 8, 12)

# The paper's models (Table I) as the official CFINx{2,3,4}.py build them.
PRESETS: dict[str, CFINConfig] = {
    "x2": CFINConfig(scale=2, heads=_HEADS_X24, deconv_feats=72, expand_weight_norm=True),
    "x3": CFINConfig(scale=3, heads=_HEADS_X3, deconv_feats=64),
    "x4": CFINConfig(scale=4, heads=_HEADS_X24, deconv_feats=64),
    # The same network shrunk for CPU tests: 2 CT blocks, narrow stages.
    "tiny": CFINConfig(scale=4, n_feats=16, dim=32, heads=(2, 4), deconv_feats=16),
}


def preset(name: str | int, **changes) -> CFINConfig:
    """A preset by name ("x2", "x3", "x4", "tiny"; an int 2/3/4 means "x{n}"), with overrides."""
    key = f"x{name}" if isinstance(name, int) else str(name)
    if key not in PRESETS:
        raise choice_error("preset", name, PRESETS)
    cfg = PRESETS[key]
    if key != "tiny" and changes.get("scale", cfg.scale) in SCALES and changes.get("scale", cfg.scale) != cfg.scale:
        raise CFINError(f"preset {key} is the official x{cfg.scale} network; for scale {changes['scale']} take "
                        f"preset x{changes['scale']} (or preset({key!r}).replace(scale={changes['scale']}) for "
                        f"{key}'s layout at another scale)")
    return cfg.replace(**changes) if changes else cfg


# The fields that choose how a network is computed, not which function it is.
COMPUTE_FIELDS = ("cgm_impl", "ciam_branch_impl", "fused_attention", "cga_gram", "fused_conv_stage", "fused_tail",
                  "channels_last", "grad_checkpoint")

# Two computations of the same network (tests/test_fast_path.py holds them equal):
# "faithful" is the official code's; "fast" swaps in the rewrites. grad_checkpoint is a
# separate opt-in that trades training time for memory.
IMPLS: dict[str, dict[str, Any]] = {
    "faithful": dict(cgm_impl="unfold", ciam_branch_impl="deconv", fused_attention=False, fused_conv_stage=False,
                     fused_tail=False, channels_last=False),
    "fast": dict(cgm_impl="conv", ciam_branch_impl="1x1", fused_attention=True, fused_conv_stage=True,
                 fused_tail=True, channels_last=True),
}
