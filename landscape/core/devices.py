"""Which device work runs on, and how much memory a CUDA device has left for it."""

from __future__ import annotations

import torch

from landscape.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when available, else CPU; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r}: unknown device; allowed: auto, cpu, cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available here; use --device auto or cpu")
    return device


def cuda_free_bytes(device: torch.device) -> int:
    """Bytes torch can still allocate on a CUDA device: what the driver reports free plus
    what torch's caching allocator holds unused (the driver counts those as taken, so after
    a training phase in the same process `mem_get_info` alone would understate it)."""
    free = torch.cuda.mem_get_info(device)[0]
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
