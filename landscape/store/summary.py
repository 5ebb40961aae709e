"""Per-seed numbers of an analysis store, aggregated per mode: mean, std, min, max, n.

Every number is read from a stored result array or attribute, named by a `Scalar` of the
measure's spec (recorded in the analysis store), so the report can say how sure it is and trace
it back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landscape.errors import StoreError
from landscape.store import analysis_read as aread
from landscape.store import analysis_store as astore


@dataclass(frozen=True)
class Scalar:
    """One number per result key that a measure adds to the summary, read from the result.

    The value is `array` (at its first or last entry, its whole value, or its peak over its
    last entry) or the attribute `attr`, divided by the attribute `per_attr` when given; a
    result without them is "not applicable" (None). `keys` limits it to keys with that prefix.
    `headline` puts it in the report's normal-vs-overfit table: "always", or "present" (only
    where some result has it).
    """

    quantity: str
    label: str
    units: str
    array: str = ""
    attr: str = ""
    at: str = "value"  # value | first | last | peak_over_last
    per_attr: str = ""
    keys: str = ""
    headline: str = ""  # "" | always | present
    key_name: str = "run"  # what a key is, for `where` (e.g. "recipe>.<run")

    def applies(self, key: str) -> bool:
        return key.startswith(self.keys)

    def extract(self, result: dict[str, Any]) -> float | None:
        """The scalar from a result read by `analysis_store.read_result`; None: not applicable."""
        attrs = result.get("attrs", {})
        if self.attr:
            return float(attrs[self.attr]) if self.attr in attrs else None
        if self.array not in result:
            return None
        a = np.asarray(result[self.array], dtype=np.float64)
        value = {
            "value": lambda: float(a.reshape(-1)[0]) if a.size == 1 else float("nan"),
            "first": lambda: float(a.reshape(-1)[0]),
            "last": lambda: float(a.reshape(-1)[-1]),
            "peak_over_last": lambda: float(np.max(a) / a.reshape(-1)[-1]),
        }[self.at]()
        if not self.per_attr:
            return value
        divisor = attrs.get(self.per_attr)
        return value / float(divisor) if divisor else None

    def where(self, measure: str) -> str:
        """Where the per-key number is read in the analysis store, e.g. distance/<run>/l2[-1]."""
        index = {"value": "", "first": "[0]", "last": "[-1]", "peak_over_last": " peak / last"}
        text = f"{measure}/<{self.key_name}>/" + (
            f"attrs.{self.attr}" if self.attr else f"{self.array}{index[self.at]}"
        )
        return text + (f" / {self.per_attr}" if self.per_attr else "")

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scalar:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: str(v) for k, v in d.items() if k in known})


def recorded_measures(out: Path) -> dict[str, dict[str, Any]]:
    """The measure specs an analysis store recorded (name -> `MeasureSpec.describe()`), in
    registry order; {} for a store written before they were recorded."""
    return aread.recorded_specs(out)


def scalars_of(measures: dict[str, dict[str, Any]]) -> list[tuple[str, Scalar]]:
    """(measure, scalar) for every scalar the recorded specs declare, in registry order."""
    return [
        (m, Scalar.from_json(s)) for m, spec in measures.items() for s in spec.get("scalars", [])
    ]


def describe(values: list[float]) -> dict[str, float | int | None]:
    """mean, sample standard deviation (ddof 1), min, max and n of finite values."""
    a = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if a.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {
        "mean": float(a.mean()),
        "std": std,
        "min": float(a.min()),
        "max": float(a.max()),
        "n": int(a.size),
    }


def _group(rule: str, key: str, attrs: dict) -> str:
    """The group a result's scalar belongs to, by its spec's rule (see `MeasureSpec.group`)."""
    if rule == "recipe":
        return f"overfit+{attrs['recipe']}"
    if rule == "pairs":
        return "pairs"
    if rule == "path":
        kind, _, rest = key.partition(".")
        return rest.rsplit("-", 1)[0] if kind == "init-final" else "pairs"
    return key.rsplit("-", 1)[0]


# {measure: {key: result}}: results as `analysis_read.read_result` returns them
Results = Mapping[str, Mapping[str, dict[str, Any]]]


def summarize(out: Path, *, results: Results | None = None) -> dict[str, Any]:
    """{quantity: {group: describe(...) + {"diverged": count}}} over the analysis store.

    The quantities are the scalars its recorded measure specs declare. A result that involves a
    diverged run is counted under "diverged" and left out of the statistics (its point is the
    last finite checkpoint, not a trained end point).

    `results`: the store's results already read and checked against their recorded specs (a
    damaged one absent), e.g. the report's, used instead of reading every file again; an array
    left out when reading them counts as absent.
    """
    measures = recorded_measures(out)

    def read(measure: str, key: str) -> dict[str, Any] | None:
        if results is not None:
            return results.get(measure, {}).get(key)
        return _readable(out, measures, measure, key)

    scalars = scalars_of(measures)
    values: dict[str, dict[str, list[float]]] = {}
    diverged: dict[str, dict[str, int]] = {}
    for measure, key in astore.completed(out):
        wanted = [s for m, s in scalars if m == measure and s.applies(key)]
        result = read(measure, key) if wanted else None
        if result is None:
            continue  # no scalar of it is summarized, or damaged (the report lists it)
        group = _group(measures[measure].get("group", "mode"), key, result["attrs"])
        for scalar in wanted:
            value = scalar.extract(result)
            if value is None:
                continue  # not applicable to this result (e.g. ring scores of a line)
            q = scalar.quantity
            values.setdefault(q, {}).setdefault(group, [])
            count = diverged.setdefault(q, {}).setdefault(group, 0)
            if result["attrs"].get("diverged", False):
                diverged[q][group] = count + 1
            else:
                values[q][group].append(float(value))
    summary: dict[str, Any] = {
        q: {g: describe(v) | {"diverged": diverged[q][g]} for g, v in groups.items()}
        for q, groups in values.items()
    }
    if "distance" in measures and (equal := _equal_steps(out, read)):
        summary["distance_l2_equal_steps"] = equal
    _add_ratios(summary)
    return summary


def _equal_steps(out: Path, read: Callable[[str, str], dict[str, Any] | None]) -> dict[str, Any]:
    """||theta - theta0|| of overfit run k after as many steps as normal run k took in all.

    At equal epochs an overfit run takes about twice the steps (its training set is about
    twice as large); this compares the two at equal optimizer steps instead. The overfit
    distance is interpolated linearly between its two checkpoints around that step.
    """
    done = {key for m, key in astore.completed(out) if m == "distance"}
    normal, overfit = [], []
    for key in sorted(done):
        mode, _, k = key.rpartition("-")
        if mode != "normal" or f"overfit-{k}" not in done:
            continue
        n = read("distance", key)
        o = read("distance", f"overfit-{k}")
        if n is None or o is None or n["attrs"].get("diverged") or o["attrs"].get("diverged"):
            continue
        if any(a not in r or r[a].size == 0 for r in (n, o) for a in ("l2", "step")):
            continue
        normal.append(float(n["l2"][-1]))
        overfit.append(float(np.interp(n["step"][-1], o["step"], o["l2"])))
    if not normal:
        return {}
    return {"normal": describe(normal), "overfit": describe(overfit)}


def _readable(
    out: Path, measures: dict[str, dict[str, Any]], measure: str, key: str
) -> dict[str, Any] | None:
    """A result checked against its recorded spec; None when damaged (left out)."""
    try:
        return aread.read_result(out, measure, key, spec=measures.get(measure))
    except StoreError:
        return None


def _add_ratios(summary: dict[str, Any]) -> None:
    """overfit/normal ratio of the means, where both exist."""
    for groups in summary.values():
        n, o = groups.get("normal", {}).get("mean"), groups.get("overfit", {}).get("mean")
        if n and o is not None:
            groups["ratio_overfit_over_normal"] = o / n
