"""A 2D loss surface: the toolkit's batched evaluator against a per-point loop and loss-landscapes.

The problem: MLP 784-32-10 (25,450 parameters) trained with Adam (lr 1e-3, batch 128, 10
epochs, seed 0) on 2,000 MNIST training images from ../shared/data; when MNIST is absent, or
with `--case digits`, MLP 64-350-10 (26,260 parameters, 20 epochs) on the 1,297 digits training
examples; `--case quick`, the quick preset's MLP 64-512-10 (38,410 parameters, 20 epochs) on
them; `--case lenet`, the toolkit's LeNet (2 epochs) on the 2,000 MNIST images. Every method
computes the loss (and, except loss-landscapes, the accuracy) on those training examples at
every point of an n x n grid (n = 21 and 51) on a plane through the
trained point theta along two random filter-normalized directions. Each run is timed end to
end, direction creation included, one-time training excluded, and every method takes one turn
per repeat (who goes first rotates), so a change in machine load hits all alike. Methods:

- `batched`: the toolkit's path as `landscape analyze` takes it: `random_plane` (filter-normalized,
  biases zeroed), `Objective(FlatModel(copy), x, y, budget_bytes=default_budget(device))`, then
  `surface_2d_rows` over all rows, one row (n points) per `Objective.evaluate` call.
- `batched-plane`: the same evaluator given the whole plane (n * n points) in one call
  (`rows_per_call=n`; the objective chunks it to its memory budget).
- `batched-vmap`, `batched-loop`: `batched` with the evaluator's path forced
  (`Objective(path=...)`): all points of a call in one vmapped forward, or one plain forward
  per point; `batched` takes the library's choice (`objective.stack_path`, printed with the
  problem): on a CPU, `dense` for the MLP cases (`landscape.core.dense`: the fused forward of
  a plain MLP), `loop` for LeNet; `vmap` on CUDA.
- `loop`: the naive way: for each grid point theta + a d1 + b d2 (the same directions and
  coordinates as `batched`), one `torch.func.functional_call` forward over all examples under
  `torch.no_grad`, `loss.item()` and `accuracy.item()`.
- `loop-module`: the same, loading each point into a module copy with `vector_to_parameters`
  and calling the module.
- `loss-landscapes`: the PyPI package (3.0.6), `random_plane(model, Loss(cross_entropy, x, y),
  distance=1, steps=n, normalization='filter', deepcopy_model=True)`, from the benchmark's own
  virtual environment (setup: LOSS_LANDSCAPES_SETUP). Its grid is not ours (it runs from
  -n/2 to n/2 - 1 steps, off-centre, and its directions are drawn uniform in [0, 1)), so its
  row is a timing comparison for the same number of points only; it computes no accuracy.
  On CUDA it runs under `with torch.device(device)`, since it draws its directions on the
  default device.
- `gemm-only` (info): per point only the forward's matrix products x W1^T, h W2^T, ... (no
  bias, activation, loss or point construction): the floor of any per-point method, and how
  much of the peak a matmul of this shape can reach. MLPs only (left out for LeNet).

Columns of the table (one block per grid size):

- `median s`: median over `--repeats` of the seconds for the whole grid (`--clock`: elapsed
  by default); `min s`: the fastest.
- `points/s`: n * n / median seconds (higher is better).
- `GFLOP/s`: forward matmul FLOPs per point (2 * examples * sum of in * out over the Linear
  layers: 101.6 MFLOP for the MNIST MLP; plus 2 * in_channels * kernel area per output number
  of a Conv2d) times n * n, over the median seconds.
- `% peak`: GFLOP/s over the matmul peak measured in the same run: the median over repeats of
  a square float32 matmul (2048 on a CPU, 8192 on CUDA; `--peak-size`) timed three times per
  repeat, 2 m^3 FLOP over its median time.
- `x loop`, `x l-l`: this method's points/s over the loop's and loss-landscapes'.

Then `max rel diff`: max over the grid of |loss_batched - loss_loop| / |loss_loop| (float32 both;
below 1e-6 expected), and the largest accuracy difference.

Goals (issue 4), printed as PASS / MISS at the end: on a CPU, `batched` at least as fast as
`loop` (>= 1.0x) and at >= 70% of the matmul peak; on CUDA, `batched` >= 20x `loop`.
`batched-plane` is judged the same way, for information. Results and what they say:
bench/SURFACE.md.

    .bench/venv/bin/python bench/surface.py            # with loss-landscapes; ~2 min quiet
    python bench/surface.py --quick                    # 21 x 21 only, 1 repeat: smoke test
    .bench/venv/bin/python bench/surface.py --device cuda --json /tmp/surface.json
    python bench/surface.py --threads 1 --clock cpu     # on a CPU shared with other jobs
    python bench/surface.py --case digits --grids 21 --budget-mb 16   # other net, other budget
    python bench/surface.py --case lenet --grids 5 --methods batched,batched-vmap,loop

`--threads` (default: the number of CPUs, os.cpu_count()) sets torch's intra-op threads.
On a CPU shared with other jobs, `--threads 1 --clock cpu` times every method (and the peak)
in this process's CPU seconds, which leave out the time spent waiting for a core: with two
threads, another busy process makes the threads wait for each other at every operation, which
slows a per-point loop of small operations far more than a batched call (see SURFACE.md).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from hessian import train  # the sibling script (bench/ is on sys.path when run)
from torch import nn
from torch.func import functional_call

from landscape.config import DataConfig, ModelConfig
from landscape.core.flat import FlatModel
from landscape.core.layout import Layout
from landscape.core.objective import Objective
from landscape.data import load_dataset
from landscape.errors import LandscapeError
from landscape.measures.directions import random_plane
from landscape.measures.runner import default_budget
from landscape.measures.slices import grid_coordinates, surface_2d_rows
from landscape.models import build_model, init_parameters

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"  # MNIST; absent on a user's machine
LOSS_LANDSCAPES_SETUP = (
    "python3 -m venv --system-site-packages .bench/venv && "
    ".bench/venv/bin/pip install --no-deps loss-landscapes"
)
SPAN = 1.0  # the grid runs from -1 to +1 steps of each direction (Li et al.'s -1:1)
GOAL_CPU_X_LOOP = 1.0
GOAL_CPU_PEAK = 0.70
GOAL_CUDA_X_LOOP = 20.0


@dataclass(frozen=True)
class Case:
    data: DataConfig
    widths: tuple[int, ...]
    epochs: int  # Adam (lr 1e-3, batch 128) epochs from the xavier init, seed 0
    model: str = "mlp"  # mlp | lenet (ModelConfig.name)


# MNIST when the shared data are there, else a digits net of about the same size.
CASES = {
    "mnist": Case(DataConfig(name="mnist", subset=2000), (32,), 10),
    "digits": Case(DataConfig(), (350,), 20),
    "quick": Case(DataConfig(), (512,), 20),  # the quick preset's MLP 64-512-10
    "lenet": Case(DataConfig(name="mnist", subset=2000), (), 2, model="lenet"),
}


@dataclass
class Problem:
    title: str
    model: nn.Module  # trained, on the device; its parameters are theta
    x: torch.Tensor
    y: torch.Tensor
    theta: torch.Tensor  # (P,) float32 on the device
    layout: Layout
    flops_per_point: int  # forward matmul FLOPs over all examples


# --- problem ----------------------------------------------------------------------------------


# `train` (Adam 1e-3, batch 128, seeded shuffles) is hessian.py's: same trained point.


def matmul_flops(model: nn.Module, x: torch.Tensor) -> int:
    """One forward's multiply-add FLOPs over all examples of x: 2 * in * out per example for
    a Linear, 2 * (in_channels * kernel area) per output number for a Conv2d."""
    per_example = 0

    def hook(m: nn.Module, _i: object, out: torch.Tensor) -> None:
        nonlocal per_example
        if isinstance(m, nn.Linear):
            per_example += 2 * m.in_features * m.out_features
        elif isinstance(m, nn.Conv2d):
            area = m.kernel_size[0] * m.kernel_size[1]
            per_example += 2 * out[0].numel() * (m.in_channels // m.groups) * area

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x[:1])
    for h in handles:
        h.remove()
    return per_example * len(x)


def load_problem(case: Case, data_dir: Path, device: torch.device) -> Problem:
    ds = load_dataset(case.data, data_dir=data_dir, offline=True)
    x, y = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    cfg = ModelConfig(name=case.model, widths=case.widths)
    model = build_model(cfg, input_shape=ds.input_shape, n_outputs=ds.n_outputs)
    init_parameters(model, cfg, generator=torch.Generator().manual_seed(0))
    train(model, x, y, case.epochs)  # on the CPU: the same trained point on any device
    model = model.to(device).eval()
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    sizes = "-".join(str(s) for s in (x[0].numel(), *case.widths, ds.n_outputs))
    net = f"MLP {sizes}" if case.model == "mlp" else case.model.capitalize().replace("net", "Net")
    title = f"{net} ({len(theta):,} params), {ds.title} ({len(x):,} train), "
    return Problem(
        title + f"Adam {case.epochs} epochs",
        model,
        x.to(device),
        y.to(device),
        theta,
        Layout.of_parameters(model),
        matmul_flops(model, x.to(device)),
    )


def first_available(data_dir: Path, device: torch.device, case: str = "auto") -> Problem:
    """`case` 'mnist' or 'digits'; 'auto': MNIST when its files are there, else digits."""
    if case != "auto":
        return load_problem(CASES[case], data_dir, device)
    try:
        return load_problem(CASES["mnist"], data_dir, device)
    except LandscapeError as e:
        print(f"  (mnist unavailable: {e}; using the digits net)", flush=True)
    return load_problem(CASES["digits"], data_dir, device)


# --- the methods ------------------------------------------------------------------------------


@dataclass
class Grid:
    loss: torch.Tensor  # (n, n) float64 on the CPU
    acc: torch.Tensor | None  # (n, n), None where the method computes no accuracy


Method = Callable[[Problem, int, int], Grid]


def directions(p: Problem, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The plane of every method but loss-landscapes: filter-normalized, biases zeroed."""
    return random_plane(p.theta, p.layout, generator=torch.Generator().manual_seed(seed))


def run_batched(p: Problem, n: int, seed: int, rows_per_call: int = 1, path: str = "auto") -> Grid:
    """surface_2d_rows on an Objective with analyze's default budget (as `_plane` does);
    `path` as `Objective`'s: auto (the library's choice), vmap, loop or dense."""
    template = copy.deepcopy(p.model)  # FlatModel freezes its template
    objective = Objective(
        FlatModel(template),
        p.x,
        p.y,
        loss="cross_entropy",
        classification=True,
        budget_bytes=BUDGET_BYTES or default_budget(p.x.device),
        path=path,
    )
    d1, d2 = directions(p, seed)
    coords = grid_coordinates(n, SPAN)
    rows = surface_2d_rows(
        objective, p.theta, d1, d2, coords, coords, range(n), rows_per_call=rows_per_call
    )
    loss, acc = torch.empty(n, n, dtype=torch.float64), torch.empty(n, n, dtype=torch.float64)
    for i, loss_row, acc_row in rows:
        loss[i], acc[i] = loss_row.cpu(), acc_row.cpu()
    return Grid(loss, acc)


def library_path(p: Problem) -> str:
    """The path `Objective` picks for this problem (`objective.stack_path`): vmap, loop or dense."""
    model = FlatModel(copy.deepcopy(p.model))
    return Objective(model, p.x, p.y, loss="cross_entropy", classification=True).path


def run_batched_plane(p: Problem, n: int, seed: int) -> Grid:
    return run_batched(p, n, seed, rows_per_call=n)


def run_batched_vmap(p: Problem, n: int, seed: int) -> Grid:
    return run_batched(p, n, seed, path="vmap")


def run_batched_loop(p: Problem, n: int, seed: int) -> Grid:
    return run_batched(p, n, seed, path="loop")


def run_loop(p: Problem, n: int, seed: int) -> Grid:
    """One functional_call forward per grid point, loss.item() and accuracy.item()."""
    names = [name for name, _ in p.model.named_parameters()]
    shapes = [q.shape for q in p.model.parameters()]
    sizes = [s.numel() for s in shapes]
    d1, d2 = directions(p, seed)
    coords = grid_coordinates(n, SPAN).tolist()
    loss, acc = torch.empty(n, n, dtype=torch.float64), torch.empty(n, n, dtype=torch.float64)
    with torch.no_grad():
        for i, a in enumerate(coords):
            for j, b in enumerate(coords):
                theta = p.theta + a * d1 + b * d2
                params = {
                    k: t.view(s) for k, t, s in zip(names, theta.split(sizes), shapes, strict=True)
                }
                out = functional_call(p.model, params, (p.x,))
                loss[i, j] = nn.functional.cross_entropy(out, p.y).item()
                acc[i, j] = (out.argmax(dim=1) == p.y).float().mean().item()
    return Grid(loss, acc)


def run_loop_module(p: Problem, n: int, seed: int) -> Grid:
    """Each point loaded into a module copy with vector_to_parameters, then model(x)."""
    model = copy.deepcopy(p.model)
    d1, d2 = directions(p, seed)
    coords = grid_coordinates(n, SPAN).tolist()
    loss, acc = torch.empty(n, n, dtype=torch.float64), torch.empty(n, n, dtype=torch.float64)
    with torch.no_grad():
        for i, a in enumerate(coords):
            for j, b in enumerate(coords):
                nn.utils.vector_to_parameters(p.theta + a * d1 + b * d2, model.parameters())
                out = model(p.x)
                loss[i, j] = nn.functional.cross_entropy(out, p.y).item()
                acc[i, j] = (out.argmax(dim=1) == p.y).float().mean().item()
    return Grid(loss, acc)


def loss_landscapes_module() -> ModuleType | None:
    try:
        return importlib.import_module("loss_landscapes")
    except ImportError:
        return None


def run_loss_landscapes(p: Problem, n: int, seed: int) -> Grid:
    """loss_landscapes.random_plane with filter normalization: n x n points, its own grid."""
    ll = loss_landscapes_module()
    assert ll is not None  # only listed when importable
    metrics = importlib.import_module("loss_landscapes.metrics")
    torch.manual_seed(seed)  # it draws its directions from the global RNG
    metric = metrics.Loss(nn.functional.cross_entropy, p.x, p.y)
    with torch.device(p.x.device):  # its torch.rand directions land on the default device
        values = ll.random_plane(
            p.model, metric, distance=1, steps=n, normalization="filter", deepcopy_model=True
        )
    return Grid(torch.as_tensor(values, dtype=torch.float64), None)


def run_gemm_only(p: Problem, n: int, seed: int) -> Grid:
    """Only the forward's matmuls, per point: x W1^T, relu-free h W2^T, ... (a floor)."""
    weights = [m.weight for m in p.model.modules() if isinstance(m, nn.Linear)]
    x = p.x.flatten(start_dim=1)
    with torch.no_grad():
        for _ in range(n * n):
            h = x
            for w in weights:
                h = h @ w.T
            h[0, 0].item()  # one sync per point, like the loop's .item()
    return Grid(torch.zeros(n, n, dtype=torch.float64), None)


METHODS: dict[str, Method] = {
    "batched": run_batched,
    "batched-plane": run_batched_plane,
    "batched-vmap": run_batched_vmap,
    "batched-loop": run_batched_loop,
    "loop": run_loop,
    "loop-module": run_loop_module,
    "loss-landscapes": run_loss_landscapes,
    "gemm-only": run_gemm_only,
}
JUDGED = ("batched", "batched-plane")


# --- timing -----------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]  # set from --clock in main
BUDGET_BYTES: int | None = None  # set from --budget-mb in main; None: analyze's default


def clock_name() -> str:
    return next(name for name, fn in CLOCKS.items() if fn is clock)


def timed(fn: Callable[[], Grid], device: torch.device) -> tuple[float, Grid]:
    sync(device)
    t0 = clock()
    out = fn()
    sync(device)
    return clock() - t0, out


def matmul_rate(size: int, device: torch.device, tries: int = 3) -> float:
    """FLOP/s of a (size x size) @ (size x size) float32 matmul: 2 size^3 over the median of
    `tries` timed products (one untimed first)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device)
    b = torch.randn(size, size, generator=gen).to(device)
    (a @ b).sum().item()
    times = []
    for _ in range(tries):
        sync(device)
        t0 = clock()
        c = a @ b
        sync(device)
        times.append(clock() - t0)
        del c
    return 2 * size**3 / statistics.median(times)


@dataclass
class Row:
    n: int
    method: str
    median_s: float
    min_s: float
    points_per_s: float
    gflops: float
    frac_peak: float
    x_loop: float | None
    x_loss_landscapes: float | None


def measure(
    p: Problem, n: int, methods: list[str], repeats: int, peak_size: int
) -> tuple[list[Row], dict]:
    device = p.x.device
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    grids: dict[str, Grid] = {}
    peaks: list[float] = []
    for r in range(repeats):
        peaks.append(matmul_rate(peak_size, device))
        # Methods take turns and who goes first rotates: a method runs faster right after one
        # of its own kind (allocator, caches), which would favour a fixed order.
        for m in methods[r % len(methods) :] + methods[: r % len(methods)]:
            t, grid = timed(lambda m=m, r=r: METHODS[m](p, n, r), device)
            seconds[m].append(t)
            if r == 0:
                grids[m] = grid
    peak = statistics.median(peaks)
    points = n * n
    med = {m: statistics.median(seconds[m]) for m in methods}
    rows = []
    for m in methods:
        rate = points / med[m]
        rows.append(
            Row(
                n,
                m,
                med[m],
                min(seconds[m]),
                rate,
                p.flops_per_point * rate / 1e9,
                p.flops_per_point * rate / peak,
                med["loop"] / med[m] if "loop" in med else None,
                med["loss-landscapes"] / med[m] if "loss-landscapes" in med else None,
            )
        )
    checks = {"peak_gflops": peak / 1e9, "peak_gflops_max": max(peaks) / 1e9}
    ref = grids["loop"]
    for m in ("batched", "batched-plane", "batched-vmap", "batched-loop", "loop-module"):
        if m in grids:
            g = grids[m]
            rel = ((g.loss - ref.loss).abs() / ref.loss.abs()).max()
            checks[f"{m}_max_rel_diff"] = float(rel)
            assert g.acc is not None and ref.acc is not None
            checks[f"{m}_max_acc_diff"] = float((g.acc - ref.acc).abs().max())
    c = n // 2
    checks["centre_loss"] = float(ref.loss[c, c])
    checks["loss_range"] = [float(ref.loss.min()), float(ref.loss.max())]
    return rows, checks


def print_block(n: int, rows: list[Row], checks: dict, repeats: int) -> None:
    print(
        f"\n{n} x {n} grid ({n * n:,} points), median of {repeats} ({clock_name()} seconds); "
        "matmul peak "
        f"{checks['peak_gflops']:.1f} GFLOP/s (best {checks['peak_gflops_max']:.1f}); "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  {'method':<16} {'median s':>9} {'min s':>8} {'points/s':>9} {'GFLOP/s':>8} "
        f"{'% peak':>7} {'x loop':>7} {'x l-l':>7}"
    )
    for r in rows:
        x_loop = f"{r.x_loop:.2f}x" if r.x_loop is not None else "-"
        x_ll = f"{r.x_loss_landscapes:.2f}x" if r.x_loss_landscapes is not None else "-"
        print(
            f"  {r.method:<16} {r.median_s:>9.3f} {r.min_s:>8.3f} {r.points_per_s:>9.0f} "
            f"{r.gflops:>8.1f} {100 * r.frac_peak:>6.1f}% {x_loop:>7} {x_ll:>7}"
        )
    for m in ("batched", "batched-plane", "batched-vmap", "batched-loop", "loop-module"):
        if f"{m}_max_rel_diff" in checks:
            print(
                f"  {m} vs loop: max rel diff of loss {checks[f'{m}_max_rel_diff']:.1e}, "
                f"max accuracy diff {checks[f'{m}_max_acc_diff']:.1e}"
            )
    lo, hi = checks["loss_range"]
    print(f"  loss at theta {checks['centre_loss']:.4f}, on the grid {lo:.4f} .. {hi:.4f}")


def goals(rows: list[Row], device: torch.device) -> list[str]:
    lines = []
    for m in JUDGED:
        for r in (r for r in rows if r.method == m):
            where = f"{r.n}x{r.n}"
            if device.type == "cuda":
                ok = r.x_loop is not None and r.x_loop >= GOAL_CUDA_X_LOOP
                lines.append(
                    f"{'PASS' if ok else 'MISS':<5} {m} {where}: >= {GOAL_CUDA_X_LOOP:g}x loop "
                    f"on CUDA: {r.x_loop:.2f}x"
                )
                continue
            ok = r.x_loop is not None and r.x_loop >= GOAL_CPU_X_LOOP
            lines.append(
                f"{'PASS' if ok else 'MISS':<5} {m} {where}: >= {GOAL_CPU_X_LOOP:g}x loop on a "
                f"CPU: {r.x_loop:.2f}x"
            )
            ok = r.frac_peak >= GOAL_CPU_PEAK
            lines.append(
                f"{'PASS' if ok else 'MISS':<5} {m} {where}: >= {100 * GOAL_CPU_PEAK:.0f}% of the "
                f"matmul peak: {100 * r.frac_peak:.1f}% ({r.gflops:.1f} GFLOP/s)"
            )
    return lines


# --- driver -----------------------------------------------------------------------------------


def environment(device: torch.device) -> dict:
    ll = loss_landscapes_module()
    version = None
    if ll is not None:
        from importlib.metadata import version as dist_version

        version = dist_version("loss-landscapes")
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "loss_landscapes": version,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--grids", default="21,51", help="comma list of odd grid sizes n (n x n)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per method (median)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="wall: elapsed seconds; cpu: this process's CPU seconds (with --threads 1 on a "
        "shared CPU: time waiting for a core is not counted)",
    )
    ap.add_argument(
        "--budget-mb",
        type=float,
        help="the batched evaluator's activation budget in MiB (default: landscape.measures.runner."
        "default_budget: a tenth of RAM up to 2 GiB on a CPU, half the free memory on CUDA)",
    )
    ap.add_argument("--peak-size", type=int, help="matmul size for the peak (2048 CPU, 8192 CUDA)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma list of methods")
    ap.add_argument(
        "--case",
        choices=("auto", *CASES),
        default="auto",
        help="mnist: MLP 784-32-10; digits: MLP 64-350-10; auto: mnist when its files are there",
    )
    ap.add_argument("--data-dir", type=Path, default=SHARED_DATA, help="where MNIST is looked for")
    ap.add_argument("--quick", action="store_true", help="21 x 21 only, 1 repeat: a smoke test")
    ap.add_argument("--json", type=Path, help="also write the results here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: this torch build sees no CUDA device; use --device cpu or auto")
        return 2
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    grids = [21] if args.quick else [int(n) for n in args.grids.split(",")]
    repeats = 1 if args.quick else args.repeats
    peak_size = args.peak_size or (8192 if cuda else 2048)
    if args.clock == "cpu" and (cuda or args.threads != 1):
        print("--clock cpu: only meaningful with --threads 1 on a CPU (it sums all threads)")
        return 2
    global clock, BUDGET_BYTES
    clock = CLOCKS[args.clock]
    BUDGET_BYTES = None if args.budget_mb is None else int(args.budget_mb * 2**20)
    env = environment(device)
    env["clock"] = args.clock
    env["budget_bytes"] = BUDGET_BYTES or default_budget(device)
    print("environment:", json.dumps(env), flush=True)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "loop" not in methods:
        print(f"--methods: unknown {unknown} or no 'loop'; known: {', '.join(METHODS)}")
        return 2
    if env["loss_landscapes"] is None and "loss-landscapes" in methods:
        methods.remove("loss-landscapes")
        print(
            f"loss-landscapes: skipped, not importable; to include it: {LOSS_LANDSCAPES_SETUP}, "
            "then run this script with .bench/venv/bin/python"
        )
    t_start = time.perf_counter()
    p = first_available(args.data_dir, device, args.case)
    if "gemm-only" in methods and any(isinstance(m, nn.Conv2d) for m in p.model.modules()):
        methods.remove("gemm-only")  # it chains the Linear layers' matmuls: MLPs only
    print(f"problem: {p.title}; {p.flops_per_point / 1e6:.1f} MFLOP of matmuls/convs per point")
    print(f"batched takes the library's path: {library_path(p)}")
    print(f"trained in {time.perf_counter() - t_start:.1f} s; warming up", flush=True)
    for m in methods:  # untimed: first torch.func / vmap calls pay one-time costs
        METHODS[m](p, 3, 0)
    result: dict = {"environment": env, "problem": p.title, "rows": [], "checks": {}}
    rows: list[Row] = []
    for n in grids:
        block, checks = measure(p, n, methods, repeats, peak_size)
        print_block(n, block, checks, repeats)
        rows += block
        result["checks"][str(n)] = checks
    result["rows"] = [vars(r) for r in rows]
    result["goals"] = goals(rows, device)
    print("\n" + "\n".join(result["goals"]))
    load = os.getloadavg()[0]
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s, load average now {load:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
