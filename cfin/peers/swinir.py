"""SwinIR, lightweight SR configuration (Table II's "SwinIR*").

Paper: Jingyun Liang, Jiezhang Cao, Guolei Sun, Kai Zhang, Luc Van Gool, Radu Timofte,
"SwinIR: Image Restoration Using Swin Transformer", ICCV Workshops (AIM) 2021.
Shapes and key names: JingyunLiang/SwinIR @ 6545850, models/network_swinir.py (the network and its
``flops()`` methods) and main_test_swinir.py (task ``lightweight_sr``: ``img_size=64``, window 8,
``img_range=1.``, depths and heads ``[6, 6, 6, 6]``, ``embed_dim=60``, ``mlp_ratio=2``, upsampler
``pixelshuffledirect``, ``resi_connection='1conv'``). Serves Table II (x4). Released weights expect
RGB in [0, 1] (``trained_range`` 1.0) and are stored under the key ``params``.

The rebuild keeps the official module tree and keys, the two buffers included
(``relative_position_index`` in every attention, ``attn_mask`` in every shifted block, computed
for the 64 x 64 training size), so a released state_dict loads strictly. Like the official
forward, an input is reflect-padded to a multiple of the window and the output cropped; the
shifted-window mask of any other size is computed from index arithmetic on the input's device
(no Python branch on tensor values), so the network runs on the meta device.

Counting: SwinIR's printed 897K / 49.6G (its paper's Table, quoted by CFIN's Table II) come from
its own ``SwinIR.flops()`` at the LR its network_swinir.py ``__main__`` sizes for x4 (264 x 184, not
CFIN's 180 x 320) and its parameters less the relative position bias tables; :func:`swinir_flops`
is that rule written from the network's shapes (the ``own`` convention), and its docstring says
where it departs from the full count.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.errors import CFINError
from cfin.peers.common import RGB_MEAN_DIV2K, from_trained_range, to_trained_range
from cfin.peers.registry import OwnCount, PeerSpec, Source


class DropPath(nn.Module):
    """Stochastic depth per sample (the official code's timm ``DropPath``); identity in eval mode.

    Args:
        p: probability of dropping the residual branch.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
        return x * keep.bernoulli_(1.0 - self.p) / (1.0 - self.p)


class Mlp(nn.Module):
    """The feed-forward network of a Swin Transformer layer: Linear, GELU, Linear.

    Args:
        dim: token width C.
        hidden: hidden width (``mlp_ratio x C``).
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def relative_position_index(window: int) -> torch.Tensor:
    """``(w*w, w*w)`` index into the bias table of the offset between two tokens of a window.

    The offset ``(dy, dx)``, each in ``[-(w-1), w-1]``, becomes ``(dy + w-1) * (2w-1) + dx + w-1``.
    """
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack((ys.flatten(), xs.flatten()))            # 2 x N
    offset = coords[:, :, None] - coords[:, None, :] + (window - 1)  # 2 x N x N
    return offset[0] * (2 * window - 1) + offset[1]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``B x H x W x C`` -> ``(B * nW) x (w*w) x C``, windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """The inverse of :func:`window_partition`: ``(B * nW) x (w*w) x C`` -> ``B x H x W x C``."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(size: tuple[int, int], window: int, shift: int, *, device=None,
                        dtype=torch.float32) -> torch.Tensor:
    """The SW-MSA mask (Swin Transformer, Sec. 3.2) of an ``H x W`` map: ``nW x (w*w) x (w*w)``.

    After the cyclic shift, each axis has three regions (``[0, n-w)``, ``[n-w, n-shift)``,
    ``[n-shift, n)``); two tokens of one window from different regions get -100, others 0.
    Region labels come from index arithmetic, so the mask is built on any device, meta included.
    """
    def region(n: int) -> torch.Tensor:
        idx = torch.arange(n, device=device)
        return (idx >= n - window).long() + (idx >= n - shift).long()

    h, w = size
    label = (region(h)[:, None] * 3 + region(w)[None, :]).view(1, h, w, 1)
    label = window_partition(label, window).squeeze(-1)             # nW x N
    differs = label[:, None, :] != label[:, :, None]
    return torch.zeros(differs.shape, dtype=dtype, device=device).masked_fill(differs, -100.0)


class WindowAttention(nn.Module):
    """(S)W-MSA: multi-head self-attention inside a window, with a learned relative position bias.

    Args:
        dim: token width C.
        window: window side w.
        num_heads: attention heads (C / heads per head).
    """

    def __init__(self, dim: int, window: int, num_heads: int):
        super().__init__()
        self.dim, self.window_size, self.num_heads = dim, (window, window), num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.softmax = nn.Softmax(dim=-1)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: (B * nW) x N x C; ``mask``: nW x N x N (0 / -100) or None."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(b // nw, nw, self.num_heads, n, n) + mask[None, :, None]).view(b, self.num_heads, n, n)
        x = (self.softmax(attn) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class SwinTransformerBlock(nn.Module):
    """Swin Transformer layer (SwinIR Eq. 5-6): ``x + (S)W-MSA(LN(x))``, then ``x + MLP(LN(x))``.

    Args:
        dim: token width C.
        input_resolution: the training size ``(H, W)`` the stored ``attn_mask`` is for.
        num_heads: attention heads.
        window: window side w.
        shift: cyclic shift (0 or w/2).
        mlp_ratio: MLP hidden width / C.
        drop_path: stochastic-depth rate of both residual branches.
    """

    def __init__(self, dim: int, input_resolution: tuple[int, int], num_heads: int, window: int, shift: int,
                 mlp_ratio: float, drop_path: float):
        super().__init__()
        self.input_resolution = tuple(input_resolution)
        if min(self.input_resolution) <= window:  # the official rule: one window, no shift
            window, shift = min(self.input_resolution), 0
        self.window_size, self.shift_size = window, shift
        self.mlp_ratio = mlp_ratio
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = shifted_window_mask(self.input_resolution, window, shift) if shift > 0 else None
        self.register_buffer("attn_mask", mask)

    def mask_for(self, size: tuple[int, int], like: torch.Tensor) -> torch.Tensor | None:
        """The stored mask at the training size, else the one of ``size``; None without a shift."""
        if self.shift_size == 0:
            return None
        if size == self.input_resolution:
            return self.attn_mask
        return shifted_window_mask(size, self.window_size, self.shift_size, device=like.device, dtype=like.dtype)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        b, _, c = x.shape
        s = self.shift_size
        y = self.norm1(x).view(b, h, w, c)
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        y = self.attn(window_partition(y, self.window_size), self.mask_for(size, x))
        y = window_reverse(y, self.window_size, h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class BasicLayer(nn.Module):
    """A stack of Swin Transformer layers, shift 0 and w/2 alternating.

    Args:
        dim: token width C.
        input_resolution: the training size.
        depth: layers.
        num_heads: attention heads.
        window: window side.
        mlp_ratio: MLP hidden width / C.
        drop_path: stochastic-depth rate of each layer.
    """

    def __init__(self, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int, window: int,
                 mlp_ratio: float, drop_path: list[float]):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, input_resolution, num_heads, window, 0 if i % 2 == 0 else window // 2,
                                 mlp_ratio, drop_path[i])
            for i in range(depth))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, size)
        return x


class PatchEmbed(nn.Module):
    """Feature map -> tokens (patch size 1: a flatten), with an optional LayerNorm.

    Args:
        dim: width C.
        norm: whether a LayerNorm follows (SwinIR's first embedding: yes; inside an RSTB: no).
    """

    def __init__(self, dim: int, norm: bool):
        super().__init__()
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2).transpose(1, 2)
        return x if self.norm is None else self.norm(x)


class PatchUnEmbed(nn.Module):
    """Tokens -> feature map (B x HW x C -> B x C x H x W)."""

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *size)


class RSTB(nn.Module):
    """Residual Swin Transformer block (SwinIR Eq. 3-4): layers, a 3x3 conv, plus the input.

    Args:
        dim: width C.
        input_resolution: the training size.
        depth: Swin Transformer layers.
        num_heads: attention heads.
        window: window side.
        mlp_ratio: MLP hidden width / C.
        drop_path: stochastic-depth rate of each layer.
    """

    def __init__(self, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int, window: int,
                 mlp_ratio: float, drop_path: list[float]):
        super().__init__()
        self.residual_group = BasicLayer(dim, input_resolution, depth, num_heads, window, mlp_ratio, drop_path)
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(dim, norm=False)
        self.patch_unembed = PatchUnEmbed()

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.patch_embed(self.conv(self.patch_unembed(self.residual_group(x, size), size))) + x


class SwinIR(nn.Module):
    """SwinIR (Fig. 2) with the lightweight reconstruction: shallow conv, RSTBs, LN, conv, one-step upsampler.

    Takes and returns RGB in [0, 255] (its weights: [0, 1], mean-subtracted).

    Args:
        scale: upscaling factor.
        embed_dim: width C (60).
        depths: Swin Transformer layers per RSTB.
        num_heads: attention heads per RSTB.
        window: window side (8).
        mlp_ratio: MLP hidden width / C (2).
        img_size: training patch size, which fixes the stored shifted-window masks (64).
        drop_path_rate: stochastic depth, rising linearly from 0 over all layers (0.1, the default).
        img_range: SwinIR's ``img_range`` (1.0).
    """

    def __init__(self, scale: int, embed_dim: int = 60, depths: tuple[int, ...] = (6, 6, 6, 6),
                 num_heads: tuple[int, ...] = (6, 6, 6, 6), window: int = 8, mlp_ratio: float = 2.0,
                 img_size: int = 64, drop_path_rate: float = 0.1, img_range: float = 1.0):
        super().__init__()
        if len(depths) != len(num_heads):
            raise CFINError(f"SwinIR: depths {depths} and num_heads {num_heads} must have one entry per RSTB")
        self.upscale, self.window_size, self.img_range = scale, window, img_range
        self.embed_dim, self.mlp_ratio = embed_dim, mlp_ratio
        self.register_buffer("mean", torch.tensor(RGB_MEAN_DIV2K).view(1, 3, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(3, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim, norm=True)
        self.patch_unembed = PatchUnEmbed()
        n = sum(depths)
        rates = [drop_path_rate * i / max(1, n - 1) for i in range(n)]  # linspace(0, rate, n), device-free
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.layers = nn.ModuleList(
            RSTB(embed_dim, (img_size, img_size), d, h, window, mlp_ratio, rates[s:s + d])
            for d, h, s in zip(depths, num_heads, starts))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)
        self.upsample = nn.Sequential(nn.Conv2d(embed_dim, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale))
        self.apply(_init_weights)

    def pad_to_windows(self, x: torch.Tensor) -> torch.Tensor:
        """Reflect-pad bottom and right to a multiple of the window (as the official forward)."""
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.window_size, (-w) % self.window_size
        if pad_h >= h or pad_w >= w:
            raise CFINError(f"SwinIR reflect-pads its input to a multiple of {self.window_size} pixels a side: "
                            f"{h} x {w} needs {pad_h} more rows and {pad_w} more columns, and reflection adds "
                            f"fewer than a side has; use an input of at least {self.window_size // 2 + 1} x "
                            f"{self.window_size // 2 + 1}")
        return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[2], x.shape[3])
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x, size)
        return self.patch_unembed(self.norm(x), size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = self.pad_to_windows(to_trained_range(x, 1.0))
        x = (x - self.mean) * self.img_range
        x = self.conv_first(x)
        x = self.upsample(self.conv_after_body(self.forward_features(x)) + x)
        x = x / self.img_range + self.mean
        return from_trained_range(x[:, :, :h * self.upscale, :w * self.upscale], 1.0)


def _init_weights(m: nn.Module) -> None:
    """The official initialisation: Linear weights trunc-normal (std 0.02), biases 0; LayerNorm 1, 0."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def swinir_flops(model: SwinIR, shape: tuple[int, int, int, int]) -> tuple[int, int]:
    """SwinIR's own count: its ``SwinIR.flops()`` (its paper's Mult-Adds) and the parameters its paper printed.

    ``flops()`` reads the size the network was built for (``img_size``), which must be a multiple
    of the window for the stored masks: here the input padded to one, the size the forward runs on.
    With ``C`` the width, ``w`` the window, ``N = w*w``, ``HW`` that size, per image:

    * conv_first ``HW * 3 * C * 9``; the first embedding's LayerNorm ``HW * C``;
    * per Swin layer: LayerNorms ``2 * HW * C``; attention ``HW/N * (N*C*3C + 2*N*N*C + N*C*C)``
      (qkv, ``q k^T``, ``attn v``, proj); MLP ``2 * HW * C * mlp_ratio*C``;
    * per RSTB its conv ``HW * C * C * 9``;
    * conv_after_body ``HW * 3 * C * C`` (3, not 9: the official code's factor);
    * the upsampler ``HW * C * 3 * 9`` (its conv has ``3 * scale^2`` outputs, counted as 3).

    Against the full count at the same size it adds the LayerNorms (not products), and leaves out
    two thirds of conv_after_body and ``1 - 1/scale^2`` of the upsampler conv (biases and the
    final LayerNorm are in neither). Params: every parameter but the relative position bias
    tables (``(2w-1)^2 x heads`` per layer), the number SwinIR printed (a tool summing the
    parameters of leaf modules, as torchsummaryX and thop do, misses those tables).
    """
    b, _, h, w = shape
    win = model.window_size
    hw = (h + (-h) % win) * (w + (-w) % win)
    c = model.embed_dim
    macs = hw * 3 * c * 9 + hw * c
    for rstb in model.layers:
        for block in rstb.residual_group.blocks:
            n = block.window_size ** 2
            attn = n * c * 3 * c + 2 * n * n * c + n * c * c
            macs += 2 * hw * c + hw // n * attn + 2 * hw * c * c * block.mlp_ratio
        macs += hw * c * c * 9
    macs += hw * 3 * c * c + hw * c * 3 * 9
    params = sum(p.numel() for name, p in model.named_parameters()
                 if not name.endswith("relative_position_bias_table"))
    return params, round(b * macs)


SPECS = (
    PeerSpec(
        name="swinir-light",
        title="SwinIR*",
        paper=("Liang, Cao, Sun, Zhang, Van Gool, Timofte: SwinIR: Image Restoration Using Swin Transformer, "
               "ICCV Workshops 2021"),
        source=Source("JingyunLiang/SwinIR", "6545850", ("models/network_swinir.py", "main_test_swinir.py")),
        scales=(4,),
        builder=SwinIR,
        trained_range=1.0,
        tables=("II",),
        printed_counting=(
            "own (SwinIR's flops(), rebuilt) at LR 264 x 184: 897,228 / 49.65G vs printed 897K / 49.6G. That LR is "
            "the one network_swinir.py's __main__ sizes, (1024 // s // 8 + 1) * 8 by (720 // s // 8 + 1) * 8, not "
            "CFIN's 180 x 320; at x2 and x3 it gives 877,752 / 195.59G and 885,867 / 87.20G, SwinIR's printed "
            "values too. The params leave out the 32,400 relative position bias parameters. At CFIN's 1280 x 720 "
            "output (LR 180 x 320, run padded to 184 x 320): own 60.18G, full 929,628 / 62.71G, torchsummaryX "
            "rule 897,228 / 11.16G."),
        own_count=OwnCount("SwinIR's SwinIR.flops() (its paper's Mult-Adds) at the input padded to a multiple of "
                           "the window; params without the relative position bias tables", swinir_flops),
        notes=("Lightweight SR configuration (embed_dim 60, depths and heads [6, 6, 6, 6], window 8, mlp_ratio 2, "
               "pixelshuffledirect, img_size 64); stochastic depth 0.1 as the official default. Inputs are "
               "reflect-padded to a multiple of 8 and the output cropped, as the official forward."),
    ),
)
