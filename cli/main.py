"""The `landscape` command line: one group, one thin module per command (cli/*_cmd.py).

Exit codes: 0 success; 1 a missing or corrupt store or dataset, or a failed run; 2 bad usage
(unknown key, bad value, impossible combination); 130 interrupted.
"""

from __future__ import annotations

import click

from cli.analyze_cmd import analyze
from cli.import_cmd import import_
from cli.info_cmd import info
from cli.run_cmd import report, run
from cli.train_cmd import presets, train


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="landscape-lab", prog_name="landscape")
def main() -> None:
    """Train normal and extreme-overfit networks and study where they end up.

    \b
    Start here:
      landscape presets                  what can be run, and what each reproduces
      landscape run quick                train, analyze and report: about a minute on 2 CPU cores
      xdg-open reports/quick/report.html the page; figures and summary.json beside it

    \b
    Or step by step:
      landscape train --preset quick -o runs/quick.h5
      landscape analyze runs/quick.h5 -o runs/quick.analysis.h5
      landscape report runs/quick.analysis.h5 -o reports/quick
      landscape info runs/quick.h5 [--json]

    \b
    Your own checkpoints (safetensors):
      landscape import --model mypkg.nets:make_net --weights final.safetensors \\
          --dataset digits -o runs/mine.h5
    """


for command in (presets, train, import_, analyze, report, run, info):
    main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    main()
