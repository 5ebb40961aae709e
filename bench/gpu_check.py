"""Helpers of bench/gpu_check.sh: the environment, one step's peak memory, the JSON.

Subcommands (the shell script calls them; each is usable alone):

- `stage-data SRC DEST`: copy MNIST's four .gz files from SRC/mnist to DEST/mnist.
- `env OUT.json [--peak-size N]`: torch, CUDA and GPU names, TF32 settings, the GPU's total
  memory and a measured float32 matmul rate (the peak the fractions below are taken against,
  beside the datasheet's).
- `exec PEAK.json (--landscape | SCRIPT) -- ARGS...`: run `landscape ARGS` or the Python
  script SCRIPT in this process and write its peak memory (torch's CUDA allocator, else the
  process's peak RSS), the memory budgets the toolkit chose (every call of
  `landscape.measures.runner.default_budget` and `landscape.train.trainer.train_budget`), and, for
  `landscape run`, the seconds and peak memory of each phase (train, analyze, report). The
  file is rewritten after each phase, and a SIGTERM (the step's timeout) still writes it.
- `stamp T0`: copy stdin to stdout, each line prefixed with the seconds since T0.
- `record WORK NAME RC T0 T1 LIMIT`: the step's status (ok | failed | timeout), seconds, rc.
- `assemble WORK OUT MODE`: everything into OUT/gpu_check.json (rewritten after every step,
  so a run cut short still leaves the steps done so far).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import platform
import resource
import runpy
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# Dense float32 (no tensor cores) peaks from the vendors' datasheets, FLOP/s: what a float32
# training step can reach with TF32 off (torch's default for matmuls). Matched by substring.
DATASHEET_FP32 = {"H200": 67e12, "H100 PCIe": 51e12, "H100": 67e12, "A100": 19.5e12}
PAPER_GOAL_S = 300.0  # `landscape run merkulov-mnist-mlp-paper` under 5 minutes
RATIO_GOAL = 20.0  # train_seeds (d) at K = 64 and surface 51 x 51: >= 20x the per-item loop


def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    tmp.replace(path)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# --- stage-data, env, stamp, record ------------------------------------------------------------


def stage_data(src: Path, dest: Path) -> int:
    missing = [f for f in MNIST_FILES if not (src / "mnist" / f).is_file()]
    if missing:
        print(f"stage-data: {src / 'mnist'} lacks {', '.join(missing)}; pass the shared data")
        return 1
    (dest / "mnist").mkdir(parents=True, exist_ok=True)
    for f in MNIST_FILES:
        shutil.copyfile(src / "mnist" / f, dest / "mnist" / f)
    size = sum((dest / "mnist" / f).stat().st_size for f in MNIST_FILES)
    print(f"stage-data: copied MNIST ({size / 2**20:.1f} MiB) to {dest / 'mnist'}")
    return 0


def environment(out: Path, peak_size: int) -> int:
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cpus": os.cpu_count(),
        "matmul_precision": torch.get_float32_matmul_precision(),
    }
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env |= {
            "gpu": props.name,
            "capability": f"{props.major}.{props.minor}",
            "gpu_memory_bytes": props.total_memory,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "datasheet_fp32_flops": next(
                (v for k, v in DATASHEET_FP32.items() if k in props.name), None
            ),
        }
    env["measured_fp32_matmul_flops"] = _matmul_rate(torch, device, peak_size)
    env["matmul_size"] = peak_size
    for key, value in env.items():
        print(f"{key}: {value}")
    _write(out, env)
    return 0


def _matmul_rate(torch: Any, device: Any, size: int, tries: int = 5) -> float:
    """FLOP/s of a float32 (size x size) @ (size x size), median of `tries` after a warm-up."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device)
    b = torch.randn(size, size, generator=gen).to(device)
    times = []
    for i in range(tries + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        (a @ b).sum().item()
        if i:  # the first product pays for cuBLAS's start-up
            times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times)


def stamp(t0: float) -> int:
    for line in sys.stdin:
        sys.stdout.write(f"[{time.time() - t0:7.1f}s] {line}")
        sys.stdout.flush()
    return 0


def record(work: Path, name: str, rc: int, t0: float, t1: float, limit: float) -> int:
    # timeout(1) exits 124 after its TERM and 137 after the KILL that follows it
    status = "ok" if rc == 0 else ("timeout" if rc in (124, 137) else "failed")
    doc = {"status": status, "rc": rc, "seconds": round(t1 - t0, 2), "timeout_s": limit}
    _write(work / "steps" / f"{name}.json", doc)
    print(f"== {name}: {status} (rc {rc}) in {t1 - t0:.1f} s of {limit:g} s")
    return 0


# --- exec: one step in this process, with its peak memory -----------------------------------


class _Meter:
    """Peak memory, budgets and phases of the program run by `exec`, written to `path`."""

    def __init__(self, path: Path):
        import torch

        self.torch, self.path = torch, path
        self.cuda = torch.cuda.is_available()
        self.doc: dict[str, Any] = {"device": "cuda" if self.cuda else "cpu", "budgets": []}
        self.doc["phases"] = {}
        if self.cuda:
            self.doc["gpu_memory_bytes"] = torch.cuda.get_device_properties(0).total_memory

    def peak(self) -> dict[str, int]:
        if self.cuda:
            return {
                "peak_allocated_bytes": self.torch.cuda.max_memory_allocated(),
                "peak_reserved_bytes": self.torch.cuda.max_memory_reserved(),
            }
        return {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}

    def flush(self, **extra: Any) -> None:
        self.doc |= self.peak() | extra
        _write(self.path, self.doc)

    def spy_budget(self, module: Any, name: str) -> None:
        """Record every value `module.name` (a budget function) returns."""
        real = getattr(module, name, None)
        if real is None:
            return

        def spy(*args: Any, **kwargs: Any) -> int:
            value = real(*args, **kwargs)
            self.doc["budgets"].append({"function": name, "bytes": int(value)})
            return value

        setattr(module, name, spy)

    def spy_phase(self, module: Any, name: str, phase: str) -> None:
        """Time `module.name` and its peak memory, as phase `phase`."""
        real: Callable | None = getattr(module, name, None)
        if real is None:
            return

        def spy(*args: Any, **kwargs: Any) -> Any:
            if self.cuda:
                self.torch.cuda.synchronize()
                self.torch.cuda.reset_peak_memory_stats()
            t0, status = time.perf_counter(), "interrupted"
            try:
                out = real(*args, **kwargs)
                status = "ok"
                return out
            finally:
                if self.cuda:
                    with contextlib.suppress(RuntimeError):
                        self.torch.cuda.synchronize()
                seconds = round(time.perf_counter() - t0, 2)
                self.doc["phases"][phase] = {"status": status, "seconds": seconds} | self.peak()
                self.flush()

        setattr(module, name, spy)


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the phase spies, which record themselves


def exec_step(peak: Path, target: str, args: list[str]) -> int:
    names = ("measures.runner", "train.experiment", "report", "train.trainer")
    analyze, experiment, report, train = (importlib.import_module(f"landscape.{m}") for m in names)
    meter = _Meter(peak)
    meter.spy_budget(analyze, "default_budget")
    meter.spy_budget(train, "train_budget")
    meter.spy_phase(experiment, "train_experiment", "train")
    meter.spy_phase(analyze, "analyze", "analyze")
    meter.spy_phase(report, "build_report", "report")
    signal.signal(signal.SIGTERM, _terminate)
    code: Any = 0
    try:
        if target == "landscape":
            from cli.main import main

            main(args=args, prog_name="landscape")
        else:
            sys.argv = [target, *args]
            sys.path.insert(0, str(Path(target).resolve().parent))  # its sibling imports
            runpy.run_path(target, run_name="__main__")
    except SystemExit as e:
        code = e.code
    finally:
        meter.flush(exit_code=code)
    return code if isinstance(code, int) else (0 if code is None else 1)


# --- assemble: gpu_check.json -----------------------------------------------------------------


def _log_tail(work: Path, name: str, lines: int = 15) -> list[str]:
    try:
        return (work / "logs" / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _memory(work: Path, name: str) -> dict | None:
    """The step's peak memory beside the largest budget the toolkit chose in it."""
    doc = _read(work / "peak" / f"{name}.json")
    if doc is None:
        return None
    budgets = [b["bytes"] for b in doc.get("budgets", [])]
    peak = doc.get("peak_allocated_bytes", doc.get("peak_rss_bytes"))
    total = doc.get("gpu_memory_bytes")
    out = dict(doc) | {"largest_budget_bytes": max(budgets) if budgets else None}
    if peak is not None and total:
        out["peak_fraction_of_gpu"] = round(peak / total, 4)
    line = f"peak {_gib(peak)} ({doc.get('device')})"
    if budgets:
        line += f" against a budget of {_gib(max(budgets))}"
    if total:
        line += f" of {_gib(total)} on the GPU"
    out["line"] = line
    return out


def _gib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**30:.2f} GiB"


def _tests(work: Path) -> dict:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(work / "tests.xml").getroot()
    except (OSError, ET.ParseError):
        return {}
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    bad = []
    for case in suite.iter("testcase"):
        for kind in ("failure", "error"):
            el = case.find(kind)
            if el is not None:
                what = (el.get("message") or "").splitlines()[:1]
                bad.append(f"{case.get('classname')}::{case.get('name')}: {kind}: {what}")
    return counts | {"not_passed": bad[:30]}


def _train_seeds(work: Path) -> dict:
    doc = _read(work / "train_seeds.json")
    if doc is None:
        return {}
    rows = doc.get("cases", {}).get("d", {}).get("rows", [])
    table = [
        {
            "k": r["k"],
            "batched_per_s": round(r["batched"], 1),
            "naive_per_s": round(r["naive_loop"], 1),
            "x_naive": round(r["vs_naive"], 3),
            "x_library_loop": round(r["vs_library"], 3),
        }
        for r in rows
    ]
    biggest = max(rows, key=lambda r: r["k"], default=None)
    out: dict[str, Any] = {"case_d": table, "goals": doc.get("goals", [])}
    if biggest is not None:
        out["headline"] = f"(d) K={biggest['k']}: {biggest['vs_naive']:.2f}x the naive loop"
        out["x_naive_at_largest_k"] = biggest["vs_naive"]
        out["largest_k"] = biggest["k"]
    return out


def _surface(work: Path) -> dict:
    doc = _read(work / "surface.json")
    if doc is None:
        return {}
    rows = [
        {k: r[k] for k in ("n", "method", "median_s", "points_per_s", "frac_peak", "x_loop")}
        for r in doc.get("rows", [])
    ]
    out: dict[str, Any] = {"rows": rows, "goals": doc.get("goals", []), "checks": doc.get("checks")}
    out["budget_bytes"] = doc.get("environment", {}).get("budget_bytes")
    judged = [r for r in rows if r["method"] == "batched"]
    if judged:
        big = max(judged, key=lambda r: r["n"])
        out["headline"] = f"batched {big['n']}x{big['n']}: {big['x_loop']:.2f}x the per-point loop"
        out["x_loop_at_largest_grid"], out["largest_grid"] = big["x_loop"], big["n"]
    return out


def training_flops(store_path: Path) -> dict:
    """FLOPs of the training phase from what the train store records, per completed run.

    steps: 6 * P * examples (forward 2 P, backward 4 P per example), examples = full epochs *
    n_train + the examples of a last partial epoch's steps. history: at each of the run's logged
    steps the trainer evaluates the clean training set with its gradient (6 P n_train_clean)
    and the test set forward only (2 P n_test). Group seconds: the sum over runs of
    `wall_time_s`, which is a group's wall time divided by its runs.
    """
    import h5py

    from landscape.store import train_store as store

    index = store.read_index(store_path)
    runs = store.completed_runs(store_path, index["planned_runs"])
    steps_flops = eval_flops = seconds = 0.0
    examples = 0
    for run_id in runs:
        with h5py.File(store.run_file(store_path, run_id), "r") as f:
            a = {k: f.attrs[k] for k in f.attrs}
            logged = f["history"]["step"].shape[0]
        keys = ("n_params", "n_train", "steps_per_epoch", "total_steps", "batch_size")
        p, n, spe, total, batch = (int(a[k]) for k in keys)
        seen = (total // spe) * n + min((total % spe) * batch, n)
        examples += seen
        steps_flops += 6.0 * p * seen
        eval_flops += logged * (6.0 * p * int(a["n_train_clean"]) + 2.0 * p * int(a["n_test"]))
        seconds += float(a["wall_time_s"])
    return {
        "completed_runs": len(runs),
        "planned_runs": len(index["planned_runs"]),
        "examples": examples,
        "step_flops": steps_flops,
        "history_flops": eval_flops,
        "train_group_seconds": round(seconds, 2),
        "formula": "6 * n_params * examples (steps) + logged_steps * (6 * n_params * "
        "n_train_clean + 2 * n_params * n_test) (histories), summed over the completed runs",
    }


def _paper(work: Path, env: dict) -> dict:
    out: dict[str, Any] = {}
    peak = _read(work / "peak" / "paper.json") or {}
    out["phases"] = peak.get("phases", {})
    store_path = work / "runs" / "paper.h5"
    if store_path.exists():
        try:
            out["flops"] = training_flops(store_path)
        except Exception as e:  # a torn store must not lose the other numbers
            out["flops_error"] = f"{type(e).__name__}: {e}"
    train = out["phases"].get("train", {})
    f = out.get("flops")
    if f and train.get("seconds"):
        total = f["step_flops"] + f["history_flops"]
        rate = total / train["seconds"]
        out["train_flops_per_s"] = rate
        for key in ("datasheet_fp32_flops", "measured_fp32_matmul_flops"):
            if env.get(key):
                out[f"fraction_of_{key.removesuffix('_flops')}"] = round(rate / env[key], 4)
        out["headline"] = (
            f"train {train['seconds']:.0f} s for {total / 1e12:.4g} TFLOP "
            f"({rate / 1e12:.3g} TFLOP/s)"
        )
    summary = _read(work / "reports" / "paper" / "summary.json")
    if summary is not None:
        out["claims"] = summary.get("claims", [])
        out["quantities"] = summary.get("quantities", {})
    return out


def _goals(steps: dict, mode: str) -> list[dict]:
    if mode != "cuda":
        return [{"goal": "GPU goals", "verdict": "n/a", "measured": "a CPU smoke run"}]
    goals = []
    ts = steps.get("train_seeds", {})
    k = ts.get("largest_k")
    value = ts.get("x_naive_at_largest_k")
    goals.append(_goal(f"train_seeds (d) >= {RATIO_GOAL:g}x naive at K=64", value, RATIO_GOAL,
                       ok=k == 64))  # fmt: skip
    sf = steps.get("surface", {})
    goals.append(_goal(f"surface batched 51x51 >= {RATIO_GOAL:g}x the loop",
                       sf.get("x_loop_at_largest_grid"), RATIO_GOAL,
                       ok=sf.get("largest_grid") == 51))  # fmt: skip
    paper = steps.get("paper", {})
    seconds = paper.get("seconds") if paper.get("status") == "ok" else None
    goals.append(
        {
            "goal": f"landscape run merkulov-mnist-mlp-paper < {PAPER_GOAL_S:g} s",
            "verdict": "n/a" if seconds is None else ("PASS" if seconds < PAPER_GOAL_S else "MISS"),
            "measured": f"{paper.get('status')} after {paper.get('seconds')} s",
        }
    )
    return goals


def _goal(text: str, value: float | None, threshold: float, ok: bool) -> dict:
    if value is None or not ok or not math.isfinite(value):
        return {"goal": text, "verdict": "n/a", "measured": value}
    return {"goal": text, "verdict": "PASS" if value >= threshold else "MISS", "measured": value}


EXTRACT: dict[str, Callable[[Path], dict]] = {
    "tests": _tests,
    "train_seeds": _train_seeds,
    "surface": _surface,
}


def assemble(work: Path, out: Path, mode: str) -> int:
    env = _read(work / "env.json") or {}
    steps: dict[str, Any] = {}
    for path in sorted((work / "steps").glob("*.json")):
        name = path.stem
        step = (_read(path) or {}) | {"log_tail": _log_tail(work, name)}
        with contextlib.suppress(Exception):  # a half-written output leaves the step's status
            step |= _paper(work, env) if name == "paper" else EXTRACT.get(name, dict)(work)
        if (memory := _memory(work, name)) is not None:
            step["memory"] = memory
        steps[name] = step
    order = json.loads((work / "order.json").read_text()) if (work / "order.json").exists() else []
    doc = {
        "mode": mode,
        "environment": env,
        "steps": {k: steps[k] for k in [*order, *sorted(set(steps) - set(order))] if k in steps},
        "goals": _goals(steps, mode),
        "not_measured": "no GPU lent yet" if mode != "cuda" else None,
    }
    _write(out / "gpu_check.json", doc)
    return 0


def summary(path: Path) -> int:
    """A few lines for the log: each step's status, seconds and headline; the goals."""
    doc = _read(path) or {}
    for name, step in doc.get("steps", {}).items():
        line = f"{name:<12} {step.get('status', '?'):<8} {step.get('seconds', '-')!s:>7} s"
        if "headline" in step:
            line += f"  {step['headline']}"
        if name == "tests" and "tests" in step:
            line += f"  {step['tests']} tests, {step['failures']} failures, {step['errors']} errors"
        print(line)
        if "memory" in step:
            print(f"{'':<12} memory: {step['memory']['line']}")
    for g in doc.get("goals", []):
        print(f"{g['verdict']:<5} {g['goal']}: {g['measured']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("stage-data")
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    p = sub.add_parser("env")
    p.add_argument("out", type=Path)
    p.add_argument("--peak-size", type=int, default=8192)
    p = sub.add_parser("exec")
    p.add_argument("peak", type=Path)
    p.add_argument("target", help="'landscape' or a Python script")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = sub.add_parser("stamp")
    p.add_argument("t0", type=float)
    p = sub.add_parser("record")
    p.add_argument("work", type=Path)
    p.add_argument("name")
    p.add_argument("rc", type=int)
    p.add_argument("t0", type=float)
    p.add_argument("t1", type=float)
    p.add_argument("limit", type=float)
    p = sub.add_parser("assemble")
    p.add_argument("work", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("mode", choices=("cuda", "cpu-smoke"))
    p = sub.add_parser("summary")
    p.add_argument("json", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "stage-data":
        return stage_data(a.src, a.dest)
    if a.cmd == "env":
        return environment(a.out, a.peak_size)
    if a.cmd == "exec":
        args = a.args[1:] if a.args[:1] == ["--"] else a.args
        return exec_step(a.peak, a.target, args)
    if a.cmd == "stamp":
        return stamp(a.t0)
    if a.cmd == "record":
        return record(a.work, a.name, a.rc, a.t0, a.t1, a.limit)
    if a.cmd == "summary":
        return summary(a.json)
    return assemble(a.work, a.out, a.mode)


if __name__ == "__main__":
    sys.exit(main())
