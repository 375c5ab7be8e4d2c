import pytest
import torch

from cfin.paths import shared_dir

SHARED = shared_dir()


@pytest.fixture(scope="session")
def shared():
    """The read-only ground truth folder; tests needing it skip when it is absent."""
    if SHARED is None:
        pytest.skip("../shared (REFERENCE.md, reference/ fixtures, Set5) not found beside the repository; "
                    "set CFIN_SHARED to its path to run this test")
    return SHARED


@pytest.fixture
def one_thread():
    """One torch thread for the test: tiny tensors run faster so, and immune to OpenMP stalls
    when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
