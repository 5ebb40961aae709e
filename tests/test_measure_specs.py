"""The measure specs: one home per measure, from which the settings and the CLI follow."""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

from cli.main import main
from landscape.errors import ConfigError
from landscape.measures.registry import MEASURES, SPECS, spec
from landscape.measures.runner import AnalysisConfig
from landscape.measures.settings import all_settings
from landscape.pipeline.plan import resolve_plan

SETTINGS = all_settings()


def _other_value(name: str):
    """A valid value different from the default, for each kind of setting."""
    s = SETTINGS[name]
    if s.choices:
        options = [c for c in s.choices if c != s.default]
        return options[:1] if s.kind == "strs" else options[0]
    if s.kind == "int":
        return s.default + 2  # odd stays odd
    if s.kind == "float":
        return s.default * 2 if s.default > 0 else s.default - 1
    return [v * 2 for v in s.default]


def test_the_registry_lists_each_measure_once_with_its_module():
    assert [m.name for m in SPECS] == list(MEASURES)
    assert len(set(MEASURES)) == len(MEASURES)
    for m in SPECS:
        assert spec(m.name) is m
        declared = [a.name for a in m.arrays]
        assert len(set(declared)) == len(declared), m.name


def test_each_setting_has_one_default_in_the_config():
    cfg = AnalysisConfig()
    for name, s in SETTINGS.items():
        assert getattr(cfg, name) == s.default
        assert s.validate(s.default) == s.default


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_setting_is_reachable_by_set_and_shown_by_dry_run(name, tmp_path):
    value = _other_value(name)
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    toml = "[" + ",".join(map(repr, value)) + "]" if isinstance(value, list) else text
    runner = CliRunner()
    by_set = runner.invoke(main, ["analyze", "x.h5", f"--set=analyze.{name}={toml}", "--dry-run"])
    by_flag = runner.invoke(
        main, ["analyze", "x.h5", f"--{name.replace('_', '-')}", text, "--dry-run"]
    )
    assert by_set.exit_code == 0, by_set.output
    assert by_set.output == by_flag.output
    assert by_set.output != runner.invoke(main, ["analyze", "x.h5", "--dry-run"]).output


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("grid", 50),
        ("grid", "abc"),
        ("grid", True),
        ("span", math.nan),
        ("span", math.inf),
        ("span", -1.0),
        ("epsilon", 0.0),
        ("radii", []),
        ("radii", [0.1, math.nan]),
        ("recipes", ["sgd", "nope"]),
        ("seed", -1),
        ("seed", 2**64),
        ("top_k", 0),
        ("bn", "sometimes"),
        ("prediction_resolution", 10**6),
    ],
)
def test_bad_values_are_refused_with_the_value_shown(name, bad):
    with pytest.raises(ConfigError) as e:
        AnalysisConfig.from_values({name: bad})
    assert f"'{name}'" in str(e.value)
    assert f"found {bad!r}" in str(e.value)


def test_a_preset_analyze_value_is_checked_before_anything_trains():
    with pytest.raises(ConfigError, match=r"'grid'.*found 'abc'"):
        resolve_plan(preset="quick", overrides={"analyze": {"grid": "abc"}})
    with pytest.raises(ConfigError, match=r"unknown \[analyze\] key"):
        resolve_plan(preset="quick", overrides={"analyze": {"gird": 21}})


def test_a_key_given_as_flag_and_set_with_other_values_is_refused():
    result = CliRunner().invoke(
        main, ["analyze", "x.h5", "--grid", "21", "--set", "analyze.grid=23", "--dry-run"]
    )
    assert result.exit_code == 2
    assert "given twice" in result.output


@pytest.mark.parametrize("only", [",", " ", "distance,,gradient"])
def test_an_empty_measure_name_in_only_is_an_error_not_all_measures(only):
    result = CliRunner().invoke(main, ["analyze", "x.h5", "--only", only, "--dry-run"])
    assert result.exit_code == 2
    assert "--only" in result.output


def test_list_names_every_measure_and_its_settings():
    out = CliRunner().invoke(main, ["analyze", "x.h5", "--list"]).output
    for m in SPECS:
        assert m.name in out
        for s in m.settings:
            assert s.name in out
