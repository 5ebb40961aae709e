"""The report as one self-contained HTML file: inline CSS, images as data URIs, no script.

Every text is escaped; "://" is written as "&#58;//" so the file holds no URL at all (it reads
the same in a browser). Every number shown comes from the summary dict written beside it.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from landscape.report.draw import FIGURES, SECTIONS, DrawnFigure

CSS = """
:root { --normal: #0072B2; --overfit: #D55E00; --ink: #1b1b1b; --muted: #5b5b5b;
  --line: #d9d9d9; --pass: #e3f4e6; --fail: #fbe3e1; --na: #eeeeee; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; color: var(--ink); margin: 0 auto; max-width: 1180px; padding: 1.2rem 1.6rem 3rem;
  line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.6rem; margin: 0.2rem 0; } h2 { font-size: 1.3rem; margin-top: 2.2rem;
  border-bottom: 2px solid var(--line); padding-bottom: 0.2rem; } h3 { font-size: 1.05rem; }
.sub { color: var(--muted); margin: 0 0 1rem; } code, pre { font-family: ui-monospace,
  "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.85rem; }
pre { background: #f6f6f6; border: 1px solid var(--line); padding: 0.6rem 0.8rem;
  white-space: pre-wrap; overflow-wrap: anywhere; } table.settings td { max-width: 60rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.88rem; }
th, td { border: 1px solid var(--line); padding: 0.3rem 0.55rem; text-align: left;
  vertical-align: top; } th { background: #f3f3f3; } td.num { text-align: right;
  font-variant-numeric: tabular-nums; white-space: nowrap; }
.normal { color: var(--normal); font-weight: 600; } .overfit { color: var(--overfit);
  font-weight: 600; } .small { font-size: 0.8rem; color: var(--muted); }
.status { font-weight: 700; white-space: nowrap; } .pass { background: var(--pass); }
.fail { background: var(--fail); } .na { background: var(--na); }
.warn { border: 2px solid #b8860b; background: #fff8e1; padding: 0.5rem 0.8rem; }
figure { margin: 1rem 0 1.8rem; } figure img { max-width: 100%; height: auto;
  border: 1px solid var(--line); } figcaption { color: var(--muted); font-size: 0.9rem;
  margin-top: 0.3rem; } .missing { border-left: 4px solid #999; background: #f7f7f7;
  padding: 0.4rem 0.8rem; margin: 0.6rem 0; }
nav ul { columns: 3; list-style: none; padding: 0; } nav a { color: var(--normal); }
@media print { body { max-width: none; font-size: 11pt; padding: 0; } nav { display: none; }
  figure, table, .missing { break-inside: avoid; } h2 { break-after: avoid; }
  .pass, .fail, .na, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"""

STATUS_TEXT = {"pass": "✓ PASS", "fail": "✗ FAIL", "not computed": "– NOT COMPUTED"}
STATUS_CLASS = {"pass": "pass", "fail": "fail", "not computed": "na"}


def esc(value: Any) -> str:
    """Escaped text with no URL scheme separator left in the source."""
    return html.escape(str(value)).replace("://", "&#58;//")


def number(value: Any) -> str:
    """4 significant digits, scientific outside [1e-3, 1e5); a dash for a missing value."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return esc(value)
    if isinstance(value, int):
        return str(value)
    if value != 0 and not 1e-3 <= abs(value) < 1e5:
        return f"{value:.3e}"
    return f"{value:.4g}"


def stats(d: Mapping[str, Any] | None) -> str:
    """'mean ± std (n)' over 'min – max', or a dash."""
    if not d or not d.get("n"):
        return "—"
    top = f"{number(d['mean'])} ± {number(d['std'])} <span class=small>(n={d['n']})</span>"
    return f"{top}<br><span class=small>{number(d['min'])} – {number(d['max'])}</span>"


def claims_table(claims: Sequence[Mapping[str, Any]]) -> str:
    if not claims:
        return "<p class=small>No claims were given to check.</p>"
    rows = "".join(
        f"<tr><td>{esc(c['id'])}</td><td>{esc(c['text'])}</td>"
        f"<td><code>{esc(c['metric'])}</code> {esc(c['op'])} {number(c['threshold'])}</td>"
        f"<td class=num>{number(c['value'])}</td>"
        f"<td class='status {STATUS_CLASS[c['status']]}'>{esc(STATUS_TEXT[c['status']])}</td>"
        "</tr>"
        for c in claims
    )
    head = "<tr><th>id</th><th>claim</th><th>test</th><th>value</th><th>result</th></tr>"
    return f"<table class=claims>{head}{rows}</table>"


def headline_table(rows: Sequence[Mapping[str, Any]]) -> str:
    body = "".join(
        f"<tr><td>{esc(r['label'])}<br><span class=small>{esc(r['units'])}; "
        f"<code>{esc(r['source'])}</code></span></td>"
        f"<td class=num>{stats(r['normal'])}</td><td class=num>{stats(r['overfit'])}</td>"
        f"<td class=num>{number(r['ratio_overfit_over_normal'])}</td></tr>"
        for r in rows
    )
    head = (
        "<tr><th>quantity</th><th class=normal>normal</th><th class=overfit>overfit</th>"
        "<th>overfit / normal</th></tr>"
    )
    note = (
        "<p class=small>mean ± sample std (n seeds), then min – max; the ratio is of the means.</p>"
    )
    return f"<table class=headline>{head}{body}</table>{note}"


def measures_table(summary: Mapping[str, Any], dataset: str) -> str:
    """The computed measures on one line; each missing one with the command that computes it."""
    if not summary["measures"]:  # a train store alone: the analysis records which measures exist
        command = esc(summary["commands"]["analyze"])
        return f"<p>No analysis yet: <code>{command}</code> computes every measure.</p>"
    done = [m for m, status in summary["measures"].items() if status == "computed"]
    rows = []
    for name, command in summary["not_computed"].items():
        if name == "prediction" and dataset not in ("ring", "line"):
            command = "(only for the ring and line datasets)"
        rows.append(
            f"<tr><td>{esc(name)}</td><td class='status na'>not computed</td>"
            f"<td><code>{esc(command)}</code></td></tr>"
        )
    for name, keys in summary.get("skipped", {}).items():  # the store lacks what they need
        rows += [
            f"<tr><td>{esc(name)} {esc(key)}</td><td class='status na'>skipped</td>"
            f"<td>{esc(reason)}</td></tr>"
            for key, reason in keys.items()
        ]
    table = ""
    if rows:
        why = ", or why not" if summary.get("skipped") else ""
        head = f"<tr><th>measure</th><th>status</th><th>command that computes it{why}</th></tr>"
        table = f"<table>{head}{''.join(rows)}</table>"
    listed = ", ".join(esc(m) for m in done) or "none"
    return f"<p><b>Computed:</b> {listed}.</p>{table}"


def figure_html(fig: DrawnFigure, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f"<figure id='fig-{esc(fig.name)}'><img alt='{esc(fig.name)}' "
        f"src='data:image/png;base64,{data}'><figcaption><b>{esc(fig.name)}</b>: "
        f"{esc(fig.caption)}</figcaption></figure>"
    )


def missing_html(names: Sequence[str], summary: Mapping[str, Any]) -> str:
    """'not computed' with the command, for each measure of a section that is absent."""
    out = []
    for name in names:
        if summary["measures"].get(name) == "computed":
            continue
        if summary["measures"].get(name) == "skipped":
            reasons = "; ".join(f"{k}: {r}" for k, r in summary["skipped"][name].items())
            out.append(f"<div class=missing><b>{esc(name)}</b>: skipped: {esc(reasons)}</div>")
            continue
        command = summary["not_computed"].get(name)
        how = f": <code>{esc(command)}</code>" if command else "."
        out.append(f"<div class=missing><b>{esc(name)}</b>: not computed{how}</div>")
    return "".join(out)


def section_html(
    section_id: str, summary: Mapping[str, Any], drawn: Sequence[tuple[DrawnFigure, bytes]]
) -> str:
    section = next(s for s in SECTIONS if s.id == section_id)
    figures = [figure_html(f, png) for f, png in drawn if f.section == section_id]
    missing = missing_html(section.measures, summary)
    if section_id == "training" and not figures:
        why = "No completed run with a training history."
        if summary["experiment"].get("imported"):
            why = "Imported points (landscape import) have no training history."
        missing += f"<div class=missing>{why}</div>"
    if section_id == "prediction" and not figures and not _has_prediction(summary):
        return ""  # only ring and line experiments have this section
    return (
        f"<section id='{esc(section.id)}'><h2>{esc(section.title)}</h2>"
        f"<p>{esc(section.intro)}</p>{missing}{''.join(figures)}</section>"
    )


def _has_prediction(summary: Mapping[str, Any]) -> bool:
    return summary["experiment"].get("dataset") in {d for f in FIGURES for d in f.datasets}


def runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    head = (
        "<tr><th>run</th><th>mode</th><th>seed</th><th>status</th><th>steps</th><th>epochs</th>"
        "<th>train acc</th><th>test acc</th><th>corrupt acc</th><th>train loss</th>"
        "<th>test loss</th></tr>"
    )
    rows = []
    for r in runs:
        f = r.get("final") or {}
        cells = [r.get("steps"), r.get("epochs")] + [
            f.get(k) for k in ("train_acc", "test_acc", "corrupt_acc", "train_loss", "test_loss")
        ]
        rows.append(
            f"<tr><td>{esc(r['id'])}</td><td class={esc(r['mode'])}>{esc(r['mode'])}</td>"
            f"<td class=num>{esc(r['seed'])}</td><td>{esc(r['status'])}</td>"
            + "".join(f"<td class=num>{number(c)}</td>" for c in cells)
            + "</tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def experiment_html(summary: Mapping[str, Any]) -> str:
    exp = summary["experiment"]
    keys = (
        "dataset_title",
        "dataset_fingerprint",
        "model",
        "widths",
        "init",
        "optimizer",
        "lr",
        "batch_size",
        "weight_decay",
        "epochs",
        "steps",
        "runs_per_mode",
        "n_params",
        "n_train",
        "n_test",
        "task",
        "loss",
    )
    cells = [f"<th>{esc(k)}</th><td>{esc(exp.get(k))}</td>" for k in keys]
    rows = "".join(f"<tr>{''.join(cells[i : i + 3])}</tr>" for i in range(0, len(cells), 3))
    analysis = {"analyze": exp.get("analysis_config") or {}}
    return (
        f"<table>{rows}</table><h3>Training config</h3>{settings_table(exp.get('config', {}))}"
        f"<h3>Analysis settings</h3>{settings_table(analysis)}"
        f"<h3>Versions</h3>{settings_table(summary['versions'])}"
    )


def settings_table(sections: Mapping[str, Any]) -> str:
    """One row per section, its settings as `key = value` (JSON values) on one line each."""
    rows = []
    for name, values in sections.items():
        if isinstance(values, Mapping):
            text = "; ".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
        else:
            text = json.dumps(values)
        rows.append(f"<tr><th>{esc(name)}</th><td><code>{esc(text)}</code></td></tr>")
    return f"<table class=settings>{''.join(rows)}</table>"


def reproduce_html(summary: Mapping[str, Any]) -> str:
    commands = summary["commands"]
    order = ["run", "train", "import", "analyze", "report"]
    keys = [k for k in order if k in commands] + sorted(k for k in commands if k not in order)
    lines = "\n".join(f"# {k}\n{commands[k]}" for k in keys)
    note = "Run from the folder the report was made in (relative paths are relative to it)."
    if "config.toml" in commands.get("train", ""):
        note += (
            " The train command reads <code>config.toml</code>, written beside this page: the "
            "train store's own config."
        )
    return f"<p>{note}</p><pre>{esc(lines)}</pre>"


def render(summary: Mapping[str, Any], drawn: Sequence[tuple[DrawnFigure, bytes]]) -> str:
    """The whole page."""
    exp = summary["experiment"]
    title = " · ".join(
        str(v)
        for v in (
            exp.get("dataset_title") or exp.get("dataset"),
            exp.get("model"),
            exp.get("optimizer"),
        )
        if v
    )
    warnings = "".join(f"<p class=warn>⚠ {esc(w)}</p>" for w in summary["warnings"])
    parts = [(s, section_html(s.id, summary, drawn)) for s in SECTIONS]
    sections = "".join(html for _, html in parts)
    toc = "".join(f"<li><a href='#{s.id}'>{esc(s.title)}</a></li>" for s, html in parts if html)
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>landscape report: {esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>landscape report: {esc(title)}</h1><p class=sub>train store "
        f"<code>{esc(summary['train_store'])}</code>; analysis store "
        f"<code>{esc(summary['analysis_store'])}</code></p></header>{warnings}"
        f"<h2 id=summary>Summary: normal vs overfit</h2>"
        f"<h3>Claims</h3>{claims_table(summary['claims'])}"
        f"<h3>Normal vs overfit, per seed</h3>{headline_table(summary['headline'])}"
        f"<h3>Measures</h3>{measures_table(summary, str(exp.get('dataset')))}"
        f"<nav><h3>Contents</h3><ul>{toc}<li><a href='#runs'>Runs</a></li>"
        "<li><a href='#reproduce'>How to reproduce</a></li></ul></nav>"
        f"{sections}<h2 id=runs>Runs</h2>{runs_table(summary['runs'])}"
        f"<h2 id=experiment>Experiment</h2>{experiment_html(summary)}"
        f"<h2 id=reproduce>How to reproduce</h2>{reproduce_html(summary)}</body></html>\n"
    )
