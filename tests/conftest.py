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


# exponential_(generator seeded 1234) under the stream the golden Gumbel outputs were made with
_MT19937_EXPONENTIAL_1234 = [0.2637496590614319, 0.08202802389860153, 0.6281203031539917, 0.5350832939147949]


@pytest.fixture(scope="session")
def exponential_is_mt19937():
    """Whether this torch's CPU ``exponential_`` draws MT19937's 53-bit ``-log1p(-u)`` stream (torch
    2.13 does): the stream behind the seed-1234 golden outputs and the one ``cfin.models.rng``
    vectorises; torch 2.7 on as well. torch 2.1 to 2.6 with MKL seed an MKL stream from the generator.
    Checked on a private generator, independently of cfin."""
    g = torch.Generator().manual_seed(1234)
    return torch.empty(4).exponential_(generator=g).tolist() == _MT19937_EXPONENTIAL_1234


@pytest.fixture
def mt19937_exponential(exponential_is_mt19937):
    """Skips a test of golden Gumbel samples or of the vectorised draw where torch's ``exponential_``
    is another stream (there cfin's draws are ``exponential_`` itself, tested on every torch)."""
    if not exponential_is_mt19937:
        pytest.skip(f"torch {torch.__version__}'s CPU exponential_ is not MT19937's -log1p(-u) stream "
                    "(torch < 2.7 with MKL seeds an MKL stream from the generator): the Gumbel noise, "
                    "hence the seed-1234 golden outputs, differ, and cfin.models.rng uses exponential_")


class FakeCUDA:
    """Records what timing code asks of ``torch.cuda`` (events, streams, synchronisations), so that
    which device it times and waits for is checked on a machine without a GPU."""

    def __init__(self):
        self.recorded, self.synchronized = [], []
        fake = self

        class Event:
            def __init__(self, enable_timing=False):
                self.stream = None

            def record(self, stream=None):
                self.stream = stream
                fake.recorded.append(stream)

            def elapsed_time(self, end):
                return 2.0  # ms

        self.Event = Event

    def current_stream(self, device=None):
        return ("stream", None if device is None else torch.device(device))

    def synchronize(self, device=None):
        self.synchronized.append(None if device is None else torch.device(device))


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda's Event, current_stream and synchronize replaced by a :class:`FakeCUDA`."""
    fake = FakeCUDA()
    monkeypatch.setattr(torch.cuda, "Event", fake.Event)
    monkeypatch.setattr(torch.cuda, "current_stream", fake.current_stream)
    monkeypatch.setattr(torch.cuda, "synchronize", fake.synchronize)
    return fake
