"""Reading an analysis store, every file through the validating reader (`h5read`).

The layout's names and paths are defined here, beside the checks (`analysis_store` writes the
layout and re-exports these). A result file is checked against what its measure recorded in
the index (the `measures` attribute: each measure's arrays with their dims, and the scalars the
summary reads): its attributes (kind, measure, key, parameters), every array declared, numeric,
within the size its file can hold, each axis as long as the array it is declared over, and the
numbers the summary reads present as numbers. A result that fails is *damaged*: `landscape
analyze` computes it afresh (saying so), `landscape info` and the report list it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landscape.errors import StoreError
from landscape.store.atomic import check_file_target
from landscape.store.h5read import H5, open_h5

KIND_ANALYSIS = "landscape.analysis"
ANALYSIS_SCHEMA = 1
KIND_RESULT = "landscape.result"


def results_dir(index_path: Path) -> Path:
    """`runs/quick.analysis.h5` -> `runs/quick.analysis.d/`."""
    return index_path.with_name(index_path.stem + ".d")


def result_file(index_path: Path, measure: str, key: str) -> Path:
    return results_dir(index_path) / measure / f"{key}.h5"


def completed(index_path: Path) -> list[tuple[str, str]]:
    """(measure, key) of every result file present."""
    root = results_dir(index_path)
    if not root.is_dir():
        return []
    return sorted(
        (p.parent.name, p.stem)
        for p in root.glob("*/*.h5")
        if not p.name.startswith(".") and p.parent.name != ".parts"
    )


def read_index(index_path: Path) -> dict[str, Any]:
    """The index's attributes, checked: kind, schema, and its JSON attributes parse."""
    path = Path(index_path)
    if not path.exists() and not path.is_symlink():
        raise StoreError(f"analysis store {path}: no such file; run `landscape analyze` first")
    with open_h5(path, what="analysis store") as r:
        kind = r.attr("landscape_kind", str, default=None)
        if kind != KIND_ANALYSIS:
            raise StoreError(
                f"{path}: expected an analysis store (landscape_kind = {KIND_ANALYSIS!r}), "
                f"found {kind!r}"
            )
        attrs = r.attrs()
        for name in ("config", "summary"):
            r.json_attr(name, dict, default={})
        r.json_attr("skipped", dict, default={})
        measures = r.json_attr("measures", dict, default={})
        r.attr("train_store", str, default="")
        r.attr("train_store_sha256", str, default="")
    for name, spec in measures.items():
        _check_spec(path, name, spec)
    attrs["schema"] = attrs.get("schema", -1)
    return attrs


def check_output(out: Path, train_path: Path) -> None:
    """`out` may be written as an analysis store: nothing there, an analysis store, or a
    damaged index of one (its .d/ folder beside it) that a new index replaces. Anything else
    (the train store itself, another file) is refused, never overwritten."""
    check_file_target(out, what="analysis store")
    if not os.path.lexists(out):
        return
    if out.resolve() == Path(train_path).resolve():
        raise StoreError(
            f"analysis store {out}: that is the train store being analyzed; choose another -o "
            "path (default: TRAIN_STORE with .analysis.h5)"
        )
    try:
        with open_h5(out, what="analysis store") as r:
            kind = r.attr("landscape_kind", str, default="")
    except StoreError as e:
        if results_dir(out).is_dir():
            return  # the index of these results, damaged: a new one replaces it
        raise StoreError(
            f"analysis store {out}: expected an analysis store or nothing there, found a file "
            f"that is not one ({e}); choose another -o path"
        ) from None
    if kind != KIND_ANALYSIS:
        raise StoreError(
            f"analysis store {out}: expected an analysis store or nothing there, found "
            f"{'a ' + kind + ' store' if kind else 'another HDF5 file'}; choose another -o path"
        )


# what a recorded summary scalar (`summary.Scalar.to_json`) must hold for the summary to use it
SCALAR_NEEDS = ("quantity", "label", "units")
SCALAR_AT = ("value", "first", "last", "peak_over_last")


def _scalar_spec(s: Any) -> bool:
    return (
        isinstance(s, dict)
        and all(isinstance(s.get(k), str) and s[k] for k in SCALAR_NEEDS)
        and all(isinstance(v, str) for v in s.values())
        and s.get("at", "value") in SCALAR_AT
        and bool(s.get("array") or s.get("attr"))
    )


def _check_spec(path: Path, name: str, spec: Any) -> None:
    """A recorded measure spec has the fields the summary and the report read."""
    ok = (
        isinstance(spec, dict)
        and isinstance(spec.get("scalars", []), list)
        and all(_scalar_spec(s) for s in spec.get("scalars", []))
        and isinstance(spec.get("arrays", {}), dict)
        and all(
            isinstance(v, list) and len(v) == 3 and isinstance(v[2], list)
            for v in spec.get("arrays", {}).values()
        )
        and isinstance(spec.get("group", "mode"), str)
        and isinstance(spec.get("figures", []), list)
    )
    if not ok:
        raise StoreError(
            f"analysis store {path}, attribute 'measures', entry {name!r}: expected a measure "
            f"spec (scalars, arrays, group, figures), found {str(spec)[:80]!r}"
        )


def recorded_specs(index_path: Path) -> dict[str, dict[str, Any]]:
    """{measure: recorded spec} from the index ({} for a store that recorded none)."""
    raw = read_index(index_path).get("measures")
    return json.loads(raw) if raw else {}


def read_result(
    index_path: Path,
    measure: str,
    key: str,
    *,
    spec: dict[str, Any] | None = None,
    skip: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """A result's arrays (those not in `skip`) and attributes ("attrs"), checked against
    `spec` (the measure's recorded spec, when known)."""
    return _read(index_path, measure, key, spec, skip, data=True)[0]


def result_attrs(
    index_path: Path, measure: str, key: str, *, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A result's attributes, the whole file checked against `spec` without reading arrays."""
    return _read(index_path, measure, key, spec, frozenset(), data=False)[0]["attrs"]


def _read(
    index_path: Path,
    measure: str,
    key: str,
    spec: dict[str, Any] | None,
    skip: frozenset[str],
    *,
    data: bool,
) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """(attributes and arrays, {name: shape}); `data=False` checks without reading arrays."""
    path = result_file(index_path, measure, key)
    with open_h5(path, what="result file", inside=Path(index_path).parent) as r:
        attrs = _result_attrs(r, measure, key)
        shapes = _check_arrays(r, spec)
        out: dict[str, Any] = {"attrs": attrs}
        for name, shape in shapes.items():
            if data and name not in skip:
                out[name] = r.array(name, "fiub", shape)
        _check_scalars(r, attrs, shapes, spec, key)
    return out, shapes


def _result_attrs(r: H5, measure: str, key: str) -> dict[str, Any]:
    r.attr("landscape_kind", str, choices=(KIND_RESULT,))
    r.attr("measure", str, choices=(measure,))
    r.attr("key", str, choices=(key,))
    r.json_attr("parameters", dict)
    return r.attrs()


def _check_arrays(r: H5, spec: dict[str, Any] | None) -> dict[str, tuple[int, ...]]:
    """{name: shape} of every array, checked against the spec's declared arrays and dims."""
    names = r.keys("/")
    declared = spec.get("arrays", {}) if spec else None
    shapes = {}
    for name in names:
        if declared is not None and name not in declared:
            wanted = f"only the arrays the measure declares ({', '.join(declared)})"
            raise r.error(f"/{name}", wanted, "another")
        shapes[name] = r.shape(name, "fiub")
    for name, shape in shapes.items():
        dims = declared[name][2] if declared is not None else []
        # dims name the leading axes (a (step, k) table declares its step axis only)
        if len(dims) > len(shape):
            wanted = f"at least {len(dims)} axes ({', '.join(dims)})"
            raise r.error(f"/{name}", wanted, f"shape {shape}")
        for axis, dim in enumerate(dims):
            scale = shapes.get(dim)
            if dim != name and (scale is None or len(scale) != 1 or scale[0] != shape[axis]):
                raise r.error(
                    f"/{name}",
                    f"axis {axis} as long as the 1-d array {dim!r}",
                    f"shape {shape}, {dim!r} {'absent' if scale is None else f'shape {scale}'}",
                )
    return shapes


def _check_scalars(
    r: H5, attrs: dict[str, Any], shapes: dict[str, tuple[int, ...]], spec: Any, key: str
) -> None:
    """The attributes and arrays the summary reads are numbers and non-empty arrays."""
    if not spec:
        return
    for s in spec.get("scalars", []):
        if not key.startswith(str(s.get("keys", ""))):
            continue
        for name in (s.get("attr"), s.get("per_attr")):
            if name and name in attrs and not _number(attrs[name]):
                raise r.error(f"attribute {name!r}", "a number", repr(attrs[name])[:60])
        array = s.get("array")
        if array and array in shapes and int(np.prod(shapes[array])) == 0:
            raise r.error(f"/{array}", "at least one value", "an empty array")
    if spec.get("group") == "recipe" and not isinstance(attrs.get("recipe"), str):
        raise r.error("attribute 'recipe'", "the recipe's name", repr(attrs.get("recipe")))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, str)


@dataclass(frozen=True)
class ResultCheck:
    measure: str
    key: str
    problem: str | None  # None: readable


def check_results(index_path: Path) -> list[ResultCheck]:
    """Every result file present, checked against its measure's recorded spec."""
    specs = recorded_specs(index_path)
    out = []
    for measure, key in completed(index_path):
        try:
            _read(index_path, measure, key, specs.get(measure), frozenset(), data=False)
            out.append(ResultCheck(measure, key, None))
        except StoreError as e:
            out.append(ResultCheck(measure, key, str(e)))
    return out


def analysis_info(index_path: Path) -> dict[str, Any]:
    """`landscape info --json` for an analysis store: the results it holds, damaged ones with
    their problem."""
    attrs = read_index(index_path)
    specs = json.loads(attrs.get("measures") or "{}")
    results = []
    for measure, key in completed(index_path):
        try:
            r, shapes = _read(index_path, measure, key, specs.get(measure), frozenset(), data=False)
            seconds = r["attrs"].get("seconds")
            row = {
                "status": "complete",
                "problem": None,
                "arrays": {n: list(s) for n, s in shapes.items()},
                "seconds": float(seconds) if isinstance(seconds, int | float) else None,
            }
        except StoreError as e:
            row = {"status": "damaged", "problem": str(e), "arrays": {}, "seconds": None}
        results.append({"measure": measure, "key": key, **row})
    for name, spec in specs.items():
        spec["results"] = sum(r["measure"] == name and r["status"] == "complete" for r in results)
    return {
        "train_store": attrs.get("train_store"),
        "config": json.loads(attrs.get("config", "{}")),
        "summary": json.loads(attrs.get("summary", "{}")),
        "measures": specs,
        "results": results,
    }


__all__ = [
    "ANALYSIS_SCHEMA",
    "ResultCheck",
    "analysis_info",
    "check_output",
    "check_results",
    "read_index",
    "read_result",
    "recorded_specs",
    "result_attrs",
]
