"""What a training group will hold in memory, estimated before anything is allocated.

Widths large enough to exhaust memory pass every per-key check (a width of 10^6 is fine on its
own); what matters is parameters x runs trained together x copies held per parameter. The
count comes from the model built on torch's `meta` device, which allocates nothing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch

from landscape.core.devices import cuda_free_bytes
from landscape.errors import ConfigError
from landscape.models import build_model

if TYPE_CHECKING:
    from landscape.config import ExperimentConfig
    from landscape.data import Dataset

# Per parameter and run: the parameters, their gradient, two Adam moments, the initial point
# and the checkpoint being written, in float32.
COPIES_PER_PARAMETER = 6
BYTES_PER_VALUE = 4


def parameter_count(cfg: ExperimentConfig, ds: Dataset) -> int:
    """Parameters of one run's network, counted without allocating them."""
    with torch.device("meta"):
        model = build_model(cfg.model, input_shape=ds.input_shape, n_outputs=ds.n_outputs)
    return sum(p.numel() for p in model.parameters())


def available_bytes(device: torch.device) -> int:
    """Free memory on `device`: CUDA's free bytes, or the host's MemAvailable."""
    if device.type == "cuda":
        return cuda_free_bytes(device)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_training_memory(
    cfg: ExperimentConfig, ds: Dataset, runs_together: int, device: torch.device
) -> None:
    """Raise ConfigError when `runs_together` runs of `cfg` cannot fit in `device`'s memory."""
    n = parameter_count(cfg, ds)
    need = n * runs_together * COPIES_PER_PARAMETER * BYTES_PER_VALUE
    have = available_bytes(device)
    if need <= have:
        return
    fits = have // max(1, n * COPIES_PER_PARAMETER * BYTES_PER_VALUE)
    fix = (
        f"use --group-size {fits} (runs trained together) or smaller model.widths"
        if fits >= 1
        else "use smaller model.widths (one run alone does not fit)"
    )
    raise ConfigError(
        f"config: {n:,} parameters per run x {runs_together} runs trained together need about "
        f"{_gib(need)} (parameters, gradients, optimizer state, init and checkpoint), but "
        f"{device} has {_gib(have)} free; {fix}"
    )


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n < 2**40 else f"{n / 2**40:,.1f} TiB"
