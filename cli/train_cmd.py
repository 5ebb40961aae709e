"""`landscape train` and `landscape presets`: one flag per config key, presets, --set."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli.common import (
    EXIT_FAILURE,
    ExecutorChoice,
    Progress,
    data_options,
    echo_trained,
    executor_options,
    handle_errors,
    writer_options,
)
from landscape import config as cfgmod
from landscape.config_checks import CHOICES
from landscape.errors import ConfigError


@click.command()
def presets() -> None:
    """List the shipped presets with a one-line description each."""
    for name, text in cfgmod.preset_descriptions().items():
        click.echo(f"{name:<20} {text}")


def _choice(key: str) -> click.Choice:
    return click.Choice(CHOICES[key])


# (option, config key, click type, help); each maps one flag onto one config key.
TRAIN_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--dataset", "data.name", _choice("data.name"), "Dataset (digits needs no download)."),
    ("--subset", "data.subset", click.IntRange(1), "Keep N training examples (stratified)."),
    ("--test-subset", "data.test_subset", click.IntRange(1), "Keep N test examples."),
    ("--model", "model.name", _choice("model.name"), "Architecture."),
    ("--widths", "model.widths", str, "MLP hidden widths, comma separated, e.g. 512 or 100,100."),
    ("--activation", "model.activation", _choice("model.activation"), "Nonlinearity."),
    ("--init", "model.init", _choice("model.init"), "Initialization."),
    ("--optimizer", "optim.name", _choice("optim.name"), "Optimizer."),
    ("--lr", "optim.lr", click.FloatRange(min=0, min_open=True), "Learning rate."),
    ("--batch-size", "optim.batch_size", click.IntRange(0), "Examples per step; 0: full batch."),
    ("--weight-decay", "optim.weight_decay", click.FloatRange(0), "Weight decay."),
    ("--momentum", "optim.momentum", click.FloatRange(0), "SGD momentum."),
    ("--epochs", "train.epochs", click.IntRange(1), "Epochs (clears a preset's steps)."),
    ("--steps", "train.steps", click.IntRange(1), "Optimizer steps instead of epochs."),
    (
        "--mode",
        "train.mode",
        _choice("train.mode"),
        "normal, overfit (Merkulov & Oseledets) or both.",
    ),
    ("--runs", "train.runs", click.IntRange(1), "Seeds per mode (K)."),
    ("--seed", "train.seed", int, "Run k is seeded with SEED + k."),
    ("--copies", "train.copies", click.IntRange(0), "Overfit: copies of the corrupted test set."),
    ("--checkpoints", "train.checkpoints", click.IntRange(1), "Log-spaced checkpoints per run."),
]


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def overrides(values: dict[str, Any], assignments: tuple[str, ...]) -> dict[str, Any]:
    """Flags and --set pairs as a nested override dict.

    A flag and a --set that give one key two values, or epochs and steps both given (steps
    would silently win), are refused: nothing is resolved behind the user's back.
    """
    sets: dict[str, Any] = {}
    for text in assignments:
        sets = cfgmod.merge(sets, cfgmod.parse_assignment(text))
    out = sets
    for option, key, _type, _help in TRAIN_OPTIONS:
        value = values.get(_dest(option))
        if value is None:
            continue
        if key == "model.widths":
            value = _parse_widths(value)
        section, name = key.split(".")
        given = sets.get(section, {}).get(name, value)
        if given is not value and given != value:
            raise ConfigError(
                f"{option} {value!r} and --set {key}={given!r} disagree; give the key once"
            )
        out = cfgmod.merge(out, {section: {name: value}})
    train = out.get("train", {})
    if "epochs" in train and train.get("steps"):
        raise ConfigError(
            f"train.epochs = {train['epochs']} and train.steps = {train['steps']} both given "
            "(steps would win); give one: --epochs N or --steps N"
        )
    if "epochs" in train and "steps" not in train:
        out = cfgmod.merge(out, {"train": {"steps": 0}})  # epochs clear a preset's steps
    return out


def _parse_widths(text: str) -> list[int]:
    try:
        return [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise ConfigError(
            f"--widths {text!r}: expected integers separated by commas, e.g. 512,256"
        ) from None


def train_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option, key, type_, help_ in reversed(TRAIN_OPTIONS):
        fn = click.option(option, _dest(option), type=type_, default=None, help=f"{help_} [{key}]")(
            fn
        )
    return fn


@click.command()
@click.option(
    "--preset",
    "-p",
    default="quick",
    show_default=True,
    help="Preset to start from (see `landscape presets`).",
)
@click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(path_type=Path),
    help="TOML file overriding the preset.",
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Store (index file); run files go to a .runs/ folder beside it.",
)
@train_options
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any config key, e.g. --set optim.betas=[0.9,0.98]. Repeatable.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option(
    "--batched/--no-batched",
    default=True,
    show_default=True,
    help="Train the seeds of a mode together under vmap, or one by one.",
)
@click.option(
    "--group-size",
    type=click.IntRange(0),
    default=0,
    help="Most runs trained together (0: all of a mode). Smaller groups lose less "
    "to a crash and use less memory.",
)
@data_options
@executor_options
@writer_options
@click.option(
    "--replace-damaged",
    is_flag=True,
    help="Train runs whose file is damaged afresh, replacing the file (default: refuse).",
)
@click.option("--dry-run", is_flag=True, help="Print the resolved config and planned runs only.")
@handle_errors
def train(
    preset: str,
    config_file: Path | None,
    output: Path,
    assignments: tuple[str, ...],
    device: str,
    batched: bool,
    group_size: int,
    data_dir: Path | None,
    offline: bool,
    dry_run: bool,
    executor: ExecutorChoice,
    wait: bool,
    replace_damaged: bool,
    **flags: Any,
) -> None:
    """Train normal and/or extreme-overfit runs into an HDF5 store.

    Settings come from the preset, then the -c file, then the flags (each flag names the config
    key it sets). Running the same command again trains only the runs that are missing.

    \b
    Examples:
      landscape train -o runs/quick.h5                       the quick preset
      landscape train -p merkulov-mnist-mlp --data-dir ../shared/data -o runs/mnist.h5
      landscape train -o runs/q.h5 --mode overfit --runs 8 --lr 3e-4
    """
    from landscape.pipeline.plan import resolve_plan
    from landscape.pipeline.run import plan_attrs
    from landscape.train.experiment import planned_runs, train_experiment
    from landscape.train.trainer import RuntimeOptions

    plan = resolve_plan(
        preset=preset, config_file=config_file, overrides=overrides(flags, assignments)
    )
    cfg = plan.experiment
    if plan.sweep is not None:
        click.echo(
            f"note: preset {preset!r} sweeps {plan.sweep.key} over {list(plan.sweep.values)}; "
            "`landscape train` trains its base config only; `landscape run` trains every variant",
            err=True,
        )
    if dry_run:
        click.echo(json.dumps(cfg.to_dict(), indent=2))
        click.echo("runs: " + " ".join(planned_runs(cfg)))
        return
    options = RuntimeOptions(
        device=device,
        batched=batched,
        group_size=group_size,
        data_dir=data_dir,
        offline=offline,
        wait=wait,
        replace_damaged=replace_damaged,
    )
    progress = Progress(sys.stderr.isatty())
    with executor.open() as ex:
        summary = train_experiment(
            cfg,
            output,
            options=options,
            on_event=progress,
            extra_attrs=plan_attrs(plan),
            executor=ex,
        )
    progress.close()
    echo_trained(summary, output)
    if summary.diverged:
        sys.exit(EXIT_FAILURE)
