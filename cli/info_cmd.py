"""`landscape info`: what a store holds, as a table or as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.common import fmt, handle_errors


@click.command()
@click.argument("store_path", metavar="STORE", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def info(store_path: Path, as_json: bool) -> None:
    """Show what a store holds: runs (train store) or results (analysis store)."""
    from landscape.store.analysis_read import analysis_info
    from landscape.store.analysis_store import KIND_ANALYSIS
    from landscape.store.train_read import store_info, store_kind

    if store_kind(store_path) == KIND_ANALYSIS:
        data = analysis_info(store_path)
        if as_json:
            click.echo(json.dumps(data, indent=2))
            return
        click.echo(f"analysis of {data['train_store']}")
        counts = ", ".join(f"{m} ({s['results']})" for m, s in data["measures"].items())
        click.echo(f"measures: {counts}")
        for r in data["results"]:
            if r["status"] == "damaged":
                click.echo(f"{r['measure']:<14} {r['key']:<22} damaged: {r['problem']}")
                continue
            shapes = ", ".join(f"{n}{tuple(s)}" for n, s in r["arrays"].items())
            click.echo(f"{r['measure']:<14} {r['key']:<22} {fmt(r['seconds'], '7.2f')} s  {shapes}")
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
            f"{fmt(r['steps'], 'd'):>7} {fmt(r['epochs'], '.1f'):>7}  "
            f"{fmt(f.get('train_acc')):>9} {fmt(f.get('train_loss'), '.4g'):>10} "
            f"{fmt(f.get('test_acc')):>8} {fmt(f.get('test_loss'), '.4g'):>9} "
            f"{fmt(f.get('corrupt_acc')):>11}"
        )
    for r in data["runs"]:
        if r["status"] == "damaged":
            click.echo(f"{r['id']}: damaged: {r['problem']}")
    if any(r["status"] == "damaged" for r in data["runs"]):
        click.echo(
            "damaged run files are left out of `landscape analyze` and the report; "
            "`landscape train ... --replace-damaged` trains them afresh"
        )
