"""A preset as a whole plan: the experiment, the analysis settings, and the claims it checks.

A preset TOML holds the experiment sections ([data], [model], [optim], [train]) plus two
optional ones read here:

    [analyze]                 # AnalysisConfig fields, e.g. grid = 21, runs = "all"
    grid = 21

    [[claims]]                # checked in the report, threshold fixed before the run
    id = "c-distance"
    text = "overfit points lie farther from init than normal ones"
    metric = "quantities.distance_l2.ratio_overfit_over_normal"   # a path into summary.json
    op = ">="
    threshold = 1.5

    [sweep]                   # optional: one variant per value and budget (pipeline.sweep)
    key = "data.ring_points"
    values = [5000, 2500]

The claims are stored in the train store's attributes before any run trains, so a report can
show that the threshold predates the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from landscape.config import (
    ExperimentConfig,
    from_dict,
    load_preset,
    load_toml,
    merge,
)
from landscape.errors import ConfigError
from landscape.pipeline.sweep import Sweep, parse_sweep

CLAIM_KEYS = ("id", "text", "metric", "op", "threshold")
CLAIM_OPS = (">=", "<=", ">", "<")


@dataclass(frozen=True)
class Plan:
    name: str  # the preset's name, or "custom"
    description: str
    experiment: ExperimentConfig
    analysis: dict[str, Any]  # AnalysisConfig fields the preset sets
    claims: tuple[dict[str, Any], ...]
    sweep: Sweep | None = None  # [sweep]: several values of one key (pipeline.sweep)

    def claims_json(self) -> str:
        return json.dumps(list(self.claims))


def check_claim(claim: Any, where: str) -> dict[str, Any]:
    """A claim table with exactly CLAIM_KEYS, a known op and a numeric threshold."""
    if not isinstance(claim, dict):
        raise ConfigError(f"{where}: a claim must be a table with keys {', '.join(CLAIM_KEYS)}")
    missing = [k for k in CLAIM_KEYS if k not in claim]
    extra = sorted(set(claim) - set(CLAIM_KEYS))
    if missing or extra:
        raise ConfigError(
            f"{where}: claim {claim.get('id', '?')!r}: expected keys {', '.join(CLAIM_KEYS)}; "
            f"missing {missing}, unknown {extra}"
        )
    if claim["op"] not in CLAIM_OPS:
        raise ConfigError(
            f"{where}: claim {claim['id']!r}: op {claim['op']!r}: allowed {', '.join(CLAIM_OPS)}"
        )
    if not isinstance(claim["threshold"], int | float) or isinstance(claim["threshold"], bool):
        raise ConfigError(
            f"{where}: claim {claim['id']!r}: threshold must be a number, "
            f"found {claim['threshold']!r}"
        )
    return {**claim, "threshold": float(claim["threshold"])}


def _analysis_section(values: Any, where: str) -> dict[str, Any]:
    """The [analyze] table, typed and checked now (before anything trains)."""
    from landscape.measures.runner import AnalysisConfig

    if not isinstance(values, dict):
        raise ConfigError(f"{where}: [analyze] must be a table, found {values!r}")
    cfg = AnalysisConfig.from_values(values, where=where)
    return {k: getattr(cfg, k) for k in values}


def resolve_plan(
    *,
    preset: str | None = "quick",
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Plan:
    """Merge preset < config file < overrides into a Plan; every part validated."""
    where = f"preset {preset!r}" if preset else f"config file {config_file}"
    layers: dict[str, Any] = load_preset(preset) if preset else {}
    if config_file is not None:
        layers = merge(layers, load_toml(config_file))
    layers = merge(layers, overrides or {})
    claims = layers.get("claims", [])
    if not isinstance(claims, list):
        raise ConfigError(f"{where}: claims must be an array of tables ([[claims]])")
    checked = tuple(check_claim(c, where) for c in claims)
    ids = [c["id"] for c in checked]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: claim ids must be unique, found {ids}")
    return Plan(
        name=preset or "custom",
        description=str(layers.get("description", "")),
        experiment=from_dict(layers),
        analysis=_analysis_section(layers.get("analyze", {}), where),
        claims=checked,
        sweep=parse_sweep(layers["sweep"], where) if "sweep" in layers else None,
    )


def stored_claims(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """The claims a train store recorded before training ([] if none)."""
    raw = attrs.get("claims")
    return json.loads(raw) if raw else []
