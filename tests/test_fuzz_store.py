"""Fuzz: a small real store mutated 300+ ways (seeded), then `info`, `report` and `analyze`.

One tiny train store and its analysis (distance, gradient) are made once per module; each case
copies them, damages one file (bit flips, truncations at many offsets, deleted and retyped
objects, bad attributes, huge declared shapes, a FIFO or folder in place of a file, symbolic
links and HDF5 links out of the store, external raw data) and runs the commands in process.
Every outcome must be success, or exit 1 or 2 with an `error:` line and no traceback, within
CASE_LIMIT_S seconds (a hang fails the test instead of blocking CI; see `_invoke`). A success
must also hold the right numbers: after each case every run the reader returns and every result
the analysis store holds (for the cheap measures, whether kept or computed afresh) must equal
the pristine store's, array for array; a reader's StoreError instead is damage found.

`report` runs on every REPORT_EVERY-th case with its figures drawn (PNG encoding skipped, it
cannot see the data) and on the others not at all: drawing costs about a second a case.
LANDSCAPE_FUZZ_SEED and LANDSCAPE_FUZZ_CASES change the seed and the number of cases.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import random
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

from cli.main import main
from landscape.errors import StoreError
from landscape.measures.runner import AnalysisConfig, analyze
from landscape.store.analysis_read import completed, read_result
from landscape.store.train_read import read_run
from landscape.train.experiment import train_experiment
from tests.helpers import tiny_config

SEED = int(os.environ.get("LANDSCAPE_FUZZ_SEED", "15"))
CASES = int(os.environ.get("LANDSCAPE_FUZZ_CASES", "300"))
CASE_LIMIT_S = 30
REPORT_EVERY = 10
CHEAP = ("distance", "gradient")
RUNS = ["normal-000", "normal-001", "overfit-000", "overfit-001"]
# where the damage goes: (weight, file relative to the store folder)
TARGETS = (
    [(12, f"tiny.runs/{r}.h5") for r in RUNS]
    + [(10, "tiny.h5"), (8, "tiny.analysis.h5")]
    + [(3, f"tiny.analysis.d/{m}/{r}.h5") for m in ("distance", "gradient") for r in RUNS]
)


class Hang(BaseException):
    """Raised by SIGALRM in a command that ran past CASE_LIMIT_S (not an Exception: the CLI
    runner must not catch it)."""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """The store, made in `case/` (so the analysis records `case/tiny.h5`, where every case
    runs) and kept in `pristine/`; beside them `outside/` holds a FIFO and a run file."""
    top = tmp_path_factory.mktemp("fuzz")
    case = top / "case"
    train_experiment(tiny_config(), case / "tiny.h5")
    analyze(case / "tiny.h5", case / "tiny.analysis.h5", AnalysisConfig(measures=CHEAP))
    case.rename(top / "pristine")
    (top / "outside").mkdir()
    os.mkfifo(top / "outside" / "fifo")
    shutil.copy(top / "pristine" / "tiny.runs" / "normal-000.h5", top / "outside" / "run.h5")
    return top / "pristine"


def _numbers(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """{what: {array: values}} of every run the reader returns and every result the analysis
    store holds (a StoreError leaves that one out: the damage was found)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    train, analysis = folder / "tiny.h5", folder / "tiny.analysis.h5"
    for run_id in RUNS:
        with contextlib.suppress(StoreError):
            r = read_run(train, run_id)
            out[f"run {run_id}"] = {
                f"{group}/{name}": np.asarray(r[group][name])
                for group in ("init", "final", "checkpoints")
                for name in ("params", "buffers")
            } | {f"history/{k}": np.asarray(v) for k, v in r["history"].items()}
    with contextlib.suppress(StoreError):
        results = completed(analysis)
        for measure, key in results:
            with contextlib.suppress(StoreError):
                arrays = read_result(analysis, measure, key)
                out[f"result {measure}/{key}"] = {
                    n: np.asarray(v) for n, v in arrays.items() if n != "attrs"
                }
    return out


@pytest.fixture(scope="module")
def reference(pristine):
    """The pristine store's numbers (read from a copy in `case/`, where they were written)."""
    folder = pristine.parent / "case"
    shutil.copytree(pristine, folder, symlinks=True)
    try:
        numbers = _numbers(folder)
    finally:
        shutil.rmtree(folder)
    assert len(numbers) == len(RUNS) + 2 * len(RUNS)  # every run, distance and gradient each
    return numbers


def _wrong_numbers(folder: Path, reference: dict) -> list[str]:
    """What the readers returned that differs from the pristine store (nothing: [])."""
    wrong = []
    for what, arrays in _numbers(folder).items():
        want = reference.get(what)
        if want is None:
            wrong.append(f"{what}: not in the pristine store")
            continue
        for name in sorted(set(want) | set(arrays)):
            a, b = arrays.get(name), want.get(name)
            if a is None or b is None or not np.array_equal(a, b, equal_nan=True):
                wrong.append(f"{what}, {name}: differs from the pristine store")
    return wrong


# -- mutations: each damages `path` (inside a case's copy) and returns what it did -----------


def _objects(path: Path, datasets_only: bool = False) -> list[str]:
    found: list[str] = []
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda n, o: (
                found.append(n) if isinstance(o, h5py.Dataset) or not datasets_only else None
            )
        )
    return sorted(found)


def bit_flips(path: Path, rng: random.Random, ctx: dict) -> str:
    data = bytearray(path.read_bytes())
    n = rng.choice([1, 1, 2, 4, 16, 128])
    head = rng.random() < 0.6  # metadata (superblock, headers) sits mostly near the start
    for _ in range(n):
        i = rng.randrange(min(len(data), 4096) if head else len(data))
        data[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return f"{n} bit flip(s){' in the first 4 kB' if head else ''}"


def truncate(path: Path, rng: random.Random, ctx: dict) -> str:
    size = path.stat().st_size
    at = rng.choice([0, 1, 8, 48, 96, 512, 800, 2048, size // 3, size // 2, size - 1])
    at = rng.randrange(size) if rng.random() < 0.4 else min(at, size - 1)
    with open(path, "r+b") as f:
        f.truncate(at)
    return f"truncated at {at} of {size} bytes"


def delete_object(path: Path, rng: random.Random, ctx: dict) -> str:
    name = rng.choice(_objects(path))
    with h5py.File(path, "r+") as f:
        del f[name]
    return f"deleted /{name}"


def retype_object(path: Path, rng: random.Random, ctx: dict) -> str:
    name = rng.choice(_objects(path))
    kind = rng.choice(["text", "ints", "matrix", "scalar", "group", "compound", "bools"])
    values = {
        "text": np.array([b"x", b"yy"], dtype=h5py.string_dtype()),
        "ints": np.arange(3, dtype=np.int8),
        "matrix": np.ones((2, 3, 4)),
        "scalar": np.float64(7.5),
        "compound": np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]),
        "bools": np.array([True, False]),
    }
    with h5py.File(path, "r+") as f:
        del f[name]
        if kind == "group":
            f.create_group(name)
        else:
            f.create_dataset(name, data=values[kind])
    return f"/{name} replaced by {kind}"


ATTR_VALUES = [
    "garbage{",
    "",
    "[" * 3000,
    '{"train": 5}',
    '["../../etc/passwd", "normal-000"]',
    '["normal-000", "a/b-1"]',
    7,
    -5,
    2**62,
    float("nan"),
    np.array([1, 2, 3]),
    np.bytes_(b"\xff\xfe\xfa"),
    np.array([b"a", b"b"]),
    True,
    "diverged",
    "overfit",
]


def bad_attribute(path: Path, rng: random.Random, ctx: dict) -> str:
    objects = ["/", *_objects(path)]
    with h5py.File(path, "r+") as f:
        names = [(o, a) for o in objects for a in f[o].attrs]
        obj, attr = rng.choice(names) if names else ("/", "landscape_kind")
        if rng.random() < 0.25:
            del f[obj].attrs[attr]
            return f"deleted attribute {attr} of {obj}"
        value = rng.choice(ATTR_VALUES)
        f[obj].attrs[attr] = value
    return f"attribute {attr} of {obj} set to {str(value)[:30]!r}"


def huge_shape(path: Path, rng: random.Random, ctx: dict) -> str:
    names = _objects(path, datasets_only=True)
    if not names:
        return bit_flips(path, rng, ctx)
    name = rng.choice(names)
    shape = rng.choice([(2**40,), (4, 2**36), (2**31, 2**20), (2**20,)])
    with h5py.File(path, "r+") as f:
        dtype = f[name].dtype if f[name].dtype.kind in "fiu" else np.float32
        del f[name]
        gzip = rng.random() < 0.5
        f.create_dataset(name, shape=shape, dtype=dtype, chunks=(1,) * len(shape),
                         compression="gzip" if gzip else None)  # fmt: skip
    return f"/{name} declared with shape {shape}{' (gzip)' if gzip else ''}, no data"


def external_raw(path: Path, rng: random.Random, ctx: dict) -> str:
    names = _objects(path, datasets_only=True)
    if not names:
        return bit_flips(path, rng, ctx)
    name = rng.choice(names)
    with h5py.File(path, "r+") as f:
        shape, dtype = f[name].shape or (1,), f[name].dtype
        dtype = dtype if dtype.kind in "fiu" else np.float32
        del f[name]
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        f.create_dataset(name, shape=shape, dtype=dtype, external=[(ctx["fifo"], 0, size)])
    return f"/{name} stored in an outside FIFO (external raw data)"


def h5_link(path: Path, rng: random.Random, ctx: dict) -> str:
    name = rng.choice(_objects(path))
    kind = rng.choice(["fifo", "file", "soft", "self"])
    with h5py.File(path, "r+") as f:
        del f[name]
        if kind == "fifo":
            f[name] = h5py.ExternalLink(ctx["fifo"], "/")
        elif kind == "file":
            f[name] = h5py.ExternalLink(ctx["outside_run"], "/final/params")
        else:
            f[name] = h5py.SoftLink("/" + name if kind == "self" else "/nowhere")
    return f"/{name} replaced by a {kind} link"


def not_a_file(path: Path, rng: random.Random, ctx: dict) -> str:
    kind = rng.choice(["fifo", "folder", "dangling", "outside", "inside", "swap", "empty"])
    others = [p for p in path.parent.glob("*.h5") if p != path]
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "dangling":
        path.symlink_to(path.parent / "nowhere.h5")
    elif kind == "outside":
        path.symlink_to(ctx["outside_run"])
    elif kind == "inside" and others:
        path.symlink_to(others[0].name)
    elif kind == "swap" and others:
        shutil.copy(others[0], path)
    else:
        path.write_bytes(b"")
    return f"file replaced: {kind}"


MUTATIONS = [
    (5, bit_flips),
    (4, truncate),
    (3, delete_object),
    (3, retype_object),
    (4, bad_attribute),
    (2, huge_shape),
    (1, external_raw),
    (2, h5_link),
    (3, not_a_file),
]


def _pick(rng: random.Random, weighted: list) -> object:
    return rng.choices([x for _, x in weighted], weights=[w for w, _ in weighted])[0]


# -- running a command, classified ------------------------------------------------------------


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang()


def _invoke(args: list[str]) -> tuple[str, str, str]:
    """(outcome, detail, output): outcome is success, clean, traceback or hang.

    SIGALRM ends a hang in Python code; a loop inside a C library that holds the GIL (HDF5 on
    a damaged heap once did) cannot be interrupted, so faulthandler's watchdog thread then
    dumps every stack and ends the process: the test fails instead of CI hanging."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_LIMIT_S)
    faulthandler.dump_traceback_later(2 * CASE_LIMIT_S, exit=True)
    try:
        result = CliRunner().invoke(main, args)
    except Hang:
        return "hang", f"no answer within {CASE_LIMIT_S} s", ""
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    out = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback", f"{type(result.exception).__name__}: {result.exception}", out
    if result.exit_code == 0:
        return "success", "", out
    if result.exit_code in (1, 2) and "error:" in out and "Traceback" not in out:
        return "clean", "", out
    return "traceback", f"exit {result.exit_code}: {out[-300:]}", out


def _no_png(self: Figure, fname: object, *args: object, **kwargs: object) -> None:
    Path(str(fname)).write_bytes(b"")  # the figure was drawn; only its encoding is skipped


def test_damaged_stores_give_a_clean_outcome_or_a_clean_error(pristine, reference, monkeypatch):
    monkeypatch.setattr(Figure, "savefig", _no_png)
    rng = random.Random(SEED)
    ctx = {"fifo": str(pristine.parent / "outside" / "fifo"),
           "outside_run": str(pristine.parent / "outside" / "run.h5")}  # fmt: skip
    counts: Counter[str] = Counter()
    failures = []
    started, cpu = time.monotonic(), time.process_time()
    for case in range(CASES):
        folder = pristine.parent / "case"
        shutil.copytree(pristine, folder, symlinks=True)
        target = folder / str(_pick(rng, TARGETS))
        mutation = _pick(rng, MUTATIONS)
        what = f"case {case}: {target.relative_to(folder)}: {mutation(target, rng, ctx)}"  # type: ignore[operator]
        train, out = str(folder / "tiny.h5"), str(folder / "tiny.analysis.h5")
        commands = [["info", *([train] if case % 2 else [out, "--json"])]]
        if case % REPORT_EVERY == 0:
            commands.append(["report", out, "-o", str(folder / "report")])
        commands.append(["analyze", train, "-o", out, "--only", ",".join(CHEAP)])
        noticed = False
        for args in commands:
            outcome, detail, output = _invoke(args)
            noticed |= outcome == "clean" or "damaged" in output
            counts[outcome] += 1
            counts[f"{args[0]} runs"] += 1
            if outcome in ("traceback", "hang"):
                failures.append(f"{what}: `{' '.join(args[:1])}`: {outcome}: {detail}")
        wrong = _wrong_numbers(folder, reference)
        failures += [f"{what}: wrong numbers: {w}" for w in wrong[:3]]
        counts["wrong numbers"] += bool(wrong)
        counts["cases"] += 1
        counts["noticed"] += noticed
        shutil.rmtree(folder)
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    print(
        f"\nfuzz seed {SEED}: {counts['cases']} cases in {seconds:.0f} s ({cpu:.0f} s CPU); "
        f"{counts['info runs']} info, {counts['analyze runs']} analyze, "
        f"{counts['report runs']} report runs: {counts['success']} successes, "
        f"{counts['clean']} clean errors, {counts['traceback']} tracebacks, "
        f"{counts['hang']} hangs, {counts['wrong numbers']} cases with wrong numbers read; "
        f"the damage was said (an error, or a run or result listed as "
        f"damaged) in {counts['noticed']} cases"
    )
    assert not failures, f"{len(failures)} bad outcomes:\n" + "\n".join(failures[:20])
