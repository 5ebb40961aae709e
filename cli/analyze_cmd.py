"""`landscape analyze`: one flag per analysis setting, generated from the measures' specs."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli.common import (
    ExecutorChoice,
    Progress,
    data_options,
    executor_options,
    handle_errors,
    writer_options,
)
from landscape import config as cfgmod
from landscape.errors import ConfigError


def _settings() -> dict[str, Any]:
    from landscape.measures.settings import all_settings

    return all_settings()


def _option(setting: Any) -> Callable[..., Any]:
    """One flag for one setting: its help, default and the measures that use it, from the spec."""
    from landscape.measures.settings import users

    kind: Any = {"int": int, "float": float}.get(setting.kind, str)
    if setting.choices and setting.kind == "str":
        kind = click.Choice(setting.choices)
    default = setting.default
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    used = users(setting.name)
    text = (
        setting.help[0].upper()
        + setting.help[1:]
        + (" (comma separated)" if setting.kind in ("floats", "strs") else "")
    )
    text += f" [default: {shown}" + (f"; used by: {', '.join(used)}" if used else "") + "]"
    return click.option(setting.flag(), setting.name, type=kind, default=None, help=text)


def analysis_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Every analysis setting as a flag; the command gets them as `settings` (given ones only)."""
    names = list(_settings())

    @functools.wraps(fn)  # keeps the options declared below this decorator
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {n: v for n in names if (v := kwargs.pop(n)) is not None}
        return fn(*args, settings=given, **kwargs)

    for setting in reversed(list(_settings().values())):
        wrapper = _option(setting)(wrapper)
    return wrapper


def _flag_value(name: str, value: Any) -> Any:
    """A flag's text for a tuple setting, split on commas (numbers for `floats`)."""
    kind = _settings()[name].kind
    if kind not in ("floats", "strs") or not isinstance(value, str):
        return value
    items = [v.strip() for v in value.split(",") if v.strip()]
    if kind == "strs":
        return items
    try:
        return [float(v) for v in items]
    except ValueError:
        raise ConfigError(
            f"--{name.replace('_', '-')} {value!r}: expected numbers separated by "
            "commas, e.g. 0.1,0.25,0.5"
        ) from None


def resolve_settings(only: str | None, flags: dict[str, Any], assignments: tuple[str, ...]) -> Any:
    """AnalysisConfig from --only, the flags and --set analyze.KEY=VALUE; a key given both ways
    with different values is refused rather than silently resolved."""
    from landscape.measures.runner import AnalysisConfig

    values: dict[str, Any] = {}
    for text in assignments:
        parsed = cfgmod.parse_assignment(text)
        if set(parsed) != {"analyze"}:
            raise ConfigError(f"--set {text!r}: expected analyze.KEY=VALUE, e.g. analyze.grid=21")
        values.update(parsed["analyze"])
    for name, raw in flags.items():
        value = _flag_value(name, raw)
        if name in values and _settings()[name].validate(values[name]) != _settings()[
            name
        ].validate(value):
            raise ConfigError(
                f"analysis setting {name!r} given twice: --{name.replace('_', '-')} {raw} and "
                f"--set analyze.{name}={values[name]}; give one"
            )
        values[name] = value
    if only is not None:
        measures = [m.strip() for m in only.split(",")]
        if not all(measures):
            raise ConfigError(
                f"--only {only!r}: expected measure names separated by commas, "
                "e.g. distance,gradient; see --list"
            )
        values["measures"] = measures
    return AnalysisConfig.from_values(values, where="landscape analyze")


def _list() -> None:
    from landscape.measures.registry import SPECS

    for m in SPECS:
        settings = ", ".join(s.name for s in (*m.settings, *m.key_settings)) or "-"
        click.echo(f"{m.name:<21} {m.description}")
        click.echo(f"{'':<21} one result per {m.needs}; settings: {settings}")


def _dry_run(cfg: Any, out: Path) -> None:
    from landscape.measures.registry import SPECS

    click.echo(f"analysis store: {out}")
    click.echo(f"seed {cfg.seed}, runs {cfg.runs}, bn {cfg.bn}, bn_samples {cfg.bn_samples}")
    for m in SPECS:
        if cfg.measures and m.name not in cfg.measures:
            continue
        params = {
            k: v for k, v in cfg.parameters(m.name).items() if k not in ("seed", "bn", "bn_samples")
        }
        keys = {s.name: getattr(cfg, s.name) for s in m.key_settings}
        text = ", ".join(f"{k}={v}" for k, v in (params | keys).items()) or "(no settings)"
        click.echo(f"  {m.name:<21} {text}")


@click.command()
@click.argument("train_store", type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="Analysis store [default: TRAIN_STORE with .analysis.h5].",
)
@click.option("--only", help="Comma-separated measures (default: all); see --list.")
@click.option("--list", "list_measures", is_flag=True, help="List the measures and exit.")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="analyze.KEY=VALUE",
    help="Any analysis setting, e.g. --set analyze.grid=21 (repeatable; a preset's [analyze] "
    "keys).",
)
@click.option("--dry-run", is_flag=True, help="Print the resolved settings per measure only.")
@analysis_options
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option(
    "--max-memory",
    type=click.IntRange(1),
    default=None,
    help="MiB of activations the evaluator holds at once [default: half the free GPU memory, "
    "or a tenth of RAM up to 2 GiB on a CPU].",
)
@data_options
@executor_options
@writer_options
@handle_errors
def analyze(
    train_store: Path,
    output: Path | None,
    only: str | None,
    list_measures: bool,
    assignments: tuple[str, ...],
    dry_run: bool,
    settings: dict[str, Any],
    device: str,
    max_memory: int,
    data_dir: Path | None,
    offline: bool,
    executor: ExecutorChoice,
    wait: bool,
) -> None:
    """Measure the stored points: distances, gradients, slices, surfaces, curvature.

    Results go to a separate analysis store; the train store is only read. Running again
    computes only what is missing (or was computed with other settings). Every setting is a
    flag below and `--set analyze.KEY=VALUE`; `--list` says which measure uses which.

    \b
    Examples:
      landscape analyze runs/quick.h5 -o runs/quick.analysis.h5
      landscape analyze runs/quick.h5 --only surface2d --grid 51 --span 1.0
      landscape analyze runs/quick.h5 --set analyze.radii=[0.05,0.1] --dry-run
    """
    from landscape.measures.runner import AnalyzeOptions
    from landscape.measures.runner import analyze as run_analysis

    if list_measures:
        return _list()
    out = output or train_store.with_name(train_store.stem + ".analysis.h5")
    cfg = resolve_settings(only, settings, assignments)
    if dry_run:
        return _dry_run(cfg, out)
    options = AnalyzeOptions(
        device=device,
        data_dir=data_dir,
        offline=offline,
        memory_budget=max_memory * 2**20 if max_memory else None,
        wait=wait,
    )
    progress = Progress(sys.stderr.isatty())
    with executor.open() as ex:
        summary = run_analysis(
            train_store, out, cfg, options=options, on_event=progress, executor=ex
        )
    progress.close()
    click.echo(
        f"computed {len(summary.computed)} results into {out}"
        + (f" ({len(summary.skipped)} were up to date)" if summary.skipped else "")
    )
