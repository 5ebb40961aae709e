"""`landscape import`: weights trained elsewhere (safetensors) become a run of a train store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.common import data_options, handle_errors
from landscape.config_checks import CHOICES
from landscape.errors import ConfigError


def _checkpoints(items: tuple[str, ...]) -> dict[int, Path]:
    """STEP=FILE pairs; a malformed or repeated step is a usage error."""
    out: dict[int, Path] = {}
    for text in items:
        step, sep, path = text.partition("=")
        if not sep or not step.strip().isdigit() or not path:
            raise ConfigError(
                f"--checkpoint {text!r}: expected STEP=FILE, e.g. 1000=ckpt_1000.safetensors"
            )
        if int(step) in out:
            raise ConfigError(f"--checkpoint: step {int(step)} given twice; give each step once")
        out[int(step)] = Path(path)
    return out


@click.command(name="import")
@click.option(
    "--model",
    required=True,
    help="A built-in architecture (mlp, lenet, resnet, lenet-paper, resnet-paper) or your "
    "factory as module:function, imported like `python -m` (the current directory first on "
    "sys.path).",
)
@click.option(
    "--model-arg",
    "model_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keyword argument of the factory (int, float, true/false, [list] or string); for a "
    "built-in model a model.* config key, e.g. widths=[512]. Repeatable.",
)
@click.option(
    "--weights",
    required=True,
    type=click.Path(path_type=Path),
    help="The point to measure: a .safetensors file of the model's state_dict.",
)
@click.option(
    "--init",
    type=click.Path(path_type=Path),
    help="The initial point (.safetensors), for distance from init and init -> final paths.",
)
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    metavar="STEP=FILE",
    help="A point along training (.safetensors) at optimizer step STEP. Repeatable; needs --step.",
)
@click.option(
    "--step", type=click.IntRange(0), help="Optimizer steps at --weights (orders the checkpoints)."
)
@click.option(
    "--dataset",
    type=click.Choice(CHOICES["data.name"]),
    help="A built-in dataset to measure on.",
)
@click.option(
    "--data",
    metavar="FILE|module:function",
    help="Your data: an .npz or .h5 file with x_train, y_train, x_test, y_test, or a function "
    "returning those four arrays.",
)
@click.option("--subset", type=click.IntRange(1), help="Keep N training examples (stratified).")
@click.option("--test-subset", type=click.IntRange(1), help="Keep N test examples.")
@click.option(
    "--task",
    type=click.Choice(("auto", "classification", "regression")),
    default="auto",
    show_default=True,
    help="auto: integer targets classify (cross-entropy), floating ones regress (MSE).",
)
@click.option(
    "--label",
    default="normal",
    show_default=True,
    help="The run's mode: normal, overfit or any name; runs are <label>-000, <label>-001, ...",
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="The train store to write (never overwritten; see --append).",
)
@click.option(
    "--append",
    is_flag=True,
    help="Add this point as another run of an existing store of imported points (same model "
    "and data), e.g. --label overfit next to a normal one.",
)
@data_options
@handle_errors
def import_(
    model: str,
    model_args: tuple[str, ...],
    weights: Path,
    init: Path | None,
    checkpoints: tuple[str, ...],
    output: Path,
    append: bool,
    data_dir: Path | None,
    offline: bool,
    **rest: Any,
) -> None:
    """Measure weights trained elsewhere: store them as a run that `analyze` and `report` read.

    Weights are read from safetensors files only (never torch.load or pickle); convert a
    checkpoint you trust with safetensors.torch.save_file(model.state_dict(), PATH). Names and
    shapes are checked against the model; nothing is written unless everything matches.

    \b
    Examples:
      landscape import --model mypkg.nets:make_resnet --model-arg width=64 \\
          --weights final.safetensors --init init.safetensors \\
          --dataset cifar10 --data-dir data --label overfit -o runs/mine.h5
      landscape import --model mypkg.nets:make_net --weights w.safetensors \\
          --data arrays.npz -o runs/net.h5
      landscape analyze runs/mine.h5 && landscape report runs/mine.analysis.h5
    """
    from landscape.importer.checkpoint import ImportRequest, import_checkpoint
    from landscape.importer.sources import parse_model_args

    request = ImportRequest(
        weights=weights,
        model=model,
        model_args=parse_model_args(model_args),
        init=init,
        checkpoints=_checkpoints(checkpoints),
        **rest,
    )
    result = import_checkpoint(request, output, data_dir=data_dir, offline=offline, append=append)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"imported {', '.join(result.points)} of {model} ({result.n_params:,} parameters) as "
        f"run {result.run_id} into {output}"
    )
    click.echo(f"next: landscape analyze {output}", err=True)
