"""`build_report`: stores in, report.html + figures/*.png + summary.json out."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from landscape.report.claims import check_claim, evaluate_claims
from landscape.report.data import load
from landscape.report.draw import FIGURES, draw_all
from landscape.report.page import render
from landscape.report.reproduce import config_toml
from landscape.report.summary_json import build_summary, dumps
from landscape.store.atomic import ensure_folder, remove_output, write_text


def build_report(
    analysis_path: Path,
    out_dir: Path,
    *,
    claims: Sequence[Mapping[str, Any]] = (),
    train_path: Path | None = None,
    commands: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write out_dir/report.html, out_dir/figures/*.png and out_dir/summary.json.

    `analysis_path` is an analysis store (its train store is found from its attributes unless
    `train_path` is given) or a train store alone (then only the training figures are drawn).
    Measures that were not computed appear as "not computed" with the command that computes
    them. `claims` are checked against summary.json (see `landscape.report.claims`);
    `commands` ({"train", "analyze", "report"}) replaces the generated "how to reproduce" lines.

    Returns the summary dict written to summary.json. Raises StoreError for a missing, corrupt
    or foreign store and ConfigError for a malformed claim.

    Example (after `landscape train -o runs/quick.h5` and `landscape analyze runs/quick.h5`)::

        summary = build_report(Path("runs/quick.analysis.h5"), Path("reports/quick"))
        summary["quantities"]["distance_l2"]["ratio_overfit_over_normal"]  # about 3
    """
    for claim in claims:  # a typo in a claim fails before any drawing
        check_claim(claim)
    data = load(Path(analysis_path), train_path=train_path)
    out_dir = Path(out_dir)
    folder = out_dir / "figures"
    ensure_folder(folder, what="report")
    _remove_stale_figures(folder)
    with _older_objects_frozen():
        drawn, warnings = draw_all(data, folder)
    data.warnings += warnings
    summary = build_summary(data, report_dir=out_dir)
    summary["commands"].update(commands or {})
    summary["figures"] = [f.name for f in drawn]
    summary["claims"] = evaluate_claims(claims, summary)
    _write(out_dir / "config.toml", config_toml(data.config))
    _write(out_dir / "summary.json", dumps(summary))
    pages = [(f, f.path.read_bytes()) for f in drawn]
    _write(out_dir / "report.html", render(summary, pages))
    return summary


@contextlib.contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """Full garbage collections while drawing skip the objects that existed before it.

    Drawing makes millions of small matplotlib objects, which trigger a few full collections;
    each one scanned everything else in the process too (torch, a finished training), a
    twentieth of the report's time. A caller that froze objects itself is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _remove_stale_figures(folder: Path) -> None:
    """A figure from an earlier report that this one does not draw must not linger."""
    for spec in FIGURES:
        remove_output(folder / spec.name, what="figure")


def _write(path: Path, text: str) -> None:
    """Write through a temporary name so a reader never sees half a file."""
    write_text(path, text, what="report file")
