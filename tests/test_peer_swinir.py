"""SwinIR (lightweight): its shifted-window mask, relative positions, padding, and its own count.

The own count (SwinIR's ``flops()``) is checked against the three numbers SwinIR's paper printed
for its lightweight network, and against the full count term by term.
"""
from __future__ import annotations

import pytest
import torch

import cfin.peers
from cfin.complexity import count
from cfin.errors import CFINError
from cfin.peers.swinir import SwinIR, relative_position_index, shifted_window_mask, swinir_flops


def _mask_by_slices(h: int, w: int, window: int, shift: int) -> torch.Tensor:
    """The mask as the paper describes it: label the 3 x 3 regions of the shifted map, compare labels."""
    label = torch.zeros(h, w)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(cuts):
        for j, cols in enumerate(cuts):
            label[rows, cols] = 3 * i + j
    windows = label.view(h // window, window, w // window, window).permute(0, 2, 1, 3).reshape(-1, window ** 2)
    return (windows[:, None, :] != windows[:, :, None]).float() * -100.0


@pytest.mark.parametrize("h, w, window", [(64, 64, 8), (24, 32, 8), (16, 8, 8), (12, 18, 6)])
def test_shifted_window_mask_labels_the_three_regions_per_axis(h, w, window):
    mask = shifted_window_mask((h, w), window, window // 2)
    assert mask.shape == (h * w // window ** 2, window ** 2, window ** 2)
    torch.testing.assert_close(mask, _mask_by_slices(h, w, window, window // 2), rtol=0, atol=0)
    # the bottom-right window holds four equal regions: 3/4 of its token pairs are masked; where the
    # map is more than one window on each side, the top-left window holds one region: nothing masked
    assert mask[-1].eq(-100).float().mean() == 0.75
    assert mask[0].eq(0).all() == (min(h, w) > window)


def test_stored_mask_is_the_one_for_the_training_size_and_other_sizes_are_computed():
    model = SwinIR(4, depths=(2,), num_heads=(2,), embed_dim=8)
    shifted = model.layers[0].residual_group.blocks[1]
    assert shifted.shift_size == 4 and model.layers[0].residual_group.blocks[0].attn_mask is None
    torch.testing.assert_close(shifted.attn_mask, _mask_by_slices(64, 64, 8, 4), rtol=0, atol=0)
    x = torch.zeros(1, 1)
    assert shifted.mask_for((64, 64), x) is shifted.attn_mask
    torch.testing.assert_close(shifted.mask_for((24, 16), x), _mask_by_slices(24, 16, 8, 4), rtol=0, atol=0)


def test_relative_position_index_is_the_offset_between_two_tokens():
    w = 8
    index = relative_position_index(w)
    assert index.shape == (w * w, w * w) and index.min() == 0 and index.max() == (2 * w - 1) ** 2 - 1
    for (y1, x1), (y2, x2) in [((0, 0), (7, 7)), ((7, 7), (0, 0)), ((3, 5), (3, 5)), ((2, 6), (5, 1))]:
        assert index[y1 * w + x1, y2 * w + x2] == (y1 - y2 + w - 1) * (2 * w - 1) + (x1 - x2 + w - 1)


def test_released_key_names_and_buffers():
    sd = cfin.peers.build("swinir-light", 4).state_dict()
    assert sd["layers.3.residual_group.blocks.5.attn_mask"].shape == (64, 64, 64)
    assert "layers.0.residual_group.blocks.0.attn_mask" not in sd  # unshifted: a None buffer
    assert sd["layers.0.residual_group.blocks.0.attn.relative_position_index"].shape == (64, 64)
    assert sd["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"].shape == (225, 6)
    assert sd["upsample.0.weight"].shape == (48, 60, 3, 3) and sd["patch_embed.norm.weight"].shape == (60,)
    assert "mean" not in sd


def test_too_small_an_input_for_reflect_padding_is_a_clear_error():
    model = SwinIR(4, depths=(2,), num_heads=(2,), embed_dim=8)
    with pytest.raises(CFINError, match=r"multiple of 8 pixels a side: 3 x 20 needs 5 more rows.*at least 5 x 5"):
        model(torch.zeros(1, 3, 3, 20))


# SwinIR's paper, lightweight SR (Params, Mult-Adds): its models/network_swinir.py __main__ sizes the
# LR as (1024 // s // 8 + 1) * 8 by (720 // s // 8 + 1) * 8, and prints model.flops().
PRINTED = {2: (878e3, 195.6e9), 3: (886e3, 87.2e9), 4: (897e3, 49.6e9)}


@pytest.mark.parametrize("scale", sorted(PRINTED))
def test_own_count_reproduces_swinirs_printed_numbers(scale):
    with torch.device("meta"):
        model = SwinIR(scale)
    lr = ((1024 // scale // 8 + 1) * 8, (720 // scale // 8 + 1) * 8)
    params, macs = swinir_flops(model, (1, 3, *lr))
    # printed to 3 significant digits (K) and one decimal (G): half a unit of the last digit
    assert abs(params - PRINTED[scale][0]) <= 500
    assert abs(macs - PRINTED[scale][1]) <= 0.05e9
    # the parameters SwinIR printed leave out the relative position bias tables (24 x 15 x 15 x 6)
    assert sum(p.numel() for p in model.parameters()) - params == 24 * 225 * 6


def test_own_count_departs_from_the_full_count_where_its_docstring_says():
    with torch.device("meta"):
        model = cfin.peers.build("swinir-light", 4)
    lr = (17, 23)  # padded to 24 x 24 by the forward, and by the own rule
    own = count(model, lr, convention="own")
    full = count(model, lr, convention="full")
    hw, c, s, layers = 24 * 24, 60, 4, 24
    # full - own: conv_after_body's other 6 C^2, the upsampler's other 27 C (s^2 - 1) per pixel,
    # less the LayerNorms own adds (C per pixel: the embedding's, and two per Swin layer)
    assert full.multi_adds - own.multi_adds == hw * (6 * c * c + 27 * c * (s * s - 1) - (1 + 2 * layers) * c)
    assert full.params - own.params == layers * 225 * 6
