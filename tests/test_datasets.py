"""Datasets: shapes, dtypes, md5 checks, search paths, generated geometry, seeded subsets.

Real files come from the shared folder `../shared/data` (relative to the repository root);
tests that need it skip when it is absent. Nothing here touches the network: `urlopen` is
replaced by a function that fails the test, except where a test installs a fake server.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from landscape.config import DataConfig
from landscape.config_checks import CHOICES
from landscape.data import (
    DATASETS,
    Dataset,
    cifar,
    fingerprint,
    idx,
    load_dataset,
    resolve_data_dir,
    ring_coordinates,
    ring_image,
)
from landscape.data.base import stratified_indices
from landscape.data.download import download_file
from landscape.data.synthetic import RING_INNER, RING_OUTER, modular_table
from landscape.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MNIST_DIR = SHARED / "mnist"
CIFAR_JPG = SHARED / "cifar10_jpg"
FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")
MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

needs_mnist = pytest.mark.skipif(
    not MNIST_DIR.is_dir(), reason=f"shared MNIST files not found at {MNIST_DIR}"
)
needs_cifar_jpg = pytest.mark.skipif(
    not CIFAR_JPG.is_dir(), reason=f"shared CIFAR-10 JPEG subset not found at {CIFAR_JPG}"
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a test tried to download: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset(DataConfig(name="digits"), offline=True)


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    if not MNIST_DIR.is_dir():
        pytest.skip(f"shared MNIST files not found at {MNIST_DIR}")
    return load_dataset(DataConfig(name="mnist"), data_dir=SHARED, offline=True)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def check_classification(ds: Dataset, input_shape: tuple[int, ...], n_classes: int) -> None:
    assert ds.task == "classification"
    assert ds.input_shape == input_shape
    assert ds.n_outputs == n_classes == len(ds.class_names)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == input_shape and y.shape == (len(x),)
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert y.min() >= 0 and y.max() < n_classes


def test_registry_matches_config_choices() -> None:
    assert set(DATASETS) == set(CHOICES["data.name"])


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="allowed: digits, mnist"):
        load_dataset(DataConfig(name="imagenet"))


def test_data_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LANDSCAPE_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("LANDSCAPE_DATA")
    assert resolve_data_dir() == Path("data")


# --- digits -------------------------------------------------------------------------------


def test_digits_shapes_and_split(digits: Dataset) -> None:
    check_classification(digits, (1, 8, 8), 10)
    assert (len(digits.y_train), len(digits.y_test)) == (1297, 500)
    assert digits.x_train.max() == 1.0  # 16 / 16: the scale is 0..16, not 0..255
    # Stratified: each class keeps its share of the 1,797 images in the test set, within 1.
    share = 500 * np.bincount(np.concatenate([digits.y_train, digits.y_test])) / 1797
    assert np.all(np.abs(np.bincount(digits.y_test) - share) < 1)


def test_digits_split_is_fixed_whatever_the_seed(digits: Dataset) -> None:
    again = load_dataset(DataConfig(name="digits", seed=123), offline=True)
    assert again.fingerprint == digits.fingerprint


def test_fingerprint_sees_values_dtypes_and_shapes() -> None:
    a = np.arange(6, dtype=np.float32)
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a) != fingerprint(a.reshape(2, 3))
    assert fingerprint(a) != fingerprint(a.astype(np.float64))
    b = a.copy()
    b[3] += 1
    assert fingerprint(a) != fingerprint(b)


def test_dataset_rejects_wrong_dtypes() -> None:
    x = np.zeros((4, 2), np.float64)
    y = np.zeros(4, np.int64)
    with pytest.raises(DataError, match="float32"):
        Dataset("bad", "bad", "classification", x, y, x, y, 2, ("a", "b"), "-")


# --- MNIST and Fashion-MNIST ----------------------------------------------------------------


@needs_mnist
def test_shared_mnist_files_have_the_canonical_md5() -> None:
    for name, expected in MNIST_GZ_MD5.items():
        assert md5(MNIST_DIR / name) == expected
        assert idx.MNIST.files[_role(name)].gz_md5 == expected


def _role(name: str) -> str:
    return next(r for r, f in idx.MNIST.files.items() if f.name == name)


def test_mnist_shapes_and_test_label_counts(mnist: Dataset) -> None:
    check_classification(mnist, (1, 28, 28), 10)
    assert (len(mnist.y_train), len(mnist.y_test)) == (60000, 10000)
    assert np.bincount(mnist.y_test).tolist() == MNIST_TEST_COUNTS
    assert mnist.class_names == tuple("0123456789")
    assert mnist.x_train.max() == 1.0 and mnist.x_train.flags["C_CONTIGUOUS"]


@needs_mnist
def test_corrupt_mnist_file_names_the_md5s(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in MNIST_GZ_MD5:
        os.symlink(MNIST_DIR / name, folder / name)
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    bad.unlink()
    bad.write_bytes(gzip.compress(b"not an idx file"))
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(name="mnist"), data_dir=tmp_path, offline=True)
    message = str(err.value)
    assert str(bad) in message
    assert MNIST_GZ_MD5[bad.name] in message and md5(bad) in message
    assert "delete it" in message


def test_truncated_gzip_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00" * 100)[:20])
    with pytest.raises(DataError, match="not a readable gzip file"):
        idx.verified_bytes(path, idx.MNIST.files["test_labels"], "MNIST")


def test_offline_and_absent_lists_the_searched_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(name="mnist"), data_dir=tmp_path, offline=True)
    message = str(err.value)
    assert str(tmp_path / "mnist") in message and "--offline" in message
    assert "train-images-idx3-ubyte.gz" in message


def test_fashion_offline_and_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idx, "FASHION_MNIST", _without_system_dirs(idx.FASHION_MNIST))
    with pytest.raises(DataError, match="Fashion-MNIST not found"):
        load_dataset(DataConfig(name="fashion-mnist"), data_dir=tmp_path, offline=True)


def _without_system_dirs(src: idx.IdxSource) -> idx.IdxSource:
    return dataclasses.replace(src, system_dirs=())


@needs_mnist
def test_recompressed_files_load_by_their_raw_md5(tmp_path: Path, mnist: Dataset) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in MNIST_GZ_MD5:
        raw = gzip.decompress((MNIST_DIR / name).read_bytes())
        # Like Debian's copies: a different gzip header (no file name, mtime 0), same data.
        (folder / name).write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
        assert md5(folder / name) != MNIST_GZ_MD5[name]
    again = load_dataset(DataConfig(name="mnist"), data_dir=tmp_path, offline=True)
    assert again.fingerprint == mnist.fingerprint
    assert str(folder) in again.source


@pytest.mark.skipif(not FASHION_SYSTEM.is_dir(), reason=f"{FASHION_SYSTEM} not installed")
def test_fashion_mnist_from_debian_package(tmp_path: Path) -> None:
    ds = load_dataset(DataConfig(name="fashion-mnist"), data_dir=tmp_path, offline=True)
    check_classification(ds, (1, 28, 28), 10)
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_download_wiring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def unreachable(url: str, timeout: float) -> None:
        asked.append(url)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(DataError, match="download https://ossci-datasets"):
        load_dataset(DataConfig(name="mnist"), data_dir=tmp_path)
    assert asked == ["https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"]
    assert list((tmp_path / "mnist").iterdir()) == []  # no partial file left behind


def test_download_file_checks_md5_and_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b"some bytes" * 1000
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(body))
    dest = tmp_path / "sub" / "file.gz"
    with pytest.raises(DataError, match="md5 mismatch"):
        download_file("https://example.invalid/file.gz", dest, "0" * 32)
    assert list(dest.parent.iterdir()) == []
    download_file("https://example.invalid/file.gz", dest, hashlib.md5(body).hexdigest())
    assert dest.read_bytes() == body and list(dest.parent.iterdir()) == [dest]


# --- CIFAR-10 -------------------------------------------------------------------------------


@needs_cifar_jpg
def test_cifar_jpeg_subset() -> None:
    ds = load_dataset(DataConfig(name="cifar10"), data_dir=SHARED, offline=True)
    check_classification(ds, (3, 32, 32), 10)
    assert (len(ds.y_train), len(ds.y_test)) == (5000, 1000)
    assert np.bincount(ds.y_train).tolist() == [500] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.title == "CIFAR-10 (JPEG subset)"
    assert ds.class_names[0] == "airplane" and ds.class_names[9] == "truck"


def _fake_batches(folder: Path, n: int) -> dict[str, bytes]:
    """Write CIFAR-10 binary batches of n records each; record i of a file has label i % 10."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {}
    for name in cifar.TRAIN_FILES + cifar.TEST_FILES:
        records = rng.integers(0, 256, size=(n, cifar.RECORD_BYTES), dtype=np.uint8)
        records[:, 0] = np.arange(n) % 10
        out[name] = records.tobytes()
        (folder / name).write_bytes(out[name])
    return out


def test_cifar_binary_folder_and_tarball(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cifar, "RECORDS_PER_FILE", 7)
    batches = _fake_batches(tmp_path / "cifar10" / cifar.BIN_DIR, 7)
    ds = load_dataset(DataConfig(name="cifar10"), data_dir=tmp_path, offline=True)
    assert ds.x_train.shape == (35, 3, 32, 32) and ds.x_test.shape == (7, 3, 32, 32)
    first = np.frombuffer(batches["data_batch_1.bin"], np.uint8)
    assert ds.y_train[0] == first[0]
    assert ds.x_train[0, 0, 0, 1] == np.float32(first[2]) / np.float32(255)  # channel-first
    assert ds.title == "CIFAR-10"

    tar_dir = tmp_path / "as_tar" / "cifar10"
    tar_dir.mkdir(parents=True)
    shutil.move(tmp_path / "cifar10" / cifar.BIN_DIR, tar_dir / cifar.BIN_DIR)
    with tarfile.open(tar_dir / cifar.TARBALL, "w:gz") as tar:
        tar.add(tar_dir / cifar.BIN_DIR, arcname=cifar.BIN_DIR)
    shutil.rmtree(tar_dir / cifar.BIN_DIR)
    with pytest.raises(DataError, match=cifar.TARBALL_MD5):
        load_dataset(DataConfig(name="cifar10"), data_dir=tar_dir.parent, offline=True)
    monkeypatch.setattr(cifar, "TARBALL_MD5", md5(tar_dir / cifar.TARBALL))
    from_tar = load_dataset(DataConfig(name="cifar10"), data_dir=tar_dir.parent, offline=True)
    assert from_tar.fingerprint == ds.fingerprint


def test_cifar_image_folder_checks_md5sums(tmp_path: Path) -> None:
    from PIL import Image

    lines = []
    for split, cls in (("train", "cat"), ("test", "ship")):
        (tmp_path / split / cls).mkdir(parents=True)
        path = tmp_path / split / cls / "0000.png"
        Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(path)
        lines.append(f"{md5(path)}  {split}/{cls}/0000.png")
    (tmp_path / "MD5SUMS").write_text("\n".join(lines) + "\n")
    ds = cifar.load_image_folder(tmp_path)
    assert ds.title == "CIFAR-10 (image folder)"  # PNG is lossless: no "JPEG subset"
    assert ds.y_train.tolist() == [3] and ds.y_test.tolist() == [8]
    assert np.allclose(ds.x_train, 200 / 255)
    (tmp_path / "test" / "ship" / "0000.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="MD5SUMS"):
        cifar.load_image_folder(tmp_path)


def test_cifar_offline_and_absent(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        load_dataset(DataConfig(name="cifar10"), data_dir=tmp_path, offline=True)


# --- ring, line, modular --------------------------------------------------------------------


def test_ring_geometry() -> None:
    res = 1024
    img = ring_image(res)
    assert img.shape == (res, res) and img.dtype == np.float32
    assert set(np.unique(img).tolist()) == {0.0, 1.0}
    area = np.pi * (RING_OUTER**2 - RING_INNER**2)
    assert abs((img == 0).mean() - area) < 0.01 * area
    assert img[res // 2, res // 2] == 1.0  # centre is white
    assert img[res // 2, res // 2 + round(0.235 * res)] == 0.0  # radius 0.235 is black
    assert img[0, 0] == 1.0 and img[res // 2, res - 1] == 1.0


def test_ring_coordinates_convention() -> None:
    res = 8
    xy = ring_coordinates(res)
    assert xy.shape == (64, 2) and xy.dtype == np.float32
    assert xy.min() == 0.0 and xy.max() < 1.0
    row, col = 2, 5
    assert xy[row * res + col].tolist() == [col / res, row / res]  # (x = col/r, y = row/r)


def test_ring_dataset_is_disjoint_and_consistent() -> None:
    cfg = DataConfig(name="ring", ring_resolution=64, ring_points=1000, ring_test_points=500)
    ds = load_dataset(cfg)
    assert ds.task == "regression" and ds.n_outputs == 1 and ds.class_names == ()
    assert ds.x_train.shape == (1000, 2) and ds.y_train.shape == (1000, 1)
    assert ds.y_test.dtype == np.float32 and ds.title == "ring 64x64"
    train, test = _pixel_set(ds.x_train, 64), _pixel_set(ds.x_test, 64)
    assert len(train) == 1000 and len(test) == 500 and not train & test
    expected = ring_image(64).reshape(-1)[sorted(train)]
    assert sorted(expected.tolist()) == sorted(ds.y_train[:, 0].tolist())
    assert load_dataset(cfg).fingerprint == ds.fingerprint
    assert load_dataset(dataclasses.replace(cfg, seed=1)).fingerprint != ds.fingerprint


def _pixel_set(xy: np.ndarray, res: int) -> set[int]:
    """Flat pixel indices row * res + col of coordinates (col / res, row / res)."""
    return set((xy[:, 1] * res * res + xy[:, 0] * res).round().astype(int).tolist())


def test_ring_too_many_points() -> None:
    cfg = DataConfig(name="ring", ring_resolution=8, ring_points=60, ring_test_points=10)
    with pytest.raises(ConfigError, match="has 64"):
        load_dataset(cfg)


def test_line_slope_and_shapes() -> None:
    ds = load_dataset(DataConfig(name="line", line_points=100_000, line_test_points=10))
    assert ds.x_train.shape == (100_000, 1) and ds.y_train.shape == (100_000, 1)
    assert ds.x_train.dtype == ds.y_train.dtype == np.float32
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() < 20.0
    x = ds.x_train[:, 0].astype(np.float64)
    design = np.stack([np.ones_like(x), x], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, ds.y_train[:, 0], rcond=None)
    assert abs(slope - 0.7) < 0.01 and abs(intercept - 3.0) < 0.1
    residual = ds.y_train[:, 0] - (3.0 + 0.7 * x)
    assert abs(residual.std() - 2.0) < 0.05


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_modular_labels(op: str) -> None:
    p = 11
    a, b, label = modular_table(p, op)
    python = {
        "add": lambda a, b: (a + b) % p,
        "sub": lambda a, b: (a - b) % p,
        "mul": lambda a, b: (a * b) % p,
        "div": lambda a, b: next(c for c in range(p) if (c * b) % p == a),
    }[op]
    pairs = [(i, j) for i in range(p) for j in range(p) if op != "div" or j != 0]
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == pairs
    assert label.tolist() == [python(i, j) for i, j in pairs]


def test_modular_dataset() -> None:
    cfg = DataConfig(name="modular", modulus=7, operation="mul", train_fraction=0.5)
    ds = load_dataset(cfg)
    check_classification(ds, (14,), 7)
    assert len(ds.y_train) == round(0.5 * 49) and len(ds.y_train) + len(ds.y_test) == 49
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    assert (x[:, :7].sum(1) == 1).all() and (x[:, 7:].sum(1) == 1).all()
    a, b = x[:, :7].argmax(1), x[:, 7:].argmax(1)
    assert ((a * b) % 7 == y).all()
    assert len({(i, j) for i, j in zip(a, b, strict=True)}) == 49  # every pair once


def test_modular_div_needs_a_prime() -> None:
    with pytest.raises(ConfigError, match="prime"):
        load_dataset(DataConfig(name="modular", modulus=12, operation="div"))


# --- subsets --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [100, 95])
def test_subset_is_stratified_and_deterministic(n: int) -> None:
    cfg = DataConfig(name="digits", subset=n, test_subset=53, seed=3)
    ds = load_dataset(cfg)
    assert len(ds.y_train) == n and len(ds.y_test) == 53
    for y in (ds.y_train, ds.y_test):
        counts = np.bincount(y, minlength=10)
        assert counts.max() - counts.min() <= 1
    assert load_dataset(cfg).fingerprint == ds.fingerprint
    other = load_dataset(DataConfig(name="digits", subset=n, test_subset=53, seed=4))
    assert other.fingerprint != ds.fingerprint


def test_train_subset_does_not_depend_on_test_subset() -> None:
    a = load_dataset(DataConfig(name="digits", subset=50, test_subset=10))
    b = load_dataset(DataConfig(name="digits", subset=50, test_subset=20))
    assert np.array_equal(a.x_train, b.x_train)


def test_subset_too_large_says_how_many_there_are() -> None:
    with pytest.raises(ConfigError, match="has 1297"):
        load_dataset(DataConfig(name="digits", subset=5000))
    with pytest.raises(ConfigError, match="has 500"):
        load_dataset(DataConfig(name="digits", test_subset=501))


def test_regression_subset_is_random_rows() -> None:
    full = load_dataset(DataConfig(name="line"))
    part = load_dataset(DataConfig(name="line", subset=10))
    rows = {tuple(r) for r in np.concatenate([full.x_train, full.y_train], 1).tolist()}
    assert len(part.y_train) == 10
    assert all(tuple(r) in rows for r in np.concatenate([part.x_train, part.y_train], 1).tolist())


def test_stratified_indices_when_a_class_runs_out() -> None:
    y = np.repeat([0, 1, 2], [2, 50, 50])
    picked = stratified_indices(y, 30, rng=np.random.default_rng(0))
    assert np.bincount(y[picked]).tolist() == [2, 14, 14]
    assert len(set(picked.tolist())) == 30
