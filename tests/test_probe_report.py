"""Probe results in the analysis store's layout: `landscape report` draws them; the numbers are
`landscape analyze`'s own; the README's example runs as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import landscape as ls
from landscape.errors import ConfigError, StoreError
from landscape.measures.registry import spec
from landscape.measures.runner import AnalysisConfig, analyze, result_seed
from landscape.measures.runs import Experiment
from landscape.store import analysis_store as astore
from landscape.train.experiment import train_experiment
from tests.helpers import tiny_config

pytest.importorskip("matplotlib", reason="the report needs matplotlib (a dependency)")

from cli.main import main

REPO = Path(__file__).resolve().parents[1]


def _probe() -> ls.Probe:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 3))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=g), torch.randint(0, 3, (40,), generator=g)
    return ls.Probe(net, data=(x[:30], y[:30]), test=(x[30:], y[30:]))


def _all_results(probe: ls.Probe) -> list[ls.ProbeResult]:
    other = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 3))
    return [
        probe.hessian(k=2),
        probe.trace(n_samples=4),
        probe.gradient_norm(),
        probe.surface2d(grid=3),
        probe.interpolate(other, alpha_points=5),
        probe.epsilon_sharpness(1e-3),
        probe.restart("sgd", alpha_points=5),
    ]


def test_saved_results_are_an_analysis_store_that_landscape_report_draws(tmp_path):
    store = tmp_path / "mine.analysis.h5"
    results = _all_results(_probe())
    for r in results:
        r.save(store, label="normal-000")  # "normal-*": the report's normal column
        fig = r.plot()
        assert fig.axes
    index = astore.read_index(store)
    recorded = json.loads(index["measures"])
    assert recorded == {r.measure: spec(r.measure).describe() for r in results}
    assert index["source"] == astore.PROBE_SOURCE and not index["train_store"]
    assert json.loads(index["summary"])["hessian_top"]["normal"]["n"] == 1
    with h5py.File(astore.result_file(store, "hessian", "normal-000"), "r") as f:
        assert f["eigenvalues"].attrs["units"] == "loss / parameter^2"
        assert json.loads(f.attrs["parameters"])["top_k"] == 2
    summary = ls.build_report(store, tmp_path / "report")
    drawn = {"hessian.png", "surface2d.png", "gradient_norm.png", "restart.png"}
    assert drawn | {"interpolation_line.png", "sharpness.png"} <= set(summary["figures"])
    assert set(summary["measures"].values()) == {"computed"} and not summary["warnings"]
    top = summary["quantities"]["hessian_top"]["normal"]["mean"]
    assert top == pytest.approx(float(results[0].eigenvalues[0]))
    out = CliRunner().invoke(main, ["report", str(store), "-o", str(tmp_path / "cli")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "cli" / "report.html").is_file()


def test_save_adds_to_a_probe_store_and_refuses_an_analyze_store(tmp_path):
    r = _probe().gradient_norm()
    store = tmp_path / "a.analysis.h5"
    r.save(store, label="one")
    r.save(store, label="two")
    assert astore.completed(store) == [("gradient", "one"), ("gradient", "two")]
    theirs = tmp_path / "theirs.analysis.h5"
    astore.write_index(theirs, attrs={"train_store": "runs/quick.h5"})
    with pytest.raises(StoreError, match="expected a store of probe results"):
        r.save(theirs)
    with pytest.raises(ConfigError, match="expected a label"):
        r.save(store, label="a/b")


def test_probe_gives_the_numbers_landscape_analyze_stores(tmp_path):
    path = tmp_path / "t.h5"
    train_experiment(tiny_config(runs=1, epochs=1, mode="normal"), path)
    out = tmp_path / "t.analysis.h5"
    measures = ("hessian", "trace", "gradient")
    analyze(path, out, AnalysisConfig(measures=measures, top_k=2, trace_samples=5))
    exp, key = Experiment(path), "normal-000"
    model = exp.template()
    model.load_state_dict(exp.layout.unflatten(exp.run(key).final), strict=False)
    ds = exp.dataset
    data = (torch.as_tensor(ds.x_train), torch.as_tensor(ds.y_train))
    probe = ls.Probe(
        model, data=data, test=(torch.as_tensor(ds.x_test), torch.as_tensor(ds.y_test))
    )

    def generator(measure: str) -> torch.Generator:
        return torch.Generator().manual_seed(result_seed(0, measure, key))

    ours = {
        "hessian": probe.hessian(k=2, generator=generator("hessian")),
        "trace": probe.trace(n_samples=5, generator=generator("trace")),
        "gradient": probe.gradient_norm(),
    }
    for measure, r in ours.items():
        stored = astore.read_result(out, measure, key)
        for name in (n for n in r.names if n != "step"):
            theirs = np.atleast_1d(stored[name])
            if measure == "gradient":  # analyze's is at every checkpoint: the last is the final
                theirs = theirs[-1:]
            np.testing.assert_allclose(np.atleast_1d(getattr(r, name)), theirs, rtol=1e-6)


def readme_example() -> str:
    """The python block of the README's "Measure your own model" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Measure your own model", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


def test_the_readme_example_runs_and_its_store_makes_a_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: a second thread only spins on a busy machine
    try:  # about 7 s of CPU time
        exec(compile(readme_example(), "README.md", "exec"), {"__name__": "readme"})
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / "surface.png").is_file()
    out = CliRunner().invoke(main, ["report", "runs/mine.analysis.h5", "-o", "reports/mine"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "reports" / "mine" / "report.html").is_file()
