"""ESRT: the efficient multi-head attention's token split, the patch unfold / fold, its key names."""
from __future__ import annotations

import pytest
import torch

import cfin.peers
from cfin.complexity import count
from cfin.peers.esrt import EMHA, fold3, unfold3


def _block_diagonal_attention(attn: EMHA, x: torch.Tensor) -> torch.Tensor:
    """EMHA written as one softmax over all N tokens with a block-diagonal mask (chunks of N // splits)."""
    x = attn.reduce(x)
    b, n, c = x.shape
    q, k, v = attn.qkv(x).view(b, n, 3, attn.num_heads, c // attn.num_heads).permute(2, 0, 3, 1, 4)
    chunk = torch.arange(n) // max(1, n // attn.splits)
    logits = (q @ k.transpose(-2, -1)) * attn.scale
    logits = logits.masked_fill(chunk[:, None] != chunk[None, :], float("-inf"))
    return attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


@pytest.mark.parametrize("n, splits", [(391, 4), (391, 16), (64, 4), (3, 4)])
def test_emha_attends_within_consecutive_chunks_only(n, splits):
    torch.manual_seed(0)
    attn = EMHA(72, num_heads=4, splits=splits)
    x = torch.randn(2, n, 72)
    # float32 reductions over <= 391 terms of O(1) values: 1e-5 covers any order of summation
    torch.testing.assert_close(attn(x), _block_diagonal_attention(attn, x), rtol=1e-5, atol=1e-5)


def test_fold_sums_the_overlapping_patches():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, 9)
    tokens = unfold3(x)
    assert tokens.shape == (2, 7 * 9, 45)
    # each pixel appears in the 3 x 3 patches of its in-image neighbours: 9 inside, 6 on an edge, 4 in a corner
    overlaps = fold3(unfold3(torch.ones(1, 1, 7, 9)), (7, 9))
    assert overlaps[0, 0, 3, 4] == 9 and overlaps[0, 0, 0, 4] == 6 and overlaps[0, 0, 0, 0] == 4
    torch.testing.assert_close(fold3(tokens, (7, 9)), x * overlaps, rtol=1e-6, atol=1e-6)


def test_official_key_names_and_widths():
    sd = cfin.peers.build("esrt", 4).state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes["head.0.weight"] == (32, 3, 3, 3)
    assert shapes["body.0.encoder1.encoder.layer1.conv.weight"] == (16, 32, 3, 3)
    assert shapes["body.0.encoder1.encoder.layer1.relu.weight"] == (16,)
    assert shapes["body.0.encoder3.alise2.conv.weight"] == (32, 64, 1, 1)
    assert shapes["body.0.attention.atten.reduce.weight"] == (144, 288)
    assert shapes["body.0.attention.atten.qkv.weight"] == (432, 144)
    assert shapes["body.0.attention.mlp.fc1.weight"] == (72, 288)
    assert shapes["tail.0.2.weight"] == (128, 32, 3, 3) and shapes["tail.1.weight"] == (3, 32, 3, 3)
    assert shapes["up.1.conv.weight"] == (3, 32, 3, 3) and "up.1.conv.bias" not in shapes
    assert not any("bias" in k for k in shapes if ".atten.reduce." in k or ".atten.qkv." in k)
    # 751,767 registered; the 12 ARFBs' weight1 scalars are never used
    assert sum(v.numel() for v in sd.values()) == 751_767


def test_counts_on_the_meta_device_at_an_odd_size_see_the_chunked_attention():
    """17 x 23 = 391 tokens in chunks of 391 // 4 = 97 (four, then 3): the attention's two matmuls cost
    2 x heads x sum(len^2) x head width (8 heads of 18 over D/2 = 144)."""
    with torch.device("meta"):
        model = cfin.peers.build("esrt", 4)
    full = count(model, (17, 23), convention="full")
    assert full.by_operator["bmm"] == 2 * 8 * (4 * 97 ** 2 + 3 ** 2) * 18
