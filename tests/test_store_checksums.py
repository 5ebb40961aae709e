"""Damage that HDF5 alone would read back as numbers: a flipped bit in an array, a deleted
array. Run and result files carry Fletcher-32 checksums and a list of their arrays
(landscape.store.h5write), so both are a StoreError naming the file and the array."""

import json
import shutil

import h5py
import numpy as np
import pytest

from landscape.errors import StoreError
from landscape.measures.runner import AnalysisConfig, analyze
from landscape.store.analysis_read import read_result
from landscape.store.h5read import MANIFEST
from landscape.store.train_read import read_run
from landscape.train.experiment import train_experiment
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    path = tmp_path_factory.mktemp("checksums") / "tiny.h5"
    train_experiment(tiny_config(), path)
    analyze(path, path.with_name("tiny.analysis.h5"), AnalysisConfig(measures=("distance",)))
    return path


@pytest.fixture
def copy(stores, tmp_path):
    shutil.copytree(stores.parent, tmp_path / "s", symlinks=True)
    return tmp_path / "s" / "tiny.h5"


def _flip_bit_in(path, name, at=17):
    with h5py.File(path, "r") as f:
        offset = f[name].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + at] ^= 0b100
    path.write_bytes(bytes(data))


def test_every_array_is_checksummed_and_listed(stores):
    run = stores.parent / "tiny.runs" / "overfit-000.h5"
    with h5py.File(run, "r") as f:
        arrays = []
        f.visititems(lambda n, o: arrays.append(o) if isinstance(o, h5py.Dataset) else None)
        numeric = [a for a in arrays if a.dtype.kind in "fiub" and a.ndim and a.size]
        assert numeric and all(a.fletcher32 for a in numeric)
        assert sorted(json.loads(f.attrs[MANIFEST])) == sorted(a.name.lstrip("/") for a in arrays)


def test_a_flipped_bit_in_parameters_is_an_error_not_a_number(copy):
    run = copy.parent / "tiny.runs" / "normal-001.h5"
    _flip_bit_in(run, "final/params")
    with pytest.raises(
        StoreError, match=r"normal-001\.h5, final/params: .*checksum does not match"
    ):
        read_run(copy, "normal-001")


def test_a_flipped_bit_in_a_result_is_an_error_not_a_number(copy):
    out = copy.with_name("tiny.analysis.h5")
    result = copy.parent / "tiny.analysis.d" / "distance" / "normal-000.h5"
    _flip_bit_in(result, "l2", at=3)
    with pytest.raises(StoreError, match=r"normal-000\.h5, /?l2: .*checksum"):
        read_result(out, "distance", "normal-000")


def test_a_deleted_array_is_damage_not_an_optional_array_left_out(copy):
    run = copy.parent / "tiny.runs" / "normal-000.h5"
    with h5py.File(run, "r+") as f:
        del f["history/corrupt_loss"]
    with pytest.raises(StoreError, match=r"normal-000\.h5, /history/corrupt_loss: expected"):
        read_run(copy, "normal-000")


def test_files_written_before_checksums_are_read_as_before(copy):
    """A run file in HDF5's default format, no filter, no list: read, same numbers."""
    run = copy.parent / "tiny.runs" / "normal-000.h5"
    want = read_run(copy, "normal-000")
    old = run.with_suffix(".old")
    with h5py.File(run, "r") as src, h5py.File(old, "w") as dst:
        for key, value in src.attrs.items():
            if key != MANIFEST:
                dst.attrs[key] = value

        def plain_copy(name, obj):
            if isinstance(obj, h5py.Group):
                dst.require_group(name).attrs.update(dict(obj.attrs))
            else:  # the data only: dimension-scale attributes hold references into `src`
                dst.create_dataset(name, data=obj[()], dtype=obj.dtype)

        src.visititems(plain_copy)
    old.replace(run)
    got = read_run(copy, "normal-000")
    np.testing.assert_array_equal(got["final"]["params"], want["final"]["params"])
    np.testing.assert_array_equal(got["checkpoints"]["params"], want["checkpoints"]["params"])


def test_a_damaged_checkpoint_is_a_damaged_run_that_analyze_leaves_out(copy):
    """Found when the store is checked (info, the start of analyze), not midway through."""
    from landscape.store.train_read import check_run

    _flip_bit_in(copy.parent / "tiny.runs" / "overfit-001.h5", "checkpoints/params")
    check = check_run(copy, "overfit-001")
    assert check.status == "damaged" and "checksum does not match" in (check.problem or "")
    summary = analyze(
        copy, copy.with_name("fresh.analysis.h5"), AnalysisConfig(measures=("distance",))
    )
    assert sorted(summary.computed) == [
        f"distance/{r}" for r in ("normal-000", "normal-001", "overfit-000")
    ]
