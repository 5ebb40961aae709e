"""Shared fixtures. Tests run on the CPU with a fixed thread count, warnings as errors.

Tests that take the `device` fixture run on `$LANDSCAPE_TEST_DEVICE` (default `cpu`; `cuda`
on a GPU machine, as bench/gpu_check.sh does) and are marked `device`, so
`pytest -m device` selects them. On the CPU they run exactly as they would without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DEVICE = os.environ.get("LANDSCAPE_TEST_DEVICE", "cpu")

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "device: takes the `device` fixture (LANDSCAPE_TEST_DEVICE, default cpu)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "device" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.device)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`, or skip: a user's machine does not have it."""
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (only CI and developers have it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def device() -> Iterator[torch.device]:
    """The device under test: `$LANDSCAPE_TEST_DEVICE` (default cpu).

    Session-scoped, so module fixtures can build their data on it. On CUDA, TF32 is switched
    off for matmuls and cuDNN convolutions from the first such test to the session's end, so
    a float32 result differs from the CPU's only by the order of summation and the tests keep
    their CPU tolerances (rtol 1e-3 to 1e-5 after training). TF32 rounds each product's inputs
    to 10 mantissa bits (relative error ~5e-4 per matmul), which would fail equality tests
    of batched vs per-seed training after a few hundred steps: loosening every tolerance to
    that level would stop them from catching real mix-ups. (The toolkit itself leaves torch's
    defaults alone: TF32 off for matmuls, on for cuDNN convolutions.)
    """
    dev = torch.device(TEST_DEVICE)
    if dev.type == "cpu":
        yield dev
        return
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.fail(f"LANDSCAPE_TEST_DEVICE={TEST_DEVICE}, but this torch sees no CUDA device")
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield dev
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
