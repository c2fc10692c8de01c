import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """LSTM backward with two intra-op threads is many times slower on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
