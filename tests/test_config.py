from pathlib import Path

import pytest

from landscape.config import (
    ExperimentConfig,
    from_dict,
    known_keys,
    parse_assignment,
    preset_descriptions,
    preset_names,
    resolve_config,
)
from landscape.errors import ConfigError


def test_presets_ship_and_validate():
    assert {"quick", "merkulov-mnist-mlp"} <= set(preset_names())
    for name in preset_names():
        cfg = resolve_config(preset=name)
        assert isinstance(cfg, ExperimentConfig)
        assert preset_descriptions()[name], f"preset {name} has no description"


def test_quick_preset_matches_the_issue():
    cfg = resolve_config(preset="quick")
    assert cfg.data.name == "digits"
    assert cfg.model.widths == (512,)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.batch_size) == ("adam", 1e-3, 128)
    assert (cfg.train.mode, cfg.train.runs) == ("both", 4)


def test_layers_override_in_order(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text("[optim]\nlr = 0.5\nbatch_size = 7\n")
    cfg = resolve_config(preset="quick", config_file=f, overrides={"optim": {"lr": 0.25}})
    assert cfg.optim.lr == 0.25  # flag beats file
    assert cfg.optim.batch_size == 7  # file beats preset


def test_unknown_key_lists_known_keys():
    with pytest.raises(ConfigError, match=r"known keys in \[optim\].*lr"):
        from_dict({"optim": {"learning_rate": 0.1}})


def test_unknown_section_and_preset():
    with pytest.raises(ConfigError, match=r"known sections"):
        from_dict({"optimizer": {}})
    with pytest.raises(ConfigError, match=r"available: .*quick"):
        resolve_config(preset="nope")


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("optim", {"name": "rmsprop"}, "allowed: adam, adamw, sgd"),
        ("optim", {"lr": 0}, "expected a value > 0"),
        ("optim", {"lr": "fast"}, "expected a finite number"),
        ("train", {"runs": 0}, "expected a value >= 1"),
        ("model", {"widths": [512, "x"]}, "expected an integer"),
        ("optim", {"betas": [0.9]}, "expected 2 values"),
        ("train", {"mode": "weird"}, "allowed: normal, overfit, both"),
    ],
)
def test_bad_values_say_what_is_allowed(section, values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({section: values})


def test_impossible_combinations():
    with pytest.raises(ConfigError, match=r"needs optim.momentum > 0"):
        from_dict({"optim": {"name": "sgd", "nesterov": True}})
    with pytest.raises(ConfigError, match=r"needs image data"):
        from_dict({"data": {"name": "line"}, "model": {"name": "lenet"}})


def test_parse_assignment():
    assert parse_assignment("optim.lr=0.01") == {"optim": {"lr": 0.01}}
    assert parse_assignment("optim.name=sgd") == {"optim": {"name": "sgd"}}
    assert parse_assignment("optim.betas=[0.9, 0.98]") == {"optim": {"betas": [0.9, 0.98]}}
    with pytest.raises(ConfigError, match=r"section.key=value"):
        parse_assignment("lr=0.1")


def test_identity_ignores_run_count_and_json_round_trips():
    a = resolve_config(preset="quick")
    b = resolve_config(preset="quick", overrides={"train": {"runs": 9}})
    assert a.identity() == b.identity()
    assert from_dict(__import__("json").loads(a.to_json())) == a
    assert "optim.lr" in known_keys()


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_resolves_with_its_analysis_and_claims(name):
    from landscape.measures.runner import AnalysisConfig
    from landscape.pipeline.plan import resolve_plan

    plan = resolve_plan(preset=name)
    AnalysisConfig(**plan.analysis)  # every [analyze] key is a real setting
    root = "variants." if plan.sweep else "quantities."  # sweep.json or summary.json
    for claim in plan.claims:
        assert claim["metric"].startswith(root), claim


def test_a_malformed_claim_is_refused_with_the_expected_keys():
    from landscape.pipeline.plan import resolve_plan

    bad = {"claims": [{"id": "x", "text": "t", "metric": "quantities.a", "op": "=="}]}
    with pytest.raises(ConfigError, match="expected keys id, text, metric, op, threshold"):
        resolve_plan(preset="quick", overrides=bad)
    bad["claims"][0] |= {"threshold": 1.0}
    with pytest.raises(ConfigError, match="op '==': allowed >=, <=, >, <"):
        resolve_plan(preset="quick", overrides=bad)
