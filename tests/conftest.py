"""Shared pytest setup: one torch thread, and the same torch RNG state for every test."""

from __future__ import annotations

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    """One intra-op thread: the tests use tiny tensors, where a thread pool only adds
    synchronisation (on a loaded 2-core machine torch 2.13's ``log_softmax`` of an [8, 3]
    tensor took ~10 ms with 2 threads, ~2 µs with 1)."""
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Deterministic tests: reseed torch's global generator before each test."""
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _sigint_handler_restored():
    """A test that leaves its own SIGINT handler behind breaks the Ctrl-C tests that run
    after it in the same worker: name it."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    assert after is before, f"SIGINT handler left as {after!r} (was {before!r})"
