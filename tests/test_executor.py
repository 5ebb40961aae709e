"""Executors: the Dask path stores exactly what the in-process path stores."""

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from landscape.core.executor import InProcess, make_executor
from landscape.errors import ConfigError
from tests.helpers import TINY_FLAGS


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_local_is_in_process_and_unknown_specs_are_refused():
    ex = make_executor("local")
    assert isinstance(ex, InProcess)
    assert list(ex.map_unordered(lambda x: x * x, [1, 2, 3])) == [(1, 1), (2, 4), (3, 9)]
    with pytest.raises(ConfigError, match="unknown executor; allowed: local, dask"):
        make_executor("spark")


def test_bad_cluster_option_exits_2_before_any_work(tmp_path):
    res = run("train", "-o", tmp_path / "s.h5", *TINY_FLAGS, "--cluster-option", "queue")
    assert res.exit_code == 2
    assert "--cluster-option 'queue': expected KEY=VALUE" in res.output
    assert not (tmp_path / "s.h5").exists()


def _arrays(path):
    out = {}
    with h5py.File(path) as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else 0)
    return out


def test_dask_training_and_analysis_store_the_same_numbers(tmp_path):
    pytest.importorskip("distributed")
    flags = [*TINY_FLAGS, "--group-size", "1"]  # four groups: two in flight at once
    assert run("train", "-o", tmp_path / "local.h5", *flags).exit_code == 0
    res = run("train", "-o", tmp_path / "dask.h5", *flags, "--executor", "dask", "--workers", 2)
    assert res.exit_code == 0, res.output
    assert "trained 4 runs" in res.output
    for run_id in ("normal-000", "normal-001", "overfit-000", "overfit-001"):
        a = _arrays(tmp_path / "local.runs" / f"{run_id}.h5")
        b = _arrays(tmp_path / "dask.runs" / f"{run_id}.h5")
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{run_id}/{name}")
    only = ["--only", "distance,gradient,hessian", "--top-k", 2]
    assert run("analyze", tmp_path / "local.h5", *only).exit_code == 0
    res = run("analyze", tmp_path / "dask.h5", *only, "--executor", "dask", "--workers", 2)
    assert res.exit_code == 0, res.output
    for measure in ("distance", "gradient", "hessian"):
        a = _arrays(tmp_path / "local.analysis.d" / measure / "normal-000.h5")
        b = _arrays(tmp_path / "dask.analysis.d" / measure / "normal-000.h5")
        for name in a:
            # workers run 1 thread, this process 2: reductions sum in another order
            np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
    res = run("info", tmp_path / "dask.analysis.h5", "--json")
    assert res.exit_code == 0 and "hessian" in res.output


# a SLURMCluster whose constructor raised cannot be closed: dask-jobqueue's own leak
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_slurm_job_script_carries_the_cluster_options():
    pytest.importorskip("dask_jobqueue")
    from landscape.core.executor import slurm_cluster

    cluster = slurm_cluster({"queue": "gpu", "cores": 4, "memory": "8GB", "walltime": "01:00:00"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p gpu" in script and "#SBATCH -t 01:00:00" in script
    with pytest.raises(ConfigError, match="SLURMCluster refused the cluster options"):
        slurm_cluster({"cores": 4, "memory": "8GB", "colour": "blue"})
