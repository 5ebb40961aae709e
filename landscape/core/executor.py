"""Where the work runs: in this process (the default) or on a Dask cluster (optional extra).

A training group and an analysis result are independent tasks that write their own files
(`<store>.runs/<run>.h5`, `<analysis>.d/<measure>/<key>.h5`, each atomically), so a worker
needs only the task's arguments and a filesystem it shares with the caller; the caller alone
rewrites the index as tasks finish. A crash on a worker loses that task only, and running the
same command again does what is missing, as in-process.

Executor specs (`--executor` on the command line):

- `local`: this process, one task after another, with step-level progress (default);
- `dask`: a `distributed.LocalCluster` on this machine (`workers` processes, 1 thread each);
- `tcp://HOST:PORT`: a running Dask scheduler (workers must see the same paths);
- `slurm`: a `dask_jobqueue.SLURMCluster` of `workers` jobs; its settings (queue, cores,
  memory, walltime, ...) come from `cluster_options` and Dask's jobqueue config
  (~/.config/dask/jobqueue.yaml), as dask-jobqueue documents.

Tasks travel to Dask workers with Dask's own serialization between our own processes; no file a
user hands us is ever unpickled.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from landscape.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "dask", "tcp://HOST:PORT", "slurm")
INSTALL = "pip install 'landscape-lab[distributed]' (distributed, and dask-jobqueue for Slurm)"


class Executor(Protocol):
    name: str
    remote: bool  # tasks run in other processes (no step-level progress)

    def map_unordered(
        self, fn: Callable[[T], R], items: Sequence[T]
    ) -> Iterator[tuple[T, R]]: ...  # (item, result) as each task finishes

    def close(self) -> None: ...


class InProcess:
    """Each task in this process, in order."""

    name = "local"
    remote = False

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R]]:
        for item in items:
            yield item, fn(item)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Tasks submitted to a Dask client; a worker's exception is raised here, unchanged."""

    remote = True

    def __init__(self, client: Any, cluster: Any = None, name: str = "dask") -> None:
        self.client, self.cluster, self.name = client, cluster, name

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R]]:
        from distributed import as_completed

        futures = {self.client.submit(fn, item, pure=False): item for item in items}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:  # the caller stopped early (an error): drop the rest
                future.cancel()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(
    spec: str = "local", *, workers: int = 0, cluster_options: dict[str, Any] | None = None
) -> Executor:
    """The executor a spec names (see the module docstring); workers 0 means a default."""
    if spec == "local":
        return InProcess()
    if spec not in ("dask", "slurm") and not spec.startswith(("tcp://", "tls://")):
        raise ConfigError(f"--executor {spec!r}: unknown executor; allowed: {', '.join(EXECUTORS)}")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(f"--executor {spec}: Dask is not installed here; {INSTALL}") from None
    options = dict(cluster_options or {})
    if spec == "dask":
        n = workers or max(1, (os.cpu_count() or 1) // 2)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None, **options)
        return DaskExecutor(Client(cluster), cluster, f"dask (local cluster, {n} workers)")
    if spec == "slurm":
        return _slurm(workers, options)
    try:
        return DaskExecutor(Client(spec, timeout="20s"), None, f"dask scheduler {spec}")
    except OSError as e:
        raise ConfigError(
            f"--executor {spec}: cannot reach a Dask scheduler there ({e}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, or use --executor dask"
        ) from None


def slurm_cluster(options: dict[str, Any]) -> Any:
    """A dask_jobqueue.SLURMCluster (no job submitted yet); `cluster.job_script()` shows it."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ConfigError(f"--executor slurm: dask-jobqueue is not installed; {INSTALL}") from None
    try:
        return SLURMCluster(**options)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"--executor slurm: SLURMCluster refused the cluster options {sorted(options)} "
            f"({e}); see dask-jobqueue's SLURMCluster parameters (cores, memory, queue, ...)"
        ) from None


def _slurm(workers: int, options: dict[str, Any]) -> Executor:
    from distributed import Client

    cluster = slurm_cluster(options)
    jobs = workers or 1
    cluster.scale(jobs=jobs)  # sbatch: the jobs start when Slurm schedules them
    return DaskExecutor(Client(cluster), cluster, f"slurm ({jobs} jobs)")
