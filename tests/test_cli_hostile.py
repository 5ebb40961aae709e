"""Bad values a user can type: each a clear message and exit 2, never a traceback or a hang,
and nothing trained or written (issue 15, defects 3, 4 and 7)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main

BAD_TRAIN = [
    (["--seed", "-1"], "'train.seed': expected a value >= 0, found -1"),
    (["--seed", str(2**64)], "'train.seed': expected a value <= "),
    (["--lr", "nan"], "'optim.lr': expected a finite number, found nan"),
    (["--lr", "inf"], "'optim.lr': expected a finite number, found inf"),
    (["--set", "optim.lr=1e400"], "'optim.lr': expected a finite number, found inf"),
    (["--weight-decay", "nan"], "'optim.weight_decay': expected a finite number"),
    (["--set", "optim.betas=[nan,0.9]"], "'optim.betas': expected a finite number, found nan"),
    (["--set", "optim.betas=[0.9,1.0]"], "'optim.betas': expected a value <= 0.999999"),
    (["--set", "optim.momentum=inf"], "'optim.momentum': expected a finite number"),
    (["--runs", "100000000"], "'train.runs': expected a value <= 1,000,000"),
    (["--widths", "100000000"], "'model.widths': expected a value <= 1,048,576"),
    (["--set", "train.checkpoints=1000000000"], "'train.checkpoints': expected a value <="),
    (["--set", "data.ring_resolution=100000"], "'data.ring_resolution': expected a value <="),
    (["--set", "data.modulus=100000"], "'data.modulus': expected a value <= 400"),
    (["--epochs", "5", "--steps", "10"], "train.epochs = 5 and train.steps = 10 both given"),
    (["--epochs", "5", "--set", "train.steps=10"], "both given (steps would win)"),
    (["--steps", "10", "--set", "train.epochs=5"], "both given (steps would win)"),
    (["--lr", "0.1", "--set", "optim.lr=0.2"], "--lr 0.1 and --set optim.lr=0.2 disagree"),
    (["--set", "train.lr=0.1"], "unknown config key 'train.lr'; known keys in [train]"),
]


def _invoke(args):
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


@pytest.mark.parametrize(("args", "message"), BAD_TRAIN)
def test_bad_train_values_are_refused_with_the_value_shown(tmp_path, args, message):
    result = _invoke(["train", "-o", str(tmp_path / "s.h5"), "--dry-run", *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "s.h5").exists()


def test_agreeing_flag_and_set_are_fine(tmp_path):
    args = ["train", "-o", str(tmp_path / "s.h5"), "--dry-run", "--lr", "0.1"]
    assert _invoke([*args, "--set", "optim.lr=0.1"]).exit_code == 0


def test_epochs_alone_clear_a_presets_steps(tmp_path):
    result = _invoke(["train", "-p", "grokking-small", "-o", str(tmp_path / "s.h5"),
                      "--dry-run", "--epochs", "3"])  # fmt: skip
    assert result.exit_code == 0 and '"steps": 0' in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "is a folder; give -c a .toml file"),
        (b"\xff\xfe[train]\nepochs = 3\n", "not UTF-8 text (byte 0 is b'\\xff')"),
        (b"[train\nepochs = 3\n", "not valid TOML"),
        (b"[train]\nepochs = nan\n", "'train.epochs': expected an integer, found nan"),
        (b"[optim]\nlr = inf\n", "'optim.lr': expected a finite number, found inf"),
    ],
)
def test_bad_config_files_are_named_with_the_problem(tmp_path, content, message):
    path = tmp_path / "c.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    result = _invoke(["train", "-o", str(tmp_path / "s.h5"), "-c", str(path), "--dry-run"])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_network_too_large_for_memory_is_refused_before_anything_is_written(tmp_path):
    store = tmp_path / "s.h5"
    result = _invoke(["train", "-o", str(store), "--widths", "1000000,1000000", "--runs", "2"])
    assert result.exit_code == 2
    assert "1,000,076,000,010 parameters per run x 2 runs" in result.output
    assert "use smaller model.widths" in result.output
    assert not store.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "1000001"], "'grid': expected at most 4,001"),
        (["--seed", "-5"], "'seed': expected an integer in [0, 2**63), found -5"),
        (["--span", "nan"], "'span': expected a number > 0, found nan"),
        (["--only", ","], "--only ',': expected measure names"),
        (["--set", "analyze.grid=abc"], "found 'abc'"),
    ],
)
def test_bad_analysis_values_are_refused(tmp_path, args, message):
    result = _invoke(["analyze", str(tmp_path / "none.h5"), "--dry-run", *args])
    assert result.exit_code == 2 and message in result.output, result.output
