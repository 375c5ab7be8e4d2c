"""The counting conventions, pinned in one place: what is counted, by which tool, at which size.

Every number the complexity package reports carries the ``label`` of its convention. All
operation counts are multiply-accumulates (MACs, the paper's "Multi-Adds"), never FLOPs
(FLOPs = 2 x MACs); fvcore's "flops" are MACs for conv, linear and matmul too.

The paper's default input is the LR image whose x``scale`` output is 1280 x 720
(REFERENCE.md, "Counting"): 640x360 at x2, 426x240 at x3 (output 1278 x 720), 320x180 at x4.
Sizes are ``H x W`` (rows x columns, as in torch).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from cfin.errors import CFINError, choice_error

UNIT = "MACs"
HR_SIZE = (720, 1280)  # the paper's output size, H x W
# The CGM pools its context to k x k = 3 x 3 and every RIFU conv is 3 x 3: a smaller LR side
# makes the counts describe padding, not an image.
MIN_LR_SIDE = 3


@dataclass(frozen=True)
class Convention:
    """One way of counting Params and Multi-Adds.

    Args:
        name: the key used in the API, the CLI and the JSON output.
        label: the one-line label printed beside every number of this convention.
        tool: what produces it.
        needs_data: whether the count runs the network on real tensors (slow at 720p).
    """

    name: str
    label: str
    tool: str
    needs_data: bool
    peers_only: bool = False


CONVENTIONS: dict[str, Convention] = {
    "paper": Convention(
        "paper",
        "paper: torchsummaryX rule on the official module tree (leaf modules; conv weight x output "
        "pixels, other weights once; reused modules' params once, their Multi-Adds per call), MACs",
        "cfin.complexity.paper (an emulation of torchsummaryX 1.3 on the official IVIPLab/CFIN tree)",
        False,
    ),
    "full": Convention(
        "full",
        "full: every parameter used in the forward; MACs of every conv (incl. transposed), linear and "
        "matmul per call (CGM modulated conv and attention included)",
        "torch.utils.flop_counter.FlopCounterMode on meta tensors (FLOPs / 2), + ECA's 1-D conv",
        False,
    ),
    "fvcore": Convention(
        "fvcore",
        "fvcore: FlopCountAnalysis.total() (its 'flops' are MACs for conv/linear/matmul; layer_norm "
        "counted, unsupported ops skipped), parameter_count",
        "fvcore.nn.FlopCountAnalysis (jit trace on real CPU tensors)",
        True,
    ),
    "ptflops": Convention(
        "ptflops",
        "ptflops: get_model_complexity_info, backend 'pytorch' (module hooks for exact nn types + "
        "patched functionals; counts biases and activations, skips unknown module types), MACs",
        "ptflops.get_model_complexity_info (module hooks, meta tensors)",
        False,
    ),
    "ptflops_aten": Convention(
        "ptflops_aten",
        "ptflops (aten): get_model_complexity_info, backend 'aten' (aten.mm/bmm/addmm/convolution "
        "incl. bias adds), MACs",
        "ptflops.get_model_complexity_info, backend='aten' (dispatch mode, meta tensors)",
        False,
    ),
    "own": Convention(
        "own",
        "own: the method's own counting rule, as its paper's code counted (a peer's model.flops(), an analytic "
        "formula, a counting library's rule); each count's label names the rule. Peers that have one only",
        "the peer's PeerSpec.own_count (cfin.peers)",
        False,
        peers_only=True,
    ),
}

# The paper's printed Params / Multi-Adds (Table I, Table II) and the torchsummaryX rule measured
# on the official code (REFERENCE.md, "Counting"): (params, multi_adds, printed strings).
PAPER_PRINTED = {
    2: {"params": 675_938, "multi_adds_G": 116.85, "table": ("675K", "116.9G")},
    3: {"params": 680_640, "multi_adds_G": 53.49, "table": ("681K", "53.5G")},
    4: {"params": 698_826, "multi_adds_G": 31.18, "table": ("699K", "31.2G")},
}
# Everything the official forward computes (REFERENCE.md): params used, all multiply-adds (G).
OFFICIAL_FULL = {
    2: {"params": 3_359_522, "multi_adds_G": 920.3, "registered_params": 6_032_164},
    3: {"params": 3_369_408, "multi_adds_G": 409.2, "registered_params": 6_042_050},
    4: {"params": 3_382_410, "multi_adds_G": 231.0, "registered_params": 6_055_052},
}

# The paper's "GPU Memory" column (Tables II, VIII, X) is a training figure: the discussion
# (section VI) calls it "the training memory"; CFIN x4 trains on batch 16 of 48 x 48 LR patches.
TRAIN_BATCH = 16
TRAIN_PATCH = 48


def applies(name: str, model_or_config) -> bool:
    """Whether convention ``name`` can count ``model_or_config``: ``own`` only a peer with a rule of its own."""
    if not CONVENTIONS[name].peers_only:
        return True
    peer = getattr(model_or_config, "peer", None)
    if peer is None:
        return False
    from cfin.peers import spec

    return spec(peer).own_count is not None


def convention(name: str) -> Convention:
    """The convention called ``name``; a CFINError listing the valid ones otherwise."""
    if name not in CONVENTIONS:
        raise choice_error("convention", name, CONVENTIONS)
    return CONVENTIONS[name]


def default_lr_size(scale: int) -> tuple[int, int]:
    """The LR size whose x``scale`` output is (about) 1280 x 720: ``(720 // s, 1280 // s)``."""
    return HR_SIZE[0] // scale, HR_SIZE[1] // scale


def parse_size(text: str, what: str = "size") -> tuple[int, int]:
    """``"HxW"`` (rows x columns) -> ``(H, W)``; a CFINError for anything else."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×,]\s*(\d+)\s*", str(text))
    if not m:
        raise CFINError(f"{what} must be HxW with two positive integers (rows x columns, e.g. 180x320), "
                        f"got {text!r}")
    return int(m[1]), int(m[2])


def check_lr_size(size, scale: int, what: str = "LR size") -> tuple[int, int]:
    """``size`` as an (H, W) pair of ints, at least MIN_LR_SIDE on each side."""
    if isinstance(size, str):
        size = parse_size(size, what)
    try:
        h, w = (int(v) for v in size)
        if any(int(v) != v for v in size):
            raise ValueError
    except (TypeError, ValueError):
        raise CFINError(f"{what} must be a pair of positive integers (H, W), got {size!r}") from None
    if h < MIN_LR_SIDE or w < MIN_LR_SIDE:
        raise CFINError(f"{what} {h}x{w} is too small at x{scale}: each side must be at least "
                        f"{MIN_LR_SIDE} LR pixels (the 3x3 convs and the CGM's 3x3 pooled context)")
    return h, w


def lr_size_from_hr(size, scale: int) -> tuple[int, int]:
    """The LR size for an HR (output) size, which must be divisible by ``scale``."""
    if isinstance(size, str):
        size = parse_size(size, "HR size")
    h, w = (int(v) for v in size)
    if h % scale or w % scale:
        hint = ""
        if (h, w) == HR_SIZE:
            lh, lw = default_lr_size(scale)
            hint = f"; the paper used --lr-size {lh}x{lw} (output {lh * scale}x{lw * scale})"
        raise CFINError(f"HR size {h}x{w} is not divisible by the scale {scale}{hint}")
    return check_lr_size((h // scale, w // scale), scale, f"LR size (HR {h}x{w} / {scale})")


def resolve_lr_size(scale: int, lr_size=None, hr_size=None) -> tuple[int, int]:
    """The LR input size from at most one of ``lr_size`` / ``hr_size`` (default: the paper's)."""
    if lr_size is not None and hr_size is not None:
        raise CFINError("give either an LR size or an HR size, not both")
    if hr_size is not None:
        return lr_size_from_hr(hr_size, scale)
    if lr_size is not None:
        return check_lr_size(lr_size, scale)
    return default_lr_size(scale)


def size_label(lr: tuple[int, int], scale: int, batch: int = 1) -> str:
    """e.g. ``"1x3x180x320 LR -> 720x1280 output (x4)"``."""
    return f"{batch}x3x{lr[0]}x{lr[1]} LR -> {lr[0] * scale}x{lr[1] * scale} output (x{scale})"
