"""MemNet (cfin.peers.memnet): a pre-upsampling network: with its reconstruction conv zeroed (and
the output weights summing to 1, as initialised) it returns MATLAB's bicubic upsampling of the
LR image; the recursive unit's two convs are shared by the R recursions (each with BNs of its
own), so its parameters are MemNet's 677K conv weights plus biases, BNs and the M output weights."""
import torch

import cfin.peers
from cfin.peers.luma import matlab_bicubic_upsample


def test_zero_reconstruction_gives_the_bicubic_input(one_thread):
    """float32 through YCbCr and back: within 1e-3 grey levels of MATLAB bicubic in float64
    (float32 carries ~1e-5 relative error on values up to 255, a few times over)."""
    torch.manual_seed(0)
    model = cfin.peers.build("memnet", 3).eval()
    with torch.no_grad():
        model.recon.conv.weight.zero_()
        model.recon.conv.bias.zero_()
    x = torch.rand(1, 3, 6, 7) * 255
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, 3, 18, 21)
    torch.testing.assert_close(out.double(), matlab_bicubic_upsample(x.double(), 3), atol=1e-3, rtol=0)


def test_shared_convs_and_parameter_count():
    with torch.device("meta"):
        model = cfin.peers.build("memnet", 4)
    unit = model.blocks[0].recursive
    assert len(unit.bn1) == len(unit.bn2) == 6
    assert sum(isinstance(m, torch.nn.Conv2d) for m in unit.modules()) == 2
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 6 * 3 + 1  # FENet, per block 2 shared + the gate, the shared reconstruction
    assert sum(c.weight.numel() for c in convs) == 676_992  # printed 677K
