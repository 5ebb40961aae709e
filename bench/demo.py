"""Where the time of `landscape run quick` goes: train, each measure, the report, timed apart.

The same three library calls `landscape run` makes (`landscape.pipeline.run`), in this process:
`train_experiment` of the preset's experiment, then `analyze` once per measure of the preset's
[analyze] list, in its order (`AnalysisConfig(measures=(name,))`, each into the same analysis
store, so every measure's seconds are its own), then `build_report`. A last `analyze` of all the
measures finds everything up to date: its seconds are the per-call cost (loading the store and
the data, planning) that each measure's row also pays once. Outputs go to a temporary folder
(`--keep DIR` to keep them). Nothing is timed twice: one run, one table.

    python bench/demo.py                       # the quick preset on the CPU: ~2-5 min on 2 cores
    python bench/demo.py --preset line         # any preset without a sweep
    python bench/demo.py --set train.epochs=20 --json /tmp/demo.json   # a shorter look

Printed: the environment (torch, threads, CPUs, load average before and after), one row per
stage with its seconds and share of the total, and the total. The load average is part of the
result: on a machine shared with other jobs, small operations wait for cores and every stage
slows down, the small-step ones (training, restarts) most.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from landscape.measures.runner import AnalysisConfig, AnalyzeOptions, analyze
from landscape.pipeline.plan import resolve_plan
from landscape.pipeline.run import analysis_path, plan_attrs
from landscape.report import build_report
from landscape.train.experiment import train_experiment
from landscape.train.trainer import RuntimeOptions


@dataclass
class Stage:
    name: str  # "train", "analyze <measure>", "analyze (per call, all up to date)", "report"
    seconds: float
    detail: str = ""  # e.g. how many results a measure computed


def timed(name: str, fn: Any) -> tuple[Stage, Any]:
    t0 = time.perf_counter()
    out = fn()
    return Stage(name, time.perf_counter() - t0), out


def run_stages(preset: str, overrides: dict[str, Any], folder: Path, device: str) -> list[Stage]:
    """Train, analyze measure by measure, and report `preset` into `folder`; every stage timed."""
    plan = resolve_plan(preset=preset, overrides=overrides)
    if plan.sweep is not None:
        raise SystemExit(f"preset {preset!r} has a [sweep]: time one variant with --set instead")
    store, out = folder / f"{plan.name}.h5", folder / "report"
    analysis = analysis_path(store)
    options = RuntimeOptions(device=device)
    stages = []
    stage, trained = timed(
        "train",
        lambda: train_experiment(
            plan.experiment, store, options=options, extra_attrs=plan_attrs(plan)
        ),
    )
    stage.detail = f"{len(trained.trained)} runs"
    stages.append(stage)
    measures = plan.analysis.get("measures") or AnalysisConfig().measures
    a_options = AnalyzeOptions(device=device)
    for name in measures:
        cfg = AnalysisConfig(**(plan.analysis | {"measures": (name,)}))
        stage, done = timed(
            f"analyze {name}", lambda cfg=cfg: analyze(store, analysis, cfg, options=a_options)
        )
        stage.detail = f"{len(done.computed)} results"
        stages.append(stage)
        print(f"  {stage.name}: {stage.seconds:.1f} s", flush=True)
    cfg = AnalysisConfig(**plan.analysis)
    stage, done = timed(
        "analyze (per call, all up to date)",
        lambda: analyze(store, analysis, cfg, options=a_options),
    )
    stage.detail = f"{len(done.computed)} computed, {len(done.skipped)} up to date"
    stages.append(stage)
    stage, summary = timed("report", lambda: build_report(analysis, out, claims=plan.claims))
    claims = summary.get("claims", [])
    passed = sum(c.get("status") == "pass" for c in claims)
    stage.detail = f"{len(summary.get('figures', []))} figures, claims {passed}/{len(claims)} pass"
    stages.append(stage)
    return stages


def print_table(stages: list[Stage]) -> None:
    total = sum(s.seconds for s in stages)
    width = max(len(s.name) for s in stages)
    print(f"\n  {'stage':<{width}} {'seconds':>8} {'% total':>8}  detail")
    for s in stages:
        print(f"  {s.name:<{width}} {s.seconds:>8.1f} {100 * s.seconds / total:>7.1f}%  {s.detail}")
    analysis = sum(s.seconds for s in stages if s.name.startswith("analyze"))
    print(f"  {'(all analysis)':<{width}} {analysis:>8.1f} {100 * analysis / total:>7.1f}%")
    print(f"  {'total':<{width}} {total:>8.1f} {100.0:>7.1f}%")


def parse_set(assignments: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs (values as TOML/JSON literals when they parse, else strings), nested."""
    out: dict[str, Any] = {}
    for a in assignments:
        key, _, raw = a.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--preset", default="quick", help="a preset without a [sweep]")
    ap.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset key, e.g. train.epochs=20 (repeatable)")  # fmt: skip
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    ap.add_argument("--keep", type=Path, help="write the stores and report here, and keep them")
    ap.add_argument("--json", type=Path, help="also write the stages and environment here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": args.device,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_avg_1min_before": round(os.getloadavg()[0], 2),
    }
    print("demo: " + ", ".join(f"{k} {v}" for k, v in env.items()), flush=True)
    overrides = parse_set(args.assignments)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        stages = run_stages(args.preset, overrides, args.keep, args.device)
    else:
        with tempfile.TemporaryDirectory(prefix="landscape-demo-") as tmp:
            stages = run_stages(args.preset, overrides, Path(tmp), args.device)
    env["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    before, after = env["load_avg_1min_before"], env["load_avg_1min_after"]
    print(f"\n{args.preset} preset, {args.device}, {env['threads']} threads; "
          f"load average {before} before, {after} after")  # fmt: skip
    print_table(stages)
    if args.json:
        rows = [vars(s) for s in stages]
        args.json.write_text(
            json.dumps({"environment": env, "preset": args.preset, "stages": rows}, indent=1)
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
