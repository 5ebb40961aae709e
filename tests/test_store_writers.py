"""Writing stores (issue 15): outputs that cannot be written (defect 5) and two writers on one
store (defect 6) end in a clear message, exit 1 and no temporary file; nothing to do writes
nothing."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from landscape.errors import StoreError
from landscape.store.atomic import atomic_path
from landscape.store.lock import StoreLock, _start_ticks, lock_path
from tests.conftest import REPO
from tests.helpers import TINY_FLAGS


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("writers") / "tiny.h5"
    assert invoke("train", "-o", path, *TINY_FLAGS).exit_code == 0  # as a user would
    return path


@pytest.fixture
def store(pristine, tmp_path):
    shutil.copy(pristine, tmp_path / "tiny.h5")
    shutil.copytree(pristine.with_name("tiny.runs"), tmp_path / "tiny.runs")
    return tmp_path / "tiny.h5"


def invoke(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".lock")]


# -- outputs (defect 5) -----------------------------------------------------------------------


def test_outputs_that_cannot_be_files_or_folders_are_clean_errors(store, tmp_path):
    folder = tmp_path / "a-folder.h5"
    folder.mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    cases = [
        (["train", "-o", folder, *TINY_FLAGS], "it is a folder, expected a file path"),
        (["train", "-o", a_file / "s.h5", *TINY_FLAGS], f"expected a folder at {a_file}, found"),
        (["analyze", store, "-o", a_file / "a.h5", "--only", "distance"], f"folder at {a_file}"),
        (["analyze", store, "-o", store, "--only", "distance"], "that is the train store"),
        (["analyze", store, "-o", a_file, "--only", "distance"], "expected an analysis store or"),
        (["report", store, "-o", a_file], f"expected a folder at {a_file}, found a file"),
    ]
    for args, expected in cases:
        res = invoke(*args)
        assert res.exit_code == 1 and expected in res.output, (args, res.output)
        assert "delete" not in res.output and "remove" not in res.output  # not ours to delete
    assert a_file.read_text() == "mine" and not _temporaries(tmp_path)


def test_a_failed_write_leaves_no_temporary_and_the_old_file(tmp_path):
    target = tmp_path / "out.h5"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target, what="result file") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.h5"]


def test_a_complete_train_does_not_rewrite_the_index(store):
    before = os.stat(store)
    res = invoke("train", "-o", store, *TINY_FLAGS)
    assert res.exit_code == 0 and "nothing to do" in res.output
    after = os.stat(store)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not lock_path(store).exists()


READ_ONLY_SCRIPT = """
import json, sys
from click.testing import CliRunner
from cli.main import main
out = {}
for name, args in json.loads(sys.argv[1]).items():
    res = CliRunner().invoke(main, args)
    out[name] = [res.exit_code, res.output, repr(res.exception)]
print(json.dumps(out))
"""


def _without_root_powers() -> list[str]:
    """A command prefix under which write bits hold: root ignores them unless it drops its
    DAC capabilities (setpriv, util-linux)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


def test_a_read_only_store(pristine, tmp_path):
    top = tmp_path / "ro"
    top.mkdir()
    try:
        shutil.copy(pristine, top / "tiny.h5")
        shutil.copytree(pristine.with_name("tiny.runs"), top / "tiny.runs")
        for p in (top, *top.rglob("*")):
            p.chmod(0o555 if p.is_dir() else 0o444)
        s = str(top / "tiny.h5")
        commands = {
            "train": ["train", "-o", s, *TINY_FLAGS],
            "analyze": ["analyze", s, "--only", "distance"],
            "report": ["report", s, "-o", str(top / "report")],
        }
        command = [*_without_root_powers(), sys.executable, "-c", READ_ONLY_SCRIPT]
        proc = subprocess.run([*command, json.dumps(commands)], capture_output=True, text=True,
                              cwd=REPO, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got["train"][0] == 0 and "nothing to do" in got["train"][1], got["train"]
        for name in ("analyze", "report"):
            code, output, exception = got[name]
            assert code == 1 and "error: cannot write" in output, got[name]
            assert "permission denied" in output and "SystemExit" in exception
        assert not _temporaries(top)
    finally:
        for p in (top, *top.rglob("*")):
            p.chmod(0o755)  # so that pytest can clean up


# -- two writers (defect 6) -------------------------------------------------------------------


def _hold(store: Path, pid: int, host: str | None = None) -> None:
    """A lock file naming process `pid` (on this host unless `host`)."""
    holder = {"pid": pid, "host": host or socket.gethostname(), "started": "2025-01-01T00:00:00",
              "command": "landscape train", "start_ticks": _start_ticks(pid)}  # fmt: skip
    lock_path(store).write_text(json.dumps(holder))


def test_a_second_writer_is_refused_with_the_holders_name(store):
    other = subprocess.Popen(["sleep", "60"])
    try:
        target = store.with_name("new.h5")
        _hold(target, other.pid)
        res = invoke("train", "-o", target, *TINY_FLAGS)
        assert res.exit_code == 1
        assert f"is being written by another landscape process: pid {other.pid} on host" in (
            res.output
        )
        assert "--wait" in res.output and not target.exists()
        _hold(store, 4242, host="some-other-node")
        res = invoke("analyze", store, "--only", "distance", "-o", store.with_name("a.h5"))
        assert res.exit_code == 0  # another store's lock does not matter
        _hold(store.with_name("a.h5"), 4242, host="some-other-node")
        res = invoke("analyze", store, "--only", "gradient", "-o", store.with_name("a.h5"))
        assert res.exit_code == 1 and "host some-other-node cannot be checked" in res.output
        assert f"remove the lock file {store.with_name('a.h5.lock')}" in res.output
    finally:
        other.kill()
        other.wait()


def test_a_lock_left_by_a_dead_process_is_taken_over(store):
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = store.with_name("a.h5")
    _hold(out, dead.pid)
    res = invoke("analyze", store, "-o", out, "--only", "distance")
    assert res.exit_code == 0, res.output
    assert f"took over the lock {lock_path(out)} of pid {dead.pid}" in res.output
    assert not lock_path(out).exists()


def test_wait_waits_for_the_holder_to_finish(store):
    out = store.with_name("a.h5")
    _hold(out, os.getpid())  # alive, on this host: only its release frees the store
    threading.Timer(1.5, lambda: lock_path(out).unlink()).start()
    started = time.monotonic()
    res = invoke("analyze", store, "-o", out, "--only", "distance", "--wait")
    assert res.exit_code == 0, res.output
    assert "waiting for it to finish" in res.output and time.monotonic() - started >= 1.4


def test_one_of_many_concurrent_takers_wins(tmp_path):
    store = tmp_path / "s.h5"
    dead = subprocess.Popen(["true"])
    dead.wait()
    _hold(store, dead.pid)  # stale: every taker tries to break it at once
    won, refused = [], []

    def take() -> None:
        try:
            StoreLock(store, command="test").__enter__()
            won.append(1)
        except StoreError:
            refused.append(1)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(won), len(refused)) == (1, 7)
    assert json.loads(lock_path(store).read_text())["pid"] == os.getpid()
