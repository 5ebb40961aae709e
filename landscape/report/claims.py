"""Claims in words checked against summary.json: pass, fail, or not computed.

A claim names a number by its dotted path in summary.json and a threshold it must beat::

    {"id": "farther", "text": "overfit points lie farther from init",
     "metric": "quantities.distance_l2.ratio_overfit_over_normal", "op": ">=", "threshold": 1.0}

A claim whose number is absent, null or NaN is "not computed", never a failure: the page then
says which measure to compute.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from landscape.errors import ConfigError

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
REQUIRED = ("id", "text", "metric", "op", "threshold")
STATUSES = ("pass", "fail", "not computed")


def lookup(summary: Mapping[str, Any], metric: str) -> Any:
    """The value at a dotted path ("quantities.distance_l2.normal.mean"); None if absent.

    A part that is an integer indexes a list ("runs.0.final.test_acc").
    """
    node: Any = summary
    for part in metric.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and _index(part, len(node)) is not None:
            node = node[int(part)]
        else:
            return None
    return node


def _index(part: str, length: int) -> int | None:
    """`part` as a valid list index, or None."""
    if not part.lstrip("-").isdigit():
        return None
    i = int(part)
    return i if -length <= i < length else None


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (absent, null, NaN, a dict, a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def check_claim(claim: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the claim and what is wrong with it."""
    name = claim.get("id", "<no id>")
    missing = [k for k in REQUIRED if k not in claim]
    if missing:
        raise ConfigError(
            f"claim {name!r}: missing key(s) {missing}; a claim needs {', '.join(REQUIRED)}"
        )
    if claim["op"] not in OPS:
        raise ConfigError(
            f"claim {name!r}: op {claim['op']!r} is not allowed; allowed: {', '.join(OPS)}"
        )
    if _number(claim["threshold"]) is None:
        raise ConfigError(
            f"claim {name!r}: threshold {claim['threshold']!r} is not a finite number"
        )


def evaluate_claim(claim: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    """The claim plus `value` (float or None) and `status` ("pass", "fail", "not computed")."""
    check_claim(claim)
    value = _number(lookup(summary, str(claim["metric"])))
    if value is None:
        status = "not computed"
    else:
        status = "pass" if OPS[claim["op"]](value, float(claim["threshold"])) else "fail"
    return {**claim, "threshold": float(claim["threshold"]), "value": value, "status": status}


def evaluate_claims(
    claims: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Every claim evaluated against the summary, in the given order; ids must be unique."""
    ids = [c.get("id") for c in claims]
    duplicates = sorted({str(i) for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"claims: duplicate id(s) {duplicates}; give each claim its own id")
    return [evaluate_claim(c, summary) for c in claims]
