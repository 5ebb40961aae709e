"""`landscape report` and `landscape run`: figures and the HTML page, and all three steps in one."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from cli.common import (
    EXIT_FAILURE,
    ExecutorChoice,
    Progress,
    data_options,
    executor_options,
    handle_errors,
    writer_options,
)
from cli.train_cmd import overrides


def _claims_of(path: Path) -> list[dict[str, Any]]:
    """The claims recorded in the train store behind `path` (an analysis or a train store)."""
    from landscape.pipeline.plan import stored_claims
    from landscape.store import analysis_read as analysis_store
    from landscape.store import train_read as store

    train = path
    if store.store_kind(path) != store.KIND_TRAIN:
        recorded = analysis_store.read_index(path).get("train_store")
        if not recorded:
            return []  # results of a model trained elsewhere (landscape.Probe): no claims
        train = Path(recorded)
    if not train.exists():
        return []  # the report says the train store is missing; claims cannot be read
    return stored_claims(store.read_index(train))


def _echo_claims(summary: dict[str, Any]) -> None:
    for c in summary.get("claims", []):
        value = "-" if c.get("value") is None else f"{c['value']:.4g}"
        click.echo(f"  {c['status']:<13} {c['id']}: {value} {c['op']} {c['threshold']:g}")


@click.command()
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


@click.command()
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
@writer_options
@click.option(
    "--replace-damaged",
    is_flag=True,
    help="Train runs whose file is damaged afresh, replacing the file (default: refuse).",
)
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
    wait: bool,
    replace_damaged: bool,
) -> None:
    """Train, analyze and report a preset in one go (each step resumes where it stopped).

    A preset with a [sweep] table (e.g. ring-sweep-small) runs once per swept value and budget
    (equal epochs, equal steps), each into STORE's folder and its own report, then writes
    sweep.html across them.

    \b
    Examples:
      landscape run quick                      about a minute on 2 CPU cores, no download
      landscape run merkulov-mnist-mlp --runs 8 --data-dir ../shared/data
      landscape run ring-sweep-small           5 ring sizes at equal epochs and steps
      landscape presets                        what can be run
    """
    from landscape.pipeline.plan import resolve_plan
    from landscape.pipeline.run import run_plan
    from landscape.train.trainer import RuntimeOptions

    flags = {"runs": runs} if runs else {}
    plan = resolve_plan(preset=preset, overrides=overrides(flags, assignments))
    store = store or Path("runs") / f"{preset}.h5"
    out = output or Path("reports") / preset
    options = RuntimeOptions(device=device, data_dir=data_dir, offline=offline, wait=wait,
                             replace_damaged=replace_damaged)  # fmt: skip
    progress = Progress(sys.stderr.isatty())
    with executor.open() as ex:
        outcome = run_plan(plan, store, out, options=options, executor=ex, on_event=progress,
                           commands=_commands(preset, store, out, flags, assignments))  # fmt: skip
    progress.close()
    extra = f" ({len(outcome.summary.get('variants', []))} variants)" if plan.sweep else ""
    click.echo(f"wrote {outcome.page}{extra}")
    _echo_claims(outcome.summary)
    if outcome.diverged:
        click.echo("diverged (loss became NaN or inf): " + ", ".join(outcome.diverged), err=True)
        sys.exit(EXIT_FAILURE)


def _commands(preset: str, store: Path, out: Path, flags: dict, sets: tuple[str, ...]) -> dict:
    """The one `landscape run` line that rebuilds it all; the report adds the step-by-step
    commands from what the stores record (the exact config and analysis settings)."""
    q = shlex.quote
    extra = (f" --runs {flags['runs']}" if flags else "") + "".join(f" --set {q(a)}" for a in sets)
    return {"run": f"landscape run {q(preset)}{extra} --store {q(str(store))} -o {q(str(out))}"}
