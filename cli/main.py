"""The `landscape` command line: parse, call the library, show progress, map errors to exit codes.

Exit codes: 0 success; 1 a missing or corrupt store or dataset, or a failed run; 2 bad usage
(unknown key, bad value, impossible combination); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from landscape import config as cfgmod
from landscape.errors import ConfigError, LandscapeError

EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's exceptions into a one-line message and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_USAGE)
        except LandscapeError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_FAILURE)
        except KeyboardInterrupt:
            click.echo(
                "interrupted: completed runs are saved; run the same command to resume", err=True
            )
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="landscape-lab", prog_name="landscape")
def main() -> None:
    """Train normal and extreme-overfit networks and study where they end up.

    \b
    Start here:
      landscape presets                  what can be run, and what each reproduces
      landscape run quick                train, analyze and report: ~3 minutes on 2 CPU cores
      xdg-open reports/quick/report.html the page; figures and summary.json beside it

    \b
    Or step by step:
      landscape train --preset quick -o runs/quick.h5
      landscape analyze runs/quick.h5 -o runs/quick.analysis.h5
      landscape report runs/quick.analysis.h5 -o reports/quick
      landscape info runs/quick.h5 [--json]
    """


@main.command()
def presets() -> None:
    """List the shipped presets with a one-line description each."""
    for name, text in cfgmod.preset_descriptions().items():
        click.echo(f"{name:<20} {text}")


def data_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--data-dir and --offline, shared by every command that loads a dataset."""
    fn = click.option(
        "--offline", is_flag=True, help="Never download; fail if a dataset is absent."
    )(fn)
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        envvar="LANDSCAPE_DATA",
        help="Where datasets are found or downloaded [env LANDSCAPE_DATA; default ./data].",
    )(fn)


@dataclass(frozen=True)
class ExecutorChoice:
    """--executor, --workers and --cluster-option, opened as a context manager."""

    spec: str = "local"
    workers: int = 0
    options: tuple[str, ...] = ()  # KEY=VALUE, checked when opened (inside handle_errors)

    @contextlib.contextmanager
    def open(self) -> Iterator[Any]:
        from landscape.core.executor import make_executor

        options = _cluster_options(self.options)
        executor = make_executor(self.spec, workers=self.workers, cluster_options=options)
        try:
            yield executor
        finally:
            executor.close()


def _cluster_options(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for text in items:
        if "=" not in text:
            raise ConfigError(
                f"--cluster-option {text!r}: expected KEY=VALUE, e.g. queue=gpu or cores=8"
            )
        key, raw = (t.strip() for t in text.split("=", 1))
        out[key] = cfgmod.parse_assignment(f"x.v={raw}")["x"]["v"]
    return out


def executor_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--executor/--workers/--cluster-option, passed to the command as one `executor`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        choice = ExecutorChoice(
            kwargs.pop("executor_spec"),
            kwargs.pop("workers"),
            kwargs.pop("cluster_options"),
        )
        return fn(*args, executor=choice, **kwargs)

    options = [
        click.option(
            "--executor",
            "executor_spec",
            default="local",
            show_default=True,
            metavar="local|dask|tcp://HOST:PORT|slurm",
            help="Where the work runs: here; a Dask cluster on this machine; a running Dask "
            "scheduler; or Slurm jobs via dask-jobqueue (needs the `distributed` extra and a "
            "filesystem the workers share).",
        ),
        click.option(
            "--workers",
            type=click.IntRange(0),
            default=0,
            help="Dask workers (local cluster) or Slurm jobs [default: half the cores; 1 job].",
        ),
        click.option(
            "--cluster-option",
            "cluster_options",
            multiple=True,
            metavar="KEY=VALUE",
            help="Passed to the cluster, e.g. queue=gpu, cores=8, memory=32GB, walltime=02:00:00"
            " for Slurm. Repeatable.",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _choice(key: str) -> click.Choice:
    return click.Choice(cfgmod.CHOICES[key])


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


def _overrides(values: dict[str, Any], assignments: tuple[str, ...]) -> dict[str, Any]:
    """Flags and --set pairs as a nested override dict (flags win over --set)."""
    out: dict[str, Any] = {}
    for text in assignments:
        out = cfgmod.merge(out, cfgmod.parse_assignment(text))
    for option, key, _type, _help in TRAIN_OPTIONS:
        value = values.get(_dest(option))
        if value is None:
            continue
        if key == "model.widths":
            value = _parse_widths(value)
        section, name = key.split(".")
        out = cfgmod.merge(out, {section: {name: value}})
    if values.get("epochs") is not None and values.get("steps") is None:
        out = cfgmod.merge(out, {"train": {"steps": 0}})
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


@main.command()
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
    from landscape.train.experiment import planned_runs, train_experiment
    from landscape.pipeline.plan import resolve_plan
    from landscape.train.trainer import RuntimeOptions

    plan = resolve_plan(
        preset=preset, config_file=config_file, overrides=_overrides(flags, assignments)
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
        device=device, batched=batched, group_size=group_size, data_dir=data_dir, offline=offline
    )
    progress = _Progress(sys.stderr.isatty())
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
    _report(summary, output)
    if summary.diverged:
        sys.exit(EXIT_FAILURE)


def plan_attrs(plan: Any) -> dict[str, str]:
    """What a train store records of its preset before training: name and claims."""
    return {"preset": plan.name, "claims": plan.claims_json()}


def _report(summary: Any, output: Path) -> None:
    if not summary.trained:
        click.echo(f"nothing to do: all {len(summary.skipped)} runs in {output} are complete")
        return
    click.echo(
        f"trained {len(summary.trained)} runs into {output}"
        + (f" ({len(summary.skipped)} were already complete)" if summary.skipped else "")
    )
    if summary.diverged:
        click.echo(
            "diverged (loss became NaN or inf; see `landscape info`): "
            + ", ".join(summary.diverged),
            err=True,
        )


class _Progress:
    """A progress bar per group on a terminal; one log line per event otherwise."""

    def __init__(self, tty: bool):
        self.tty = tty
        self.bar: Any = None

    def __call__(self, event: Any) -> None:
        if event.kind in ("plan", "note"):
            click.echo(event.message, err=True)
        elif event.kind == "group":
            self.close()
            if self.tty and event.total:
                self.bar = click.progressbar(
                    length=event.total, label=event.message, file=sys.stderr
                )
                self.bar.__enter__()
            else:
                click.echo(event.message, err=True)
        elif event.kind == "steps" and self.bar is not None:
            self.bar.update(event.done - self.bar.pos)
        elif event.kind == "run":
            self.close()
            click.echo(_run_line(event.run) if event.run else event.message, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _run_line(run: dict) -> str:
    final = run["final"] or {}
    return (
        f"{run['id']:<12} seed {run['seed']:<4} {run['status']:<9} steps {run['steps']:<7} "
        f"train_acc {_fmt(final.get('train_acc'))}  test_acc {_fmt(final.get('test_acc'))}  "
        f"corrupt_acc {_fmt(final.get('corrupt_acc'))}"
    )


@main.command()
@click.argument("store_path", metavar="STORE", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def info(store_path: Path, as_json: bool) -> None:
    """Show what a store holds: runs (train store) or results (analysis store)."""
    from landscape.store.analysis_store import KIND_ANALYSIS, analysis_info
    from landscape.store.train_store import store_info, store_kind

    if store_kind(store_path) == KIND_ANALYSIS:
        data = analysis_info(store_path)
        if as_json:
            click.echo(json.dumps(data, indent=2))
            return
        click.echo(f"analysis of {data['train_store']}")
        for r in data["results"]:
            shapes = ", ".join(f"{n}{tuple(s)}" for n, s in r["arrays"].items())
            click.echo(f"{r['measure']:<14} {r['key']:<22} {r['seconds']:7.2f} s  {shapes}")
        return
    data = store_info(store_path)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    header = (
        f"{'run':<12} {'mode':<8} {'seed':>4}  {'status':<9} {'steps':>7} {'epochs':>7}  "
        f"{'train_acc':>9} {'train_loss':>10} {'test_acc':>8} {'test_loss':>9} {'corrupt_acc':>11}"
    )
    click.echo(header)
    for r in data["runs"]:
        f = r["final"] or {}
        click.echo(
            f"{r['id']:<12} {r['mode']:<8} {r['seed']:>4}  {r['status']:<9} "
            f"{_fmt(r['steps'], 'd'):>7} {_fmt(r['epochs'], '.1f'):>7}  "
            f"{_fmt(f.get('train_acc')):>9} {_fmt(f.get('train_loss'), '.4g'):>10} "
            f"{_fmt(f.get('test_acc')):>8} {_fmt(f.get('test_loss'), '.4g'):>9} "
            f"{_fmt(f.get('corrupt_acc')):>11}"
        )


from cli import analyze_cmd, import_cmd, pipeline  # noqa: E402, F401  (register the commands)

if __name__ == "__main__":  # pragma: no cover
    main()
