"""`landscape report`: numbers equal the store's, figures decode and repeat byte for byte, the
page is self-contained, missing measures say how to compute them, claims are judged."""

from __future__ import annotations

import ast
import base64
import copy
import dataclasses
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from landscape.errors import ConfigError, StoreError
from landscape.measures.runner import AnalysisConfig, analyze
from landscape.store.analysis_store import read_result
from landscape.store.summary import summarize
from landscape.store.train_store import store_info
from landscape.train.experiment import train_experiment
from tests.helpers import tiny_config

pytest.importorskip("matplotlib", reason="the report needs matplotlib (a dependency)")
PIL = pytest.importorskip("PIL.Image")

from landscape.measures.runner import measure_names  # noqa: E402
from landscape.report import build_report, load  # noqa: E402
from landscape.report.draw import draw_all  # noqa: E402
from landscape.report.figures import plot_curves, plot_distributions  # noqa: E402
from landscape.report.style import new_figure  # noqa: E402
from landscape.report.summary_json import strict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MISSING = "epsilon_sharpness"  # left out of the analysis: must show as "not computed"
TINY = AnalysisConfig(
    measures=tuple(m for m in measure_names() if m not in (MISSING, "prediction")),
    grid=5,
    line_points=5,
    directions=2,
    alpha_points=5,
    top_k=2,
    trace_samples=4,
    radii=(0.1, 0.5),
    recipes=("sgd",),
)
CLAIMS = [
    {
        "id": "farther",
        "text": "overfit points lie farther from init",
        "op": ">=",
        "metric": "quantities.distance_l2.ratio_overfit_over_normal",
        "threshold": 0.0,
    },
    {
        "id": "closer",
        "text": "an impossible claim",
        "op": "<",
        "metric": "quantities.distance_l2.ratio_overfit_over_normal",
        "threshold": 0.0,
    },
    {
        "id": "eps",
        "text": "sharper",
        "op": ">",
        "metric": "quantities.epsilon_sharpness.ratio_overfit_over_normal",
        "threshold": 1.0,
    },
    {
        "id": "first-run",
        "text": "first run learned",
        "op": ">",
        "metric": "runs.0.final.train_acc",
        "threshold": 0.0,
    },
]
EXPECTED_FIGURES = {
    "training_curves.png",
    "training_epochs.png",
    "distance_per_seed.png",
    "distance_steps.png",
    "gradient_norm.png",
    "interpolation_init_final.png",
    "interpolation_normal_overfit.png",
    "curve_normal_overfit.png",
    "slices_1d.png",
    "surface2d.png",
    "surface2d_3d.png",
    "surface_pca.png",
    "surface_pca_3d.png",
    "hessian.png",
    "trace_estimators.png",
    "spectral_density.png",
    "layer_curvature.png",
    "sharpness.png",
    "curvature_trajectory.png",
    "restart.png",
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    train = folder / "tiny.h5"
    train_experiment(tiny_config(), train)
    analysis = folder / "tiny.analysis.h5"
    analyze(train, analysis, TINY)
    return train, analysis


@pytest.fixture(scope="module")
def report(stores, tmp_path_factory):
    _, analysis = stores
    out = tmp_path_factory.mktemp("out") / "report"
    summary = build_report(analysis, out, claims=CLAIMS)
    return out, summary


def test_the_base_style_is_seaborns_whitegrid():
    """style.py copies seaborn's whitegrid rcParams instead of importing seaborn (slow)."""
    seaborn = pytest.importorskip("seaborn")
    from landscape.report.style import SEABORN_WHITEGRID

    assert dict(seaborn.axes_style("whitegrid")) == SEABORN_WHITEGRID


def test_making_a_report_does_not_import_seaborn():
    code = _STUB + "import landscape.report.draw\nassert 'seaborn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_no_summarized_scalar_reads_an_array_the_report_leaves_unread():
    """The report summarizes the results it read, without the large arrays it skips: a scalar
    reading one of those would silently be "not applicable" in the report alone."""
    from landscape.measures.registry import SPECS
    from landscape.report.data import _SKIPPED_ARRAYS

    assert not {s.array for m in SPECS for s in m.scalars} & _SKIPPED_ARRAYS


def test_summary_numbers_equal_the_store(stores, report):
    train, analysis = stores
    out, summary = report
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    stored = strict(summarize(analysis))
    assert {k: summary["quantities"][k] for k in stored} == stored
    # the rest come from the runs' histories: final values and accuracy crossings
    finals = [r["final"]["test_acc"] for r in summary["runs"] if r["mode"] == "overfit"]
    assert summary["quantities"]["final_test_acc"]["overfit"]["mean"] == pytest.approx(
        sum(finals) / len(finals)
    )
    assert summary["runs"] == strict(store_info(train)["runs"])
    l2 = [read_result(analysis, "distance", f"overfit-{k:03d}")["l2"][-1] for k in range(2)]
    assert summary["quantities"]["distance_l2"]["overfit"]["mean"] == pytest.approx(np.mean(l2))
    row = next(r for r in summary["headline"] if r["quantity"] == "final_test_acc")
    tests = [r["final"]["test_acc"] for r in summary["runs"] if r["mode"] == "normal"]
    assert row["normal"]["mean"] == pytest.approx(np.mean(tests))
    assert summary["restarts"]["sgd"]["test_acc_after"]["n"] == 2
    assert summary["experiment"]["dataset"] == "digits"
    assert summary["train_store"] == str(train.resolve())


def test_summary_json_is_strict_with_stable_keys(report):
    out, summary = report

    def refuse(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    json.loads((out / "summary.json").read_text(), parse_constant=refuse)
    assert {
        "schema",
        "train_store",
        "analysis_store",
        "experiment",
        "runs",
        "headline",
        "quantities",
        "restarts",
        "measures",
        "not_computed",
        "commands",
        "claims",
        "figures",
        "versions",
        "warnings",
    } <= set(summary)
    assert summary["schema"] == 1
    # the measure table lists every registered measure, from the specs the analysis recorded
    assert list(summary["measures"]) == measure_names()
    assert set(summary["commands"]) == {"train", "analyze", "report"}


def test_headline_rows_come_from_the_specs(report):
    from landscape.measures.registry import SPECS

    out, _ = report
    summary = json.loads((out / "summary.json").read_text())
    rows = [r["quantity"] for r in summary["headline"] if not r["quantity"].startswith(
        ("final_", "restart_test_acc."))]  # fmt: skip
    always = [s.quantity for m in SPECS for s in m.scalars if s.headline == "always"]
    assert rows[: len(always)] == always
    by_quantity = {r["quantity"]: r for r in summary["headline"]}
    assert by_quantity["distance_l2"]["source"] == "distance/<run>/l2[-1]"
    assert by_quantity["hessian_top"]["source"] == "hessian/<run>/eigenvalues[0]"
    # init -> final joins a start to a minimum: its row is the largest rise, never a barrier
    rise = by_quantity["init_final_loss_rise"]
    assert "Lucas et al. 2021" in rise["label"] and "barrier" not in rise["label"]
    assert rise["source"] == "interpolation/<init-final.<run>/attrs.rise_train_loss"
    assert not [
        r for r in summary["headline"] if "init" in r["quantity"] and "barrier" in r["label"]
    ]


def test_every_figure_exists_and_decodes(report):
    out, summary = report
    assert set(summary["figures"]) == EXPECTED_FIGURES
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == sorted(EXPECTED_FIGURES)
    for name in summary["figures"]:
        with PIL.open(out / "figures" / name) as im:
            im.verify()


def test_page_is_self_contained(report):
    out, summary = report
    text = (out / "report.html").read_text()
    for banned in ("http://", "https://", 'src="//', "src='//", "<script", "@import"):
        assert banned not in text
    sources = re.findall(r"<img[^>]*\ssrc=['\"]([^'\"]*)['\"]", text)
    assert len(sources) == len(summary["figures"])
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        with PIL.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            im.verify()
    assert "@media print" in text


def test_missing_measures_show_the_command(stores, report):
    train, analysis = stores
    out, summary = report
    assert summary["measures"][MISSING] == "not computed"
    assert summary["measures"]["surface2d"] == "computed"
    command = f"landscape analyze {train.resolve()} -o {analysis} --only {MISSING}"
    assert summary["not_computed"][MISSING] == command
    text = (out / "report.html").read_text()
    assert f"<b>{MISSING}</b>: not computed: <code>{command}</code>" in text


def test_claims_pass_fail_or_not_computed(report):
    out, summary = report
    status = {c["id"]: (c["status"], c["value"]) for c in summary["claims"]}
    ratio = summary["quantities"]["distance_l2"]["ratio_overfit_over_normal"]
    assert status["farther"] == ("pass", ratio)
    assert status["closer"] == ("fail", ratio)
    assert status["eps"] == ("not computed", None)
    assert status["first-run"][0] == "pass"
    text = (out / "report.html").read_text()
    assert text.index("✓ PASS") < text.index("<section")  # the claims come first
    assert "✗ FAIL" in text and "NOT COMPUTED" in text


def test_bad_claims_are_refused_before_drawing(stores, tmp_path):
    _, analysis = stores
    bad = {**CLAIMS[0], "op": "=="}
    with pytest.raises(ConfigError, match=r"op '==' is not allowed; allowed: >=, <=, >, <"):
        build_report(analysis, tmp_path / "r", claims=[bad])
    with pytest.raises(ConfigError, match="missing key"):
        build_report(analysis, tmp_path / "r", claims=[{"id": "x"}])
    assert not (tmp_path / "r").exists()


def test_a_second_build_gives_byte_identical_pngs(stores, report, tmp_path):
    _, analysis = stores
    out, summary = report
    import matplotlib

    before = dict(matplotlib.rcParams)
    again = build_report(
        analysis, tmp_path / "again", claims=CLAIMS, commands={"train": "landscape train -o x.h5"}
    )
    assert dict(matplotlib.rcParams) == before  # the caller's style is untouched
    for name in summary["figures"]:
        a = (out / "figures" / name).read_bytes()
        b = (tmp_path / "again" / "figures" / name).read_bytes()
        assert a == b, name
    assert again["commands"]["train"] == "landscape train -o x.h5"
    assert "landscape train -o x.h5" in (tmp_path / "again" / "report.html").read_text()
    assert again["quantities"] == summary["quantities"]


def test_a_train_store_alone_gives_the_training_figures(stores, tmp_path):
    train, _ = stores
    summary = build_report(train, tmp_path / "t")
    assert summary["figures"] == ["training_curves.png", "training_epochs.png"]
    # without an analysis store the report knows no measures (it never imports them)
    assert summary["measures"] == {}
    assert "No analysis yet" in (tmp_path / "t" / "report.html").read_text()
    assert summary["analysis_store"] is None
    assert not any(k.startswith(("distance", "hessian")) for k in summary["quantities"])
    assert "final_train_acc" in summary["quantities"]  # from the histories alone


def test_unreadable_or_foreign_stores_raise_store_error(stores, tmp_path):
    _, analysis = stores
    garbage = tmp_path / "bad.analysis.h5"
    garbage.write_bytes(b"not an HDF5 file at all")
    with pytest.raises(StoreError, match=r"bad\.analysis\.h5.*HDF5 cannot read.*landscape analyze"):
        build_report(garbage, tmp_path / "r")
    with pytest.raises(StoreError, match="no such file"):
        build_report(tmp_path / "absent.h5", tmp_path / "r")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["landscape_kind"] = "something.else"
    with pytest.raises(StoreError, match=r"found 'something\.else'"):
        build_report(other, tmp_path / "r")
    newer = tmp_path / "newer.analysis.h5"
    shutil.copy(analysis, newer)
    with h5py.File(newer, "r+") as f:
        f.attrs["schema"] = 99
    with pytest.raises(StoreError, match="schema version 99, this landscape reads version 1"):
        build_report(newer, tmp_path / "r")


FORBIDDEN = (  # the stages before the store, and torch: the report reads stores only
    "torch",
    "landscape.core",
    "landscape.data",
    "landscape.models",
    "landscape.train",
    "landscape.measures",
    "landscape.pipeline",
)


def test_report_modules_import_only_the_store_side():
    for path in sorted((REPO / "landscape" / "report").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"


def _imports_torch(code: str) -> bool:
    result = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return result.stdout.strip().endswith("True")


# `landscape` itself stubbed: what importing landscape.report pulls in, on its own
_STUB = (
    "import importlib.util, sys, types\n"
    "spec = importlib.util.find_spec('landscape')\n"
    "pkg = types.ModuleType('landscape'); pkg.__path__ = list(spec.submodule_search_locations)\n"
    "sys.modules['landscape'] = pkg\n"
)


def test_importing_the_report_does_not_import_torch():
    # the package's own __init__ re-exports the trainer eagerly; what matters is that the
    # report's modules need no torch of their own
    assert not _imports_torch(_STUB + "import landscape.report")


def test_browser_renders_the_page(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed: no browser check")
    out, _ = report
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1280,4000",
            (out / "report.html").resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    with PIL.open(shot) as im:
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert pixels.shape[1] == 1280
    assert pixels.std() > 20  # text, tables and figures, not a blank page
    assert (pixels < 100).mean() > 0.005  # some dark ink (text) on the page


def _as_dataset(data, name: str, results: dict, *, keep_runs: bool):
    """The tiny store's data relabelled as another dataset, with only the given results."""
    cfg = data.config
    cfg["data"]["name"] = name
    return dataclasses.replace(
        data,
        train_index={**data.train_index, "config": json.dumps(cfg)},
        results=results,
        run_data=copy.deepcopy(data.run_data) if keep_runs else {},
    )


def _ring_results() -> dict:
    x = y = np.linspace(-1, 1, 16)
    r = np.hypot(*np.meshgrid(x, y))
    target = (np.abs(r - 0.6) > 0.15).astype(float)  # (H, W): a dark ring on white
    steps = np.array([0, 10, 100, 1000])
    out = np.stack([target * min(1.0, s / 500) for s in steps])
    return {
        f"normal-00{i}": {
            "attrs": {"dataset": "ring", "train_size": n},
            "step": steps,
            "output": out,
            "x": x,
            "y": y,
            "target": target,
        }
        for i, n in enumerate((625, 312))
    }


def _line_results() -> dict:
    x = np.linspace(-3, 3, 50)
    tx = np.linspace(-3, 3, 20)
    return {
        "normal-000": {
            "attrs": {"dataset": "line"},
            "step": np.array([0, 100]),
            "output": np.stack([0 * x, 3 + 0.7 * x]),
            "x": x,
            "ols": 3 + 0.7 * x,
            "train_x": tx,
            "train_y": 3 + 0.7 * tx,
        }
    }


def test_dataset_figures_only_for_their_dataset(stores, tmp_path):
    _, analysis = stores
    data = load(analysis)
    cases = [
        ("ring", {"prediction": _ring_results()}, False, ["prediction_ring.png"]),
        ("line", {"prediction": _line_results()}, False, ["prediction_line.png"]),
        ("digits", {"prediction": _ring_results()}, False, []),
    ]
    for name, results, keep_runs, expected in cases:
        variant = _as_dataset(data, name, results, keep_runs=keep_runs)
        drawn, warnings = draw_all(variant, tmp_path / name)
        assert [f.name for f in drawn] == expected and warnings == []
        for f in drawn:
            with PIL.open(f.path) as im:
                im.verify()
    modular = _as_dataset(data, "modular", {}, keep_runs=True)
    for run in modular.run_data.values():  # weight_norm is optional in a history
        run.history["weight_norm"] = np.linspace(3.0, 1.0, len(run.history["step"]))
    drawn, _ = draw_all(modular, tmp_path / "modular")
    assert "grokking.png" in [f.name for f in drawn]


def test_the_prediction_section_is_left_out_for_other_datasets(report):
    out, _ = report
    text = (out / "report.html").read_text()
    assert "id='prediction'" not in text and "href='#prediction'" not in text
    assert "(only for the ring and line datasets)" in text


def test_plot_functions_draw_on_the_axes_given():
    fig, axes = new_figure(6, 3, 1, 2)
    steps = np.array([0, 1, 10, 100, 1000])
    curves = {"normal": (steps, np.array([[0.1, 0.4, 0.8, 0.9, 1.0], [0.2, 0.5, 0.7, 0.9, 1.0]]))}
    assert plot_curves(curves, ax=axes[0, 0], ylabel="accuracy") is fig
    assert plot_distributions({"normal": [1.0, 2.0], "overfit": [3.0]}, ax=axes[0, 1]) is fig
    assert axes[0, 0].get_xscale() == "symlog"  # steps span decades
    assert plot_curves({}).axes  # nothing to draw is still a figure, not an error
    lone = plot_distributions({"normal": np.full(30, 2.0) + np.arange(30)})  # many seeds
    assert lone.axes[0].get_ylabel() == "runs"  # drawn as a histogram


@pytest.mark.parametrize(("low", "skipped"), [(1e-4, True), (0.2, False)])
def test_only_minor_ticks_that_show_nothing_are_skipped(tmp_path, monkeypatch, low, skipped):
    """A log axis over decades labels no minor tick (skipped); within a decade it labels them
    (kept). Either way the PNG is the one drawn with every minor tick."""
    from matplotlib.ticker import NullLocator

    from landscape.report import style

    def figure():
        steps = np.array([0, 1, 10, 100, 1000])  # a symlog x axis: minor ticks never labelled
        return plot_curves({"normal": (steps, np.geomspace(low, 0.9, 5)[None])}, logy=True)

    fig = figure()
    with style.style():
        style._skip_unseen_minor_ticks(fig)
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("symlog", "log")
    assert isinstance(ax.xaxis.get_minor_locator(), NullLocator)
    assert isinstance(ax.yaxis.get_minor_locator(), NullLocator) == skipped
    style.save(fig, tmp_path / "skipped.png")
    monkeypatch.setattr(style, "_skip_unseen_minor_ticks", lambda fig: None)
    style.save(figure(), tmp_path / "all.png")
    assert (tmp_path / "skipped.png").read_bytes() == (tmp_path / "all.png").read_bytes()


def test_drawing_freezes_older_objects_then_unfreezes_but_leaves_a_callers_freeze():
    import gc

    from landscape.report.build import _older_objects_frozen

    assert gc.get_freeze_count() == 0
    with _older_objects_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with _older_objects_frozen():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(("face", "mode"), [("white", "RGB"), ("none", "RGBA")])
def test_save_writes_the_pixels_savefig_writes(tmp_path, face, mode):
    """One draw instead of savefig's two, RGB for an opaque figure: the same pixels."""
    from landscape.report import style

    def figure():
        steps = np.array([0, 1, 10, 100, 1000])
        fig = plot_curves({"normal": (steps, np.geomspace(1e-3, 1.0, 5)[None])}, title="t")
        fig.set_facecolor(face)
        return fig

    with style.style():
        figure().savefig(tmp_path / "savefig.png", dpi=style.DPI)
    style.save(figure(), tmp_path / "save.png")
    with PIL.open(tmp_path / "save.png") as ours, PIL.open(tmp_path / "savefig.png") as theirs:
        assert ours.mode == mode
        assert np.array_equal(np.asarray(ours.convert("RGBA")), np.asarray(theirs.convert("RGBA")))


def test_a_train_store_changed_since_the_analysis_is_flagged(tmp_path):
    from landscape.report.data import _checksum_warnings

    path = tmp_path / "t.h5"
    path.write_bytes(b"trained again")
    warnings = _checksum_warnings(path, {"train_store_sha256": "0" * 64})
    assert len(warnings) == 1 and "changed since the analysis" in warnings[0]
    assert _checksum_warnings(path, {}) == []
