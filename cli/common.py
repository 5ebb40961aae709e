"""What every `landscape` command shares: exit codes, error mapping, progress, common options.

Exit codes: 0 success; 1 a missing or corrupt store or dataset, or a failed run; 2 bad usage
(unknown key, bad value, impossible combination); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import functools
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


def writer_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--wait, for the commands that write a store (one writer at a time holds its lock)."""
    return click.option(
        "--wait",
        is_flag=True,
        help="When another landscape process is writing the same store, wait for it to finish "
        "(default: stop with a message naming it).",
    )(fn)


def echo_trained(summary: Any, output: Path) -> None:
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


class Progress:
    """A progress bar per group on a terminal; one log line per event otherwise."""

    def __init__(self, tty: bool):
        self.tty = tty
        self.bar: Any = None

    def __call__(self, event: Any) -> None:
        if event.kind in ("plan", "note"):
            self.close()
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
            click.echo(run_line(event.run) if event.run else event.message, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def run_line(run: dict) -> str:
    final = run["final"] or {}
    return (
        f"{run['id']:<12} seed {run['seed']:<4} {run['status']:<9} steps {run['steps']:<7} "
        f"train_acc {fmt(final.get('train_acc'))}  test_acc {fmt(final.get('test_acc'))}  "
        f"corrupt_acc {fmt(final.get('corrupt_acc'))}"
    )
