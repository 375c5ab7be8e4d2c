"""PAN (cfin.peers.pan): its counts under the torchsummaryX rule are Table IX's printed Params and
Multi-Adds at the printed precision; the reconstruction follows the public code per scale."""
import torch

import cfin.peers
from ablations.table_09_onlyt import TABLE
from cfin.complexity import count
from printed_digits import as_printed


def test_paper_rule_counts_are_table_ix_as_printed():
    with torch.device("meta"):
        model = cfin.peers.build("pan", 4)
    printed = TABLE.row("PAN").paper.printed
    c = count(model, convention="paper")
    assert as_printed(c.params, printed["params"]) == printed["params"]
    assert as_printed(c.multi_adds, printed["multi_adds"]) == printed["multi_adds"]


def test_one_upa_stage_below_x4_two_at_x4():
    """x2 and x3 upsample once by the scale, x4 twice by 2: the x4 network has one more U-PA stage
    (upconv2, att2, HRconv2: 2 x 24 x 24 x 9 + 24 x 24 + 3 x 24 = 11,016 parameters)."""
    with torch.device("meta"):
        n = {s: sum(p.numel() for p in cfin.peers.build("pan", s).parameters()) for s in (2, 3, 4)}
    assert n[2] == n[3] and n[4] - n[2] == 2 * 24 * 24 * 9 + 24 * 24 + 3 * 24


def test_pixel_attention_is_x_times_sigmoid_of_a_1x1_conv(one_thread):
    torch.manual_seed(0)
    pa = cfin.peers.pan.PA(8)
    x = torch.randn(2, 8, 5, 6)
    expected = x * torch.sigmoid(torch.nn.functional.conv2d(x, pa.conv.weight, pa.conv.bias))
    # the same float32 ops in the same order: bit-identical on any CPU
    assert torch.equal(pa(x), expected)
