"""`landscape report` and `landscape run`: figures and the HTML page, and all three steps in one."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.main import (
    EXIT_FAILURE,
    ExecutorChoice,
    _overrides,
    _Progress,
    _report,
    data_options,
    executor_options,
    handle_errors,
    main,
    plan_attrs,
)

if TYPE_CHECKING:
    from landscape.config import ExperimentConfig
    from landscape.core.executor import Executor
    from landscape.pipeline.plan import Plan


def _claims_of(path: Path) -> list[dict[str, Any]]:
    """The claims recorded in the train store behind `path` (an analysis or a train store)."""
    from landscape.store import analysis_store
    from landscape.store import train_store as store
    from landscape.pipeline.plan import stored_claims

    train = path
    if store.store_kind(path) != store.KIND_TRAIN:
        train = Path(analysis_store.read_index(path)["train_store"])
    if not train.exists():
        return []  # the report says the train store is missing; claims cannot be read
    return stored_claims(store.read_index(train))


def _echo_claims(summary: dict[str, Any]) -> None:
    for c in summary.get("claims", []):
        value = "-" if c.get("value") is None else f"{c['value']:.4g}"
        click.echo(f"  {c['status']:<13} {c['id']}: {value} {c['op']} {c['threshold']:g}")


@main.command()
@click.argument("analysis_store", metavar="STORE", type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="Report folder [default: reports/<STORE name without .analysis.h5>].",
)
@click.option(
    "--train-store",
    type=click.Path(path_type=Path),
    help="The train store, when it moved since the analysis [default: the one it records].",
)
@handle_errors
def report(analysis_store: Path, output: Path | None, train_store: Path | None) -> None:
    """Draw the figures and write one self-contained HTML page and summary.json.

    STORE is an analysis store (or a train store alone: training figures only). Measures not
    computed are listed with the command that computes them. Claims recorded by the preset the
    runs were trained with are marked pass or fail with the measured value.

    \b
    Examples:
      landscape report runs/quick.analysis.h5 -o reports/quick
      xdg-open reports/quick/report.html
    """
    from landscape.report import build_report

    stem = analysis_store.name.removesuffix(".h5").removesuffix(".analysis")
    out = output or Path("reports") / stem
    claims = _claims_of(train_store or analysis_store) if analysis_store.exists() else []
    summary = build_report(analysis_store, out, claims=claims, train_path=train_store)
    click.echo(f"wrote {out / 'report.html'} ({len(summary.get('figures', []))} figures)")
    _echo_claims(summary)


@main.command()
@click.argument("preset")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="Report folder [default: reports/PRESET].",
)
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    help="Train store [default: runs/PRESET.h5]; the analysis goes beside it (.analysis.h5). "
    "A sweep's stores go in a folder of that name without .h5.",
)
@click.option("--runs", type=click.IntRange(1), help="Seeds per mode (scales a preset down).")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any preset key, e.g. --set train.epochs=50, --set analyze.grid=21 or "
    "--set sweep.values=[2500,625] (repeatable).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@data_options
@executor_options
@handle_errors
def run(
    preset: str,
    output: Path | None,
    store: Path | None,
    runs: int | None,
    assignments: tuple[str, ...],
    device: str,
    data_dir: Path | None,
    offline: bool,
    executor: ExecutorChoice,
) -> None:
    """Train, analyze and report a preset in one go (each step resumes where it stopped).

    A preset with a [sweep] table (e.g. ring-sweep-small) runs once per swept value and budget
    (equal epochs, equal steps), each into STORE's folder and its own report, then writes
    sweep.html across them.

    \b
    Examples:
      landscape run quick                      about 3 minutes on 2 CPU cores, no download
      landscape run merkulov-mnist-mlp --runs 8 --data-dir ../shared/data
      landscape run ring-sweep-small           5 ring sizes at equal epochs and steps
      landscape presets                        what can be run
    """
    from landscape.pipeline.plan import resolve_plan

    flags = {"runs": runs} if runs else {}
    plan = resolve_plan(preset=preset, overrides=_overrides(flags, assignments))
    store = store or Path("runs") / f"{preset}.h5"
    out = output or Path("reports") / preset
    commands = _commands(preset, store, out, flags, assignments)
    with executor.open() as ex:
        ctx = _Context(device, data_dir, offline, _Progress(sys.stderr.isatty()), ex)
        if plan.sweep is not None:
            diverged = _run_sweep(plan, store, out, ctx, commands)
        else:
            summary, diverged = _run_one(plan, plan.experiment, store, out, ctx, commands)
            click.echo(f"wrote {out / 'report.html'}")
            _echo_claims(summary)
    if diverged:
        sys.exit(EXIT_FAILURE)


@dataclass(frozen=True)
class _Context:
    device: str
    data_dir: Path | None
    offline: bool
    progress: _Progress
    executor: Executor


def _analysis_path(store: Path) -> Path:
    return store.with_name(store.name.removesuffix(".h5") + ".analysis.h5")


def _run_one(
    plan: Plan,
    experiment: ExperimentConfig,
    store: Path,
    out: Path,
    ctx: _Context,
    commands: dict[str, str],
    *,
    claims: bool = True,
) -> tuple[dict[str, Any], bool]:
    """Train, analyze and report one experiment; (its summary, whether a run diverged)."""
    from landscape.measures.runner import AnalysisConfig, AnalyzeOptions, analyze
    from landscape.train.experiment import train_experiment
    from landscape.report import build_report
    from landscape.train.trainer import RuntimeOptions

    analysis = _analysis_path(store)
    click.echo(f"[1/3] train {plan.name}: {plan.description}", err=True)
    attrs = plan_attrs(plan) if claims else {"preset": plan.name, "claims": "[]"}
    trained = train_experiment(
        experiment,
        store,
        options=RuntimeOptions(device=ctx.device, data_dir=ctx.data_dir, offline=ctx.offline),
        on_event=ctx.progress,
        extra_attrs=attrs,
        executor=ctx.executor,
    )
    ctx.progress.close()
    _report(trained, store)
    click.echo(f"[2/3] analyze into {analysis}", err=True)
    options = AnalyzeOptions(device=ctx.device, data_dir=ctx.data_dir, offline=ctx.offline)
    done = analyze(store, analysis, AnalysisConfig(**plan.analysis), options=options,
                   on_event=ctx.progress, executor=ctx.executor)  # fmt: skip
    ctx.progress.close()
    click.echo(f"computed {len(done.computed)} results ({len(done.skipped)} up to date)")
    click.echo(f"[3/3] report into {out}", err=True)
    summary = build_report(analysis, out, claims=plan.claims if claims else (), commands=commands)
    return summary, bool(trained.diverged)


def _run_sweep(plan: Plan, store: Path, out: Path, ctx: _Context, commands: dict) -> bool:
    """Every variant of the plan's sweep, then sweep.html; True when any run diverged."""
    from landscape.data import load_dataset
    from landscape.report.sweep import SweepEntry, build_sweep_report
    from landscape.pipeline.sweep import variants

    assert plan.sweep is not None

    def train_size(cfg: ExperimentConfig) -> int:
        ds = load_dataset(cfg.data, data_dir=ctx.data_dir, offline=ctx.offline)
        return len(ds.x_train)

    folder = store.with_suffix("")
    todo = variants(plan.experiment, plan.sweep, train_size)
    entries, diverged = [], False
    for i, v in enumerate(todo, 1):
        click.echo(f"== variant {i}/{len(todo)}: {v.label} ({v.steps} steps)", err=True)
        v_store, v_out = folder / f"{v.label}.h5", out / v.label
        summary, bad = _run_one(plan, v.experiment, v_store, v_out, ctx, {}, claims=False)
        diverged |= bad
        where = {"analysis_path": _analysis_path(v_store), "report_dir": v_out}
        entries.append(SweepEntry(v.label, v.value, v.budget, v.train_size, v.steps,
                                  v.epochs, summary=summary, **where))  # fmt: skip
    result = build_sweep_report(
        entries,
        out,
        name=plan.name,
        description=plan.description,
        key=plan.sweep.key,
        claims=plan.claims,
        commands=commands,
    )
    click.echo(f"wrote {out / 'sweep.html'} ({len(entries)} variants)")
    _echo_claims(result)
    return diverged


def _commands(preset: str, store: Path, out: Path, flags: dict, sets: tuple[str, ...]) -> dict:
    """The one `landscape run` line that rebuilds it all; the report adds the step-by-step
    commands from what the stores record (the exact config and analysis settings)."""
    q = shlex.quote
    extra = (f" --runs {flags['runs']}" if flags else "") + "".join(f" --set {q(a)}" for a in sets)
    return {"run": f"landscape run {q(preset)}{extra} --store {q(str(store))} -o {q(str(out))}"}
