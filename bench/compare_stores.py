"""Do two stores hold the same numbers? Every array and numeric attribute, side by side.

Issue 12 asks that the quick preset's stored numbers stay equal (to 1e-6) through the engine
changes. This walks two stores written by `landscape run` (the train index `X.h5`, its run
files `X.runs/`, the analysis index `X.analysis.h5` and its result files `X.analysis.d/`),
pairs every HDF5 file, dataset and numeric attribute by path, and prints per measure (or run
mode) the largest difference relative to the array's scale, max |a - b| / max |a|, so a
loss of 1e-9 next to losses of 2 does not read as a large relative error.

    python bench/compare_stores.py runs/quick.h5 /tmp/base/quick.h5
    python bench/compare_stores.py A.h5 B.h5 --tol 1e-6 --skip restart --show 5

Exit status 1 when anything outside `--skip` differs by more than `--tol`, or is missing on
one side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

# written by the machine, not computed: they differ between any two runs
VOLATILE = ("wall_time_s", "created", "time", "host", "version", "inputs", "seconds", "git")


def store_files(index: Path) -> dict[str, Path]:
    """Every HDF5 file of the store whose train index is `index`, by a name shared by both."""
    stem = index.with_suffix("")
    files = {"index": index}
    for name, folder in (("runs", Path(f"{stem}.runs")), ("analysis", Path(f"{stem}.analysis.d"))):
        for f in sorted(folder.rglob("*.h5")) if folder.is_dir() else []:
            files[f"{name}/{f.relative_to(folder)}"] = f
    analysis = Path(f"{stem}.analysis.h5")
    if analysis.exists():
        files["analysis-index"] = analysis
    return files


def numbers(path: Path) -> dict[str, np.ndarray]:
    """{dataset path or path@attribute: float64 array} of every numeric thing in one file."""
    out: dict[str, np.ndarray] = {}

    def take(key: str, value: object) -> None:
        a = np.asarray(value)
        if a.dtype.kind in "biuf" and not any(v in key for v in VOLATILE):
            out[key] = a.astype(np.float64)

    def visit(name: str, obj: h5py.HLObject) -> None:
        if isinstance(obj, h5py.Dataset):
            take(name, obj[()])
        for attr, value in obj.attrs.items():
            take(f"{name}@{attr}", value)

    with h5py.File(path, "r") as f:
        for attr, value in f.attrs.items():
            take(f"@{attr}", value)
        f.visititems(visit)
    return out


def scaled_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |a| over finite entries; inf for a shape or NaN-pattern mismatch."""
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    ok = np.isfinite(a) & np.isfinite(b)
    if not np.array_equal(a[~ok], b[~ok], equal_nan=True):
        return float("inf")
    if not ok.any():
        return 0.0
    diff = np.abs(a[ok] - b[ok]).max()
    scale = np.abs(a[ok]).max()
    return float(diff / scale) if scale > 0 else float(diff)


def group_of(file_key: str) -> str:
    """A measure's name for a result file (analysis/<measure>/...), a run's mode for a run."""
    parts = file_key.split("/")
    if parts[0] == "analysis" and len(parts) > 1:
        return parts[1]
    if parts[0] == "runs":
        return "train:" + parts[-1].split("-")[0]
    return parts[0]


def compare(a_index: Path, b_index: Path) -> tuple[dict[str, tuple[float, str]], list[str]]:
    """Per group, the largest scaled difference and where; and what exists on one side only."""
    fa, fb = store_files(a_index), store_files(b_index)
    worst: dict[str, tuple[float, str]] = {}
    missing = [f"file {k}" for k in sorted(set(fa) ^ set(fb))]
    for key in sorted(set(fa) & set(fb)):
        na, nb = numbers(fa[key]), numbers(fb[key])
        missing += [f"{key}:{k}" for k in sorted(set(na) ^ set(nb))]
        for name in sorted(set(na) & set(nb)):
            d = scaled_diff(na[name], nb[name])
            group = group_of(key)
            if d >= worst.get(group, (-1.0, ""))[0]:
                worst[group] = (d, f"{key}:{name}")
    return worst, missing


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("a", type=Path, help="train index of the first store (X.h5)")
    p.add_argument("b", type=Path, help="train index of the second store")
    p.add_argument("--tol", type=float, default=1e-6, help="largest scaled difference allowed")
    p.add_argument("--skip", default="", help="comma-separated groups not held to --tol")
    p.add_argument("--show", type=int, default=10, help="one-side-only paths to print")
    args = p.parse_args()
    worst, missing = compare(args.a, args.b)
    skip = {s for s in args.skip.split(",") if s}
    print(f"{'group':28} {'max |a-b|/max|a|':>18}  where")
    bad = False
    for group, (d, where) in sorted(worst.items()):
        flag = "" if d <= args.tol else ("  (skipped)" if group in skip else "  > tol")
        bad |= d > args.tol and group not in skip
        print(f"{group:28} {d:18.3g}  {where}{flag}")
    if missing:
        print(f"{len(missing)} paths on one side only, e.g.:")
        for m in missing[: args.show]:
            print(f"  {m}")
    return 1 if bad or missing else 0


if __name__ == "__main__":
    sys.exit(main())
