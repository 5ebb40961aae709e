"""The README's "Checkpoints from elsewhere" example, run line by line, and the numbers it
promises. The files its heredocs write and its python script run here (in-process, in an empty
folder); its `landscape` lines go through the CLI."""

from __future__ import annotations

import json
import re
import runpy
import shlex
import sys

import h5py
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from tests.conftest import REPO


def example_lines() -> list[str]:
    """The section's bash block, continuation lines joined."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Checkpoints from elsewhere", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the README lost its import example"
    return block.group(1).replace("\\\n", " ").splitlines()


def run_example(lines: list[str]) -> None:
    while lines:
        line = lines.pop(0)
        if heredoc := re.fullmatch(r"cat > (\S+) <<'(\w+)'", line):
            end = lines.index(heredoc.group(2))
            with open(heredoc.group(1), "w") as f:
                f.write("\n".join(lines[:end]) + "\n")
            del lines[: end + 1]
        elif line.startswith("python3 "):
            runpy.run_path(line.split()[1], run_name="__main__")
        elif line.startswith("landscape "):
            res = CliRunner().invoke(main, shlex.split(line)[1:])
            assert res.exit_code == 0, f"{line}\n{res.output}"
        elif line.strip():
            raise AssertionError(f"the README example has a line this test cannot run: {line}")


@pytest.fixture
def empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # `from mynets import ...`, as python3 would
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny CNN: one thread beats two on shared cores
    yield tmp_path
    torch.set_num_threads(threads)
    sys.modules.pop("mynets", None)


def test_the_readme_import_example_runs_and_shows_its_numbers(empty_folder):
    run_example(example_lines())
    summary = json.loads((empty_folder / "reports/mine/summary.json").read_text())
    q = summary["quantities"]
    assert q["distance_l2"]["normal"]["mean"] == pytest.approx(7.3, abs=0.5)
    assert q["train_grad_norm"]["normal"]["mean"] == pytest.approx(0.12, abs=0.05)
    assert q["hessian_top"]["normal"]["mean"] == pytest.approx(6.2, abs=1.0)
    assert q["init_final_loss_rise"]["normal"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert summary["commands"]["import"].startswith("landscape import --model mynets:make_cnn")
    with h5py.File("runs/mine.analysis.d/interpolation/init-final.normal-000.h5") as f:
        at_final = list(f["alpha"][()]).index(1.0)
        assert f["test_acc"][at_final] == pytest.approx(0.944, abs=0.01)
        assert f["train_loss"][at_final] == pytest.approx(0.011, abs=0.005)
