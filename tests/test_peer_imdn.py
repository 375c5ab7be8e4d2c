"""IMDN (cfin.peers.imdn): its counts under the torchsummaryX rule are Table I's printed Params and
Multi-Adds at the printed precision, and its contrast-aware channel attention is std + mean."""
import pytest
import torch

import cfin.peers
from ablations.table_01_sota import TABLE
from cfin.complexity import count
from printed_digits import as_printed

# IMDN's x3 Multi-Adds were counted on a 240 x 427 LR image (1280 / 3 rounded up); the suite's
# default x3 input is 240 x 426 (output 1278 x 720), where the count is 71.34G.
LR_SIZE = {2: None, 3: (240, 427), 4: None}


@pytest.mark.parametrize("scale", (2, 3, 4))
def test_paper_rule_counts_are_table_i_as_printed(scale):
    with torch.device("meta"):
        model = cfin.peers.build("imdn", scale)
    printed = TABLE.row(f"x{scale} IMDN").paper.printed
    c = count(model, lr_size=LR_SIZE[scale], convention="paper")
    assert as_printed(c.params, printed["params"]) == printed["params"]
    assert as_printed(c.multi_adds, printed["multi_adds"]) == printed["multi_adds"]


def test_cca_weights_channels_by_their_contrast(one_thread):
    """The statistic IMDN's CCA feeds its attention MLP is the contrast: std + mean per channel."""
    torch.manual_seed(0)
    cca = cfin.peers.imdn.CCALayer(32)
    x = torch.rand(2, 32, 7, 9)
    seen = {}
    cca.conv_du.register_forward_pre_hook(lambda m, args: seen.setdefault("stat", args[0]))
    out = cca(x)
    stat = x.std(dim=(2, 3), unbiased=False, keepdim=True) + x.mean(dim=(2, 3), keepdim=True)
    # float32 sums of 63 values in [0, 1]: the two ways of computing them agree to ~1e-7
    torch.testing.assert_close(seen["stat"], stat, rtol=0, atol=1e-5)
    torch.testing.assert_close(out, x * cca.conv_du(stat), rtol=0, atol=1e-5)
