"""`landscape run` as one library call: train, analyze and report a plan (or each variant of
its sweep, then the sweep page). Each stage resumes where it stopped.

>>> from landscape.pipeline.plan import resolve_plan
>>> plan = resolve_plan(preset="quick")  # doctest: +SKIP
>>> outcome = run_plan(plan, Path("runs/quick.h5"), Path("reports/quick"))  # doctest: +SKIP
>>> outcome.page  # doctest: +SKIP
PosixPath('reports/quick/report.html')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from landscape.core.events import Event
from landscape.measures.runner import AnalysisConfig, AnalyzeOptions, AnalyzeSummary, analyze
from landscape.train.experiment import train_experiment
from landscape.train.trainer import RuntimeOptions, TrainSummary

if TYPE_CHECKING:
    from landscape.config import ExperimentConfig
    from landscape.core.executor import Executor
    from landscape.pipeline.plan import Plan


@dataclass
class RunOutcome:
    """What `run_plan` did: the report's summary.json (or the sweep's), the page it wrote, and
    each variant's train and analysis summaries (one entry without a sweep)."""

    summary: dict[str, Any]
    page: Path
    trained: list[TrainSummary] = field(default_factory=list)
    analyzed: list[AnalyzeSummary] = field(default_factory=list)

    @property
    def diverged(self) -> list[str]:
        """Runs whose loss became NaN or inf, over every variant."""
        return [r for t in self.trained for r in t.diverged]


def analysis_path(store: Path) -> Path:
    """Where `landscape run` puts a train store's analysis: beside it, `.analysis.h5`."""
    return store.with_name(store.name.removesuffix(".h5") + ".analysis.h5")


def plan_attrs(plan: Plan) -> dict[str, str]:
    """What a train store records of its preset before training: name and claims."""
    return {"preset": plan.name, "claims": plan.claims_json()}


def run_plan(
    plan: Plan,
    store: Path,
    out: Path,
    *,
    options: RuntimeOptions | None = None,
    executor: Executor | None = None,
    on_event: Callable[[Event], None] | None = None,
    commands: dict[str, str] | None = None,
) -> RunOutcome:
    """Train, analyze and report `plan` into `store` (its analysis beside it) and `out`.

    A plan with a sweep runs once per variant, each into `store`'s folder (`store` without
    .h5) and its own report under `out`, then writes `out/sweep.html` across them.
    """
    stages = _Stages(options or RuntimeOptions(), executor, on_event or (lambda e: None))
    if plan.sweep is not None:
        return _run_sweep(plan, store, out, stages, commands or {})
    outcome = RunOutcome({}, out / "report.html")
    outcome.summary = stages.one(plan, plan.experiment, store, out, commands or {}, outcome)
    return outcome


@dataclass(frozen=True)
class _Stages:
    options: RuntimeOptions
    executor: Executor | None
    emit: Callable[[Event], None]

    def one(
        self,
        plan: Plan,
        experiment: ExperimentConfig,
        store: Path,
        out: Path,
        commands: dict[str, str],
        outcome: RunOutcome,
        *,
        claims: bool = True,
    ) -> dict[str, Any]:
        """Train, analyze and report one experiment; its summary.json."""
        from landscape.report import build_report  # matplotlib loads only when reporting

        analysis = analysis_path(store)
        self.emit(Event("note", f"[1/3] train {plan.name}: {plan.description}"))
        attrs = plan_attrs(plan) if claims else {"preset": plan.name, "claims": "[]"}
        trained = train_experiment(experiment, store, options=self.options, on_event=self.emit,
                                   extra_attrs=attrs, executor=self.executor)  # fmt: skip
        outcome.trained.append(trained)
        done_before = f" ({len(trained.skipped)} were already complete)" if trained.skipped else ""
        self.emit(Event("note", f"trained {len(trained.trained)} runs{done_before}"))
        self.emit(Event("note", f"[2/3] analyze into {analysis}"))
        opts = self.options
        analyze_options = AnalyzeOptions(device=opts.device, data_dir=opts.data_dir,
                                         offline=opts.offline, wait=opts.wait)  # fmt: skip
        done = analyze(store, analysis, AnalysisConfig(**plan.analysis), options=analyze_options,
                       on_event=self.emit, executor=self.executor)  # fmt: skip
        outcome.analyzed.append(done)
        self.emit(Event("note", f"computed {len(done.computed)} results "
                                f"({len(done.skipped)} up to date)"))  # fmt: skip
        self.emit(Event("note", f"[3/3] report into {out}"))
        return build_report(analysis, out, claims=plan.claims if claims else (), commands=commands)


def _run_sweep(
    plan: Plan, store: Path, out: Path, stages: _Stages, commands: dict[str, str]
) -> RunOutcome:
    from landscape.data import load_dataset
    from landscape.pipeline.sweep import variants
    from landscape.report.sweep import SweepEntry, build_sweep_report

    assert plan.sweep is not None  # checked by the caller

    def train_size(cfg: ExperimentConfig) -> int:
        o = stages.options
        return len(load_dataset(cfg.data, data_dir=o.data_dir, offline=o.offline).x_train)

    folder, outcome = store.with_suffix(""), RunOutcome({}, out / "sweep.html")
    todo = variants(plan.experiment, plan.sweep, train_size)
    entries = []
    for i, v in enumerate(todo, 1):
        stages.emit(Event("note", f"== variant {i}/{len(todo)}: {v.label} ({v.steps} steps)"))
        v_store, v_out = folder / f"{v.label}.h5", out / v.label
        summary = stages.one(plan, v.experiment, v_store, v_out, {}, outcome, claims=False)
        where = {"analysis_path": analysis_path(v_store), "report_dir": v_out}
        entries.append(SweepEntry(v.label, v.value, v.budget, v.train_size, v.steps,
                                  v.epochs, summary=summary, **where))  # fmt: skip
    outcome.summary = build_sweep_report(entries, out, name=plan.name,
                                         description=plan.description, key=plan.sweep.key,
                                         claims=plan.claims, commands=commands)  # fmt: skip
    return outcome
